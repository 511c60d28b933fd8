"""Pictures of results: pure functions from result objects (and their pixels) to RGB uint8 arrays or figures.

No detection logic here: every number drawn comes from the result.

Figures are built with matplotlib's object API (`Figure` + Agg canvas), never pyplot, so rendering is
thread-safe inside a server and leaves no global figure state behind.
"""
from __future__ import annotations

import dataclasses
import io
import math

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .band import Band
from .results import FAKE, NO_FACE, REAL, UNCERTAIN
from .verdict import fake_margin, merged_reasons

# Verdict colours (RGB), chosen to read on light and dark backgrounds alike.
COLORS = {FAKE: (220, 38, 38), REAL: (22, 163, 74), UNCERTAIN: (217, 119, 6), NO_FACE: (107, 114, 128)}
_HEX = {k: "#%02x%02x%02x" % v for k, v in COLORS.items()}
_NO_FACE_MARK = "#6b7280"
# Short words for the quality gates (deepfake.quality.REASONS), for box labels, captions and legends.
REASON_TEXT = {"face_too_small": "too small", "blurred": "blurred", "too_dark": "too dark", "profile": "profile"}
# The kinds of fake a network finds (deepfake.model.KINDS), in words.
KIND_TEXT = {"face_swap": "face swap", "generated": "fully generated"}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_DIVERGING = "RdBu_r"  # red = the cell pushes toward FAKE, blue = toward REAL


# ---------------------------------------------------------------------------------------------- helpers
def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3]).copy()


def _scale(img: np.ndarray) -> float:
    """Line and text scale for an image: readable from 128 px to 4K."""
    return max(0.4, min(img.shape[:2]) / 640.0)


def _label_text(img: np.ndarray, text: str, org: tuple[int, int], color, *, above: bool = True) -> None:
    """Text on a filled box of `color` at org (the top-left corner of the face box), kept inside the image."""
    s = _scale(img)
    fs, th = 0.55 * s, max(1, int(round(1.5 * s)))
    (tw, tht), base = cv2.getTextSize(text, _FONT, fs, th)
    pad = max(2, int(3 * s))
    x = int(min(max(0, org[0]), max(0, img.shape[1] - tw - 2 * pad)))
    y_top = org[1] - tht - base - 2 * pad if above else org[1]
    if y_top < 0:
        y_top = org[1]
    y_top = int(min(max(0, y_top), max(0, img.shape[0] - tht - base - 2 * pad)))
    cv2.rectangle(img, (x, y_top), (x + tw + 2 * pad, y_top + tht + base + 2 * pad), color, -1)
    cv2.putText(img, text, (x + pad, y_top + pad + tht), _FONT, fs, (255, 255, 255), th, cv2.LINE_AA)


def _banner(img: np.ndarray, text: str, color=COLORS[NO_FACE]) -> None:
    s = _scale(img)
    fs, th = 0.7 * s, max(1, int(round(2 * s)))
    (tw, tht), base = cv2.getTextSize(text, _FONT, fs, th)
    while tw > img.shape[1] - 8 and fs > 0.25:
        fs *= 0.85
        (tw, tht), base = cv2.getTextSize(text, _FONT, fs, th)
    h = tht + base + int(12 * s)
    cv2.rectangle(img, (0, 0), (img.shape[1], h), color, -1)
    cv2.putText(img, text, ((img.shape[1] - tw) // 2, h - base - int(6 * s)), _FONT, fs, (255, 255, 255), th,
                cv2.LINE_AA)


def _box(img: np.ndarray, box, color) -> None:
    x, y, w, h = (int(v) for v in box)
    cv2.rectangle(img, (x, y), (x + w, y + h), color, max(2, int(round(2.5 * _scale(img)))))


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Render a matplotlib figure to an RGB uint8 array."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3]).copy()


def png_bytes(image) -> bytes:
    """PNG of an RGB array or a matplotlib figure."""
    if isinstance(image, Figure):
        buf = io.BytesIO()
        image.savefig(buf, format="png", dpi=image.dpi)
        return buf.getvalue()
    ok, enc = cv2.imencode(".png", cv2.cvtColor(_rgb(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the image as PNG")
    return enc.tobytes()


def fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so the longer side is at most max_side (never upscales)."""
    h, w = rgb.shape[:2]
    s = max_side / max(h, w)
    if s >= 1.0:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def threshold_text(threshold) -> str:
    """The threshold exactly as applied: up to 6 decimals without trailing zeros (configs store 6), and the
    full float wherever 6 decimals would round it. The UI, the reports and the plots all show this."""
    t = float(threshold)
    text = f"{t:.6f}".rstrip("0").rstrip(".")
    return text if float(text) == t else repr(t)


def band_text(real_below, fake_from) -> str:
    """The band in words, with its exact bounds: "REAL below 0.2, UNCERTAIN 0.2-0.56, FAKE from 0.56";
    "REAL below 0.56, FAKE from 0.56" for a single cut (real_below None or equal to fake_from)."""
    fake = threshold_text(fake_from)
    if real_below is None or float(real_below) == float(fake_from):
        return f"REAL below {fake}, FAKE from {fake}"
    real = threshold_text(real_below)
    return f"REAL below {real}, UNCERTAIN {real}-{fake}, FAKE from {fake}"


def reasons_text(reasons, words: dict = REASON_TEXT) -> str:
    """Failed quality gates in words (default the short ones): ("face_too_small", "blurred") -> "too small,
    blurred"."""
    return ", ".join(words.get(r, str(r).replace("_", " ")) for r in reasons or ())


def _prob(p) -> str:
    return "n/a" if p is None else f"{float(p):.3f}"


def _band_of(result) -> Band:
    """The band a result was labelled with (a result without real_below had a single cut at its threshold)."""
    thr = float(result.threshold)
    real = getattr(result, "real_below", None)
    return Band(thr if real is None else min(float(real), thr), thr)


def kind_text(kind, words: dict = KIND_TEXT) -> str:
    """A kind of fake in words (default the short ones): "face_swap" -> "face swap", "generated" -> "fully
    generated"."""
    return words.get(kind, str(kind).replace("_", " "))


def scores_of(result) -> tuple:
    """A result's per-network scores (empty for a result without them)."""
    return tuple(getattr(result, "scores", ()) or ())


def scores_text(scores, prob=None) -> str:
    """Each network's say in one line: "face_swap 0.410 REAL, generated 0.930 FAKE" (`prob` formats a
    probability; default 3 decimals, "n/a" for None)."""
    prob = prob or _prob
    return ", ".join(f"{s.network} {prob(s.fake_probability)} {s.label}" for s in scores)


def label_hex(label) -> str:
    """A label's colour as CSS hex (grey for NO_FACE or anything unknown)."""
    return _HEX.get(label, _HEX[NO_FACE])


def likely_text(result, lead: str = ", likely ") -> str:
    """", likely fully generated" (`lead` + the kind) for a FAKE result with a likely kind, else ""."""
    kind = getattr(result, "manipulation", None)
    return f"{lead}{kind_text(kind)}" if getattr(result, "label", None) == FAKE and kind else ""


def lead_score(result):
    """The network score behind a result's combined label: of the networks whose own label is that label, the
    one furthest toward FAKE (for FAKE that is the one verdict.combine took the kind from; ties go to the
    first). Without such a network, the first score; None for a result without scores."""
    scores = scores_of(result)
    same = [s for s in scores if s.label == result.label and s.fake_probability is not None]
    if not same:
        return scores[0] if scores else None
    return max(same, key=lambda s: fake_margin(s.fake_probability, _band_of(s)))


def _face_text(f) -> str:
    """A face box's label: its verdict and probability (for FAKE, with the likely kind: "FAKE 0.950 fully
    generated"), or UNCERTAIN and the gates it failed. With several networks the probability is that of the
    network behind the label, and a label other than FAKE names that network's kind: "REAL 0.210 (face swap
    network)"."""
    if getattr(f, "reasons", ()):
        return f"{UNCERTAIN}: {reasons_text(f.reasons)}"
    lead = lead_score(f)
    p = f.fake_probability if lead is None else lead.fake_probability
    text = f"{f.label} {p:.3f}"
    if f.label == FAKE and getattr(f, "manipulation", None):
        return f"{text} {kind_text(f.manipulation)}"
    if len(scores_of(f)) > 1:
        return f"{text} ({kind_text(lead.kind)} network)"
    return text


def _cam_text(label: str, face, p: float) -> str:
    """A CAM map's label: the face's label (with the likely kind for FAKE) and the probability of the network
    the map explains, the first one (named by its kind when there are several)."""
    kind = f" {kind_text(face.manipulation)}" if face is not None and label == FAKE and face.manipulation else ""
    scores = scores_of(face)
    whose = f"{kind_text(scores[0].kind)} p(fake)" if len(scores) > 1 else "p(fake)"
    # "FAKE p(fake)=0.800"; a comma once a kind word comes between the label and the probability.
    text = f"{label}{kind}{', ' if kind or len(scores) > 1 else ' '}{whose}={p:.3f}"
    return f"{text} ({reasons_text(face.reasons)})" if face is not None and face.reasons else text


# ---------------------------------------------------------------------------------------------- images
def draw_faces(rgb: np.ndarray, result) -> np.ndarray:
    """Face boxes coloured by verdict (red FAKE, green REAL, amber UNCERTAIN) with each fake probability, or,
    for a face that failed a quality gate, "UNCERTAIN: <gates>"; a grey "No face detected" banner when there is
    none. `result`: ImageResult or FrameResult."""
    img = _rgb(rgb)
    faces = tuple(getattr(result, "faces", ()) or ())
    if getattr(result, "scored_whole_image", False):
        label = getattr(result, "label", NO_FACE)
        _banner(img, f"No face: whole image scored, {label}{likely_text(result)} "
                     f"p(fake)={_prob(result.fake_probability)}",
                COLORS.get(label, COLORS[NO_FACE]))
        return img
    if not faces:
        _banner(img, "No face detected - no verdict")
        return img
    for f in faces:
        color = COLORS.get(f.label, COLORS[NO_FACE])
        _box(img, f.box, color)
        _label_text(img, _face_text(f), (f.box[0], f.box[1]), color)
    return img


def _heat_rgb(cam: np.ndarray) -> np.ndarray:
    return (colormaps["jet"](np.clip(cam, 0.0, 1.0))[:, :, :3] * 255.0 + 0.5).astype(np.uint8)


def cam_overlay(rgb: np.ndarray, cam_result, alpha: float = 0.45) -> np.ndarray:
    """The CAM heatmap blended over each face crop, face boxes coloured by verdict, and the fake
    probability written on each map (CAM methods rescale every map to full range, so the colours alone
    say where, never how much)."""
    img = _rgb(rgb)
    heat = np.asarray(cam_result.heatmap, dtype=np.float32)
    if heat.shape != img.shape[:2]:
        heat = cv2.resize(heat, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    colored = _heat_rgb(heat)
    method = getattr(cam_result, "method", "cam")
    if not cam_result.faces:
        _banner(img, "No face detected - nothing to explain")
        return img
    for fc in cam_result.faces:
        x0, y0, x1, y1 = (int(v) for v in fc.crop_box)
        roi = img[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] = (roi * (1 - alpha) + colored[y0:y1, x0:x1].astype(np.float32) * alpha + 0.5).astype(np.uint8)
    band = _band_of(cam_result.result)
    scored = tuple(cam_result.result.faces)
    # The map is the first network's: say so when there are others.
    scores = scores_of(cam_result.result)
    whose = f"{kind_text(scores[0].kind)} network's " if len(scores) > 1 else ""
    for k, fc in enumerate(cam_result.faces):
        # The face's own label (gates included); a whole-image crop has no FaceResult: its band's label.
        fr = scored[k] if len(scored) == len(cam_result.faces) else None
        label = fr.label if fr is not None else band.label(fc.fake_probability)
        color = COLORS.get(label, COLORS[NO_FACE])
        x0, y0, x1, y1 = (int(v) for v in fc.crop_box)
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), max(1, int(round(_scale(img)))))
        _box(img, fc.box, color)
        px, py = (int(v) for v in fc.peak_xy)
        r = max(4, int(6 * _scale(img)))
        cv2.drawMarker(img, (px, py), (255, 255, 255), cv2.MARKER_CROSS, 2 * r, max(1, int(2 * _scale(img))))
        _label_text(img, _cam_text(label, fr, fc.fake_probability), (x0, y0), color)
        _label_text(img, f"{method}: map of the {whose}fake output", (x0, y1), (31, 41, 55), above=False)
    return img


def occlusion_figure(occ_result, *, title: str | None = None) -> Figure:
    """The G x G grid of probability changes over the face crop, with a diverging colour bar."""
    crop = _rgb(occ_result.crop)
    changes = np.asarray(occ_result.changes, dtype=np.float64)
    g = int(occ_result.grid)
    h, w = crop.shape[:2]
    vmax = float(np.nanmax(np.abs(changes))) if changes.size else 0.0
    vmax = max(vmax, 1e-6)
    fig = Figure(figsize=(6.4, 5.2), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(crop, extent=(0, w, h, 0))
    im = ax.imshow(changes, cmap=_DIVERGING, norm=TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax),
                   alpha=0.55, extent=(0, w, h, 0), interpolation="nearest")
    if g <= 32:
        for k in range(1, g):
            ax.axhline(k * h / g, color="white", lw=0.4, alpha=0.6)
            ax.axvline(k * w / g, color="white", lw=0.4, alpha=0.6)
    i, j = np.unravel_index(int(np.nanargmax(changes)), changes.shape)
    ax.add_patch(_rect(j * w / g, i * h / g, w / g, h / g))
    ax.set_xticks([])
    ax.set_yticks([])
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("change in fake probability (p - p occluded)\nred: pushes toward FAKE, blue: toward REAL")
    ax.set_title(title or (f"Grid occlusion {g}x{g}, baseline '{occ_result.baseline}' - "
                           f"p(fake) = {occ_result.fake_probability:.3f}"), fontsize=10)
    fig.tight_layout()
    return fig


def _rect(x, y, w, h):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, fill=False, edgecolor="black", lw=1.6)


def occlusion_overlay(occ_result) -> np.ndarray:
    """occlusion_figure rendered to an RGB uint8 array."""
    return figure_to_rgb(occlusion_figure(occ_result))


# ---------------------------------------------------------------------------------------------- video
def _frame_points(video_result):
    t = np.array([f.timestamp_s for f in video_result.frames], dtype=np.float64)
    p = np.array([np.nan if f.fake_probability is None else f.fake_probability for f in video_result.frames])
    return t, p


def _frame_labels(video_result) -> np.ndarray:
    """Each frame's label; a frame with a probability but no label (built before frames had one) gets its
    band's label, so every scored frame is drawn by its verdict."""
    band = _band_of(video_result)
    return np.array([band.label(f.fake_probability) if f.label == NO_FACE and f.fake_probability is not None
                     else f.label for f in video_result.frames], dtype=object)


def _gated(video_result) -> np.ndarray:
    """Per frame: every face failed a quality gate (the frame is UNCERTAIN and left out of the video score)."""
    return np.array([bool(getattr(f, "reasons", ())) for f in video_result.frames], dtype=bool)


def _gated_legend(video_result) -> str:
    failed = reasons_text(merged_reasons(f.reasons for f in video_result.frames))
    # When no frame passes, the video score is made of the gated frames (and is UNCERTAIN): say so instead.
    judged_any = any(f.fake_probability is not None and not f.reasons for f in video_result.frames)
    left = "not in the video score" if judged_any else "no frame passed: video UNCERTAIN"
    return f"quality gate failed ({failed}):\nUNCERTAIN, {left}"


def _band_lines(ax, video_result) -> None:
    """The REAL bound and the FAKE threshold as horizontal lines, the UNCERTAIN band between them shaded;
    one line for a single cut."""
    band = _band_of(video_result)
    if band.is_single:
        ax.axhline(band.fake_from, color="#111827", ls="--", lw=1,
                   label=f"threshold {threshold_text(band.fake_from)} (REAL below, FAKE from)")
        return
    ax.axhspan(band.real_below, band.fake_from, color=_HEX[UNCERTAIN], alpha=0.08, lw=0, zorder=0)
    ax.axhline(band.fake_from, color=_HEX[FAKE], ls="--", lw=1,
               label=f"threshold {threshold_text(band.fake_from)} (FAKE from)")
    ax.axhline(band.real_below, color=_HEX[REAL], ls="--", lw=1,
               label=f"REAL below {threshold_text(band.real_below)}")


def _whose(result) -> str:
    """"face swap " when a result has several networks' scores (the plots show the first network's), else ""."""
    scores = scores_of(result)
    return f"{kind_text(scores[0].kind)} " if len(scores) > 1 else ""


def timeline_figure(video_result) -> Figure:
    """Per-frame fake probability against time: the band's two lines (REAL bound, FAKE threshold) with the
    UNCERTAIN band shaded between, each frame's point in its label's colour (red FAKE, green REAL, amber
    UNCERTAIN), frames whose faces all failed a quality gate as hollow amber circles (left out of the video
    score), frames without a face as a grey x on the time axis."""
    t, p = _frame_points(video_result)
    labels, gated = _frame_labels(video_result), _gated(video_result)
    fig = Figure(figsize=(8.0, 3.4), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    has = ~np.isnan(p)
    if has.any():
        ax.plot(t[has], p[has], color="#9ca3af", lw=1.2, zorder=1)
        for label in (FAKE, UNCERTAIN, REAL):
            sel = has & ~gated & (labels == label)
            if sel.any():
                ax.scatter(t[sel], p[sel], color=_HEX[label], s=36, zorder=3, label=f"{label} frame")
        if (has & gated).any():
            sel = has & gated
            ax.scatter(t[sel], p[sel], facecolors="none", edgecolors=_HEX[UNCERTAIN], linewidths=1.6, s=44,
                       zorder=3, label=_gated_legend(video_result))
    if (~has).any():
        ax.scatter(t[~has], np.zeros(int((~has).sum())), marker="x", color=_NO_FACE_MARK, s=40, zorder=3,
                   label="no face", clip_on=False)
    _band_lines(ax, video_result)
    if video_result.fake_probability is not None:
        ax.axhline(video_result.fake_probability, color="#7c3aed", ls=":", lw=1.2,
                   label=f"video p = {video_result.fake_probability:.3f}")
    ax.set_ylim(-0.03, 1.03)
    if len(t):
        pad = max(0.05, 0.02 * (t.max() - t.min()))
        ax.set_xlim(t.min() - pad, t.max() + pad)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{_whose(video_result)}fake probability")
    judged = f", {video_result.frames_judged} passed the quality gates" if gated.any() else ""
    # Two lines when the gates add a clause: one would run past the figure's left edge.
    ax.set_title(f"Video: {video_result.label}{likely_text(video_result)}, {_whose(video_result)}p(fake) = "
                 f"{_prob(video_result.fake_probability)}"
                 f"{chr(10) if judged else ' '}({video_result.frames_with_face}/{video_result.frames_sampled} "
                 f"frames with a face{judged})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


IMPORTANCE_METHODS = {"leave_one_out": "importance_leave_one_out", "blank": "importance_blank"}


def importance_values(video_result, method: str = "leave_one_out") -> np.ndarray:
    """Per-frame importance (NaN for frames without a face)."""
    if method not in IMPORTANCE_METHODS:
        raise ValueError(f"unknown importance method {method!r}: choose {', '.join(IMPORTANCE_METHODS)}")
    attr = IMPORTANCE_METHODS[method]
    return np.array([np.nan if getattr(f, attr) is None else getattr(f, attr) for f in video_result.frames],
                    dtype=np.float64)


def importance_figure(video_result, method: str = "leave_one_out") -> Figure:
    """Bar per sampled frame: how much the video probability changes without that frame (leave-one-out)
    or with it replaced by a blank frame. Red bars push the video toward FAKE."""
    v = importance_values(video_result, method)
    t, _ = _frame_points(video_result)
    fig = Figure(figsize=(8.0, 3.2), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(v))
    has = ~np.isnan(v)
    colors = [_HEX[FAKE] if val > 0 else "#2563eb" for val in np.nan_to_num(v)]
    ax.bar(x[has], v[has], color=[c for c, h in zip(colors, has) if h], width=0.8)
    # Frames without an importance: no face (grey x), or every face failed a gate (hollow amber: not scored).
    gated = _gated(video_result) & ~has
    no_face = ~has & ~gated
    if no_face.any():
        ax.scatter(x[no_face], np.zeros(int(no_face.sum())), marker="x", color=_NO_FACE_MARK, s=40, zorder=3,
                   label="no face")
    if gated.any():
        ax.scatter(x[gated], np.zeros(int(gated.sum())), facecolors="none", edgecolors=_HEX[UNCERTAIN],
                   linewidths=1.6, s=44, zorder=3, label=_gated_legend(video_result))
    if (~has).any():
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.axhline(0.0, color="#111827", lw=0.8)
    if has.any():
        top = int(np.nanargmax(np.abs(v)))
        ax.annotate("most important", (x[top], v[top]), xytext=(0, 8 if v[top] >= 0 else -14),
                    textcoords="offset points", ha="center", fontsize=8)
        lim = max(1e-4, float(np.nanmax(np.abs(v)))) * 1.3
        ax.set_ylim(-lim, lim)
    step = max(1, int(math.ceil(len(x) / 16)))
    ax.set_xticks(x[::step])
    ax.set_xticklabels([f"{tt:.1f}" for tt in t[::step]], fontsize=8)
    ax.set_xlabel("sampled frame (time, s)")
    name = "leave-one-out" if method == "leave_one_out" else "blank frame"
    ax.set_ylabel("change in video p(fake)")
    ax.set_title(f"Frame importance ({name}): video p minus p without the frame", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def frame_caption(frame) -> str:
    """"t=1.20s  frame 30: p(fake)=0.734 FAKE, likely face swap"; a frame whose faces all failed a gate says
    which: "... p(fake)=0.734 UNCERTAIN: blurred". With several networks, each one's probability by name:
    "... p(fake) face_swap 0.210, generated 0.950 - FAKE, likely fully generated"."""
    head = f"t={frame.timestamp_s:.2f}s  frame {frame.index}"
    if frame.fake_probability is None:
        return f"{head}: no face"
    scores = scores_of(frame)
    if len(scores) > 1:
        text = f"{head}: p(fake) " + ", ".join(f"{s.network} {_prob(s.fake_probability)}" for s in scores) + " -"
    else:
        text = f"{head}: p(fake)={frame.fake_probability:.3f}"
    if getattr(frame, "reasons", ()):
        return f"{text} {UNCERTAIN}: {reasons_text(frame.reasons)}"
    return f"{text} {frame.label}{likely_text(frame)}" if frame.label != NO_FACE else text


def frame_gallery(video_result, max_side: int = 480) -> list[tuple[np.ndarray, str]]:
    """(annotated thumbnail, caption) per sampled frame, drawn on the frame's preview (FrameResult.preview)
    with its face boxes scaled from full-frame pixels to the preview."""
    out = []
    for frame in video_result.frames:
        small = frame.preview
        s = small.shape[1] / video_result.width
        faces = tuple(dataclasses.replace(f, box=tuple(round(v * s) for v in f.box)) for f in frame.faces)
        out.append((fit(draw_faces(small, dataclasses.replace(frame, faces=faces)), max_side), frame_caption(frame)))
    return out
