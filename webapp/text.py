"""The app's text: verdict and model-card markdown, the band sliders' step."""
from __future__ import annotations

import html
import math
from collections import Counter
from decimal import Decimal
from pathlib import Path

from deepfake import media, render, report
from deepfake.quality import REASONS
from deepfake.results import FAKE, NO_FACE, REAL, UNCERTAIN

from . import settings


# The quality gates (deepfake.quality.REASONS) in words a reader acts on.
REASON_WORDS = {"face_too_small": "face too small to judge", "blurred": "blurred", "too_dark": "too dark",
                "profile": "turned too far from frontal"}
MAX_FACES_LISTED = 12  # an image of a crowd lists this many faces in the verdict, then a count


def reasons_words(reasons) -> str:
    """Failed quality gates in words: ("face_too_small", "blurred") -> "face too small to judge, blurred"."""
    return render.reasons_text(reasons, REASON_WORDS)


def _bounds(result) -> tuple[float, float]:
    """(REAL bound, FAKE threshold) a result was labelled with (no REAL bound: a single cut)."""
    fake = float(result.threshold)
    real = getattr(result, "real_below", None)
    return (fake if real is None else min(float(real), fake)), fake


def band_line(real_below: float, fake_from: float) -> str:
    """The band with its exact bounds: "REAL below x, UNCERTAIN from x to y, FAKE from y"."""
    x, y = render.threshold_text(real_below), render.threshold_text(fake_from)
    line = f"REAL below {x}, UNCERTAIN from {x} to {y}, FAKE from {y}"
    return line + (" (no UNCERTAIN band: one cut)" if float(real_below) == float(fake_from) else "")


def _network(s) -> str:
    """A network by its name and what it finds: "generated (fully generated)"."""
    return f"{s.network} ({render.kind_text(s.kind)})"


def _why_uncertain(result) -> str:
    """Why a result is UNCERTAIN: the gates no face passed, or its probability between the bounds (with several
    networks: which networks are between theirs)."""
    reasons = getattr(result, "reasons", ()) or ()
    if reasons:
        what = "frame" if getattr(result, "kind", "") == "video" else "face"
        return (f"No {what} could be judged: {reasons_words(reasons)}. The probability is shown, not judged; "
                "try a sharper, brighter, larger, frontal face.")
    scores = render.scores_of(result)
    if len(scores) > 1:
        unsure = ", ".join(_network(s) for s in scores if s.label == UNCERTAIN)
        return (f"No network says FAKE, and not all say REAL: the fake probability of {unsure} is between its "
                "REAL bound and its FAKE threshold (see its bar), so the detector is not confident either way.")
    real, fake = _bounds(result)
    return (f"The fake probability is between the REAL bound {render.threshold_text(real)} and the FAKE "
            f"threshold {render.threshold_text(fake)}: the detector is not confident either way.")


def _face_scores(f) -> str:
    """A face's probability: "fake probability 0.900", or with several networks each one's with its label:
    "face_swap 0.210 REAL, generated 0.950 FAKE"."""
    scores = render.scores_of(f)
    if len(scores) > 1:
        return render.scores_text(scores)
    return f"fake probability {f.fake_probability:.3f}"


def _face_lines(faces) -> list[str]:
    """One line per face: its label (with the likely kind when FAKE), probability and, when it failed a gate,
    why it was not judged."""
    lines = []
    for i, f in enumerate(faces[:MAX_FACES_LISTED], 1):
        x, y, w, h = f.box
        line = f"- Face {i} ({w}x{h} px at {x}, {y}): {f.label}{render.likely_text(f)}, {_face_scores(f)}"
        if getattr(f, "reasons", ()):
            line += f" - not judged: {reasons_words(f.reasons)}"
        lines.append(line)
    if len(faces) > MAX_FACES_LISTED:
        lines.append(f"- ... and {len(faces) - MAX_FACES_LISTED} more (all in the result JSON)")
    return lines


def _video_gates(result) -> str:
    """"k of n frames with a face passed the quality gates", with how many frames failed each gate."""
    line = f"{result.frames_judged} of {result.frames_with_face} frames with a face passed the quality gates"
    counts = Counter(r for fr in result.frames for r in getattr(fr, "reasons", ()) or ())
    if counts:
        line += " (failed: " + ", ".join(f"{counts[r]} {REASON_WORDS[r]}" for r in REASONS if counts[r]) + ")"
    return line + "."


def _css_percent(v: float) -> str:
    """A position on a 0-1 bar as a CSS percentage, exact to the band's 6 decimals: 0.558603 -> "55.8603%"."""
    return f"{float(v) * 100:.4f}".rstrip("0").rstrip(".") + "%"


def _band_marks(s) -> str:
    """The network's band on its bar: a green mark at the REAL bound and a red one at the FAKE threshold (one
    dark mark for a single cut)."""
    def mark(v, color, title):
        return (f"<span title='{title}' style='position:absolute;top:-3px;bottom:-3px;left:{_css_percent(v)};"
                f"border-left:2px solid {color}'></span>")
    fake = render.threshold_text(s.threshold)
    if float(s.real_below) >= float(s.threshold):
        return mark(s.threshold, "#111827", f"REAL below, FAKE from {fake}")
    return (mark(s.real_below, render.label_hex(REAL), f"REAL below {render.threshold_text(s.real_below)}")
            + mark(s.threshold, render.label_hex(FAKE), f"FAKE from {fake}"))


def score_bar(s) -> str:
    """One network's bar (HTML, one line): its name and kind, its label and probability in the label's
    colour, the probability as the bar's filled share with the network's own band marked on it, and that band
    in words. The Markdown sanitiser keeps inline styles, so the bar needs no stylesheet."""
    color, p = render.label_hex(s.label), s.fake_probability
    share = "n/a" if p is None else f"{float(p) * 100:.1f}%"
    fill = "0%" if p is None else share
    return (f"<div class='network-score network-{s.label}' style='margin:0.5em 0'>"
            f"<div style='display:flex;justify-content:space-between;gap:1em'>"
            f"<span><b>{html.escape(s.network)}</b> ({render.kind_text(s.kind)})</span>"
            f"<span style='color:{color};font-weight:700'>{s.label} {share}</span></div>"
            f"<div style='position:relative;height:10px;background:#e5e7eb;border-radius:5px'>"
            f"<div style='width:{fill};height:100%;background:{color};border-radius:5px'></div>"
            f"{_band_marks(s)}</div>"
            f"<div style='font-size:0.85em;opacity:0.8'>{render.band_text(s.real_below, s.threshold)}</div></div>")


def score_bars(result) -> str:
    """One bar per network (empty for a result without per-network scores)."""
    bars = "".join(score_bar(s) for s in render.scores_of(result))
    return f"<div class='network-scores'>{bars}</div>" if bars else ""


def headline(result) -> str:
    """"FAKE: fake probability 0.950 — likely fully generated": the combined label, the probability of the
    network behind it (with one network, the result's own) and, for FAKE, the likely kind."""
    lead = render.lead_score(result)
    p = result.fake_probability if lead is None else lead.fake_probability
    return f"{result.label}: fake probability {p:.3f}{render.likely_text(result, ' — likely ')}"


def _band_sentence(result) -> str:
    """The band the sliders set, with its exact bounds; with several networks, whose band it is."""
    real, fake = _bounds(result)
    scores = render.scores_of(result)
    if len(scores) > 1:
        return (f"Band of the {scores[0].network} network (the sliders): {band_line(real, fake)}; the other "
                "networks keep their own bands (under their bars).")
    return f"Band: {band_line(real, fake)}."


def verdict_markdown(result, what: str = "image") -> str:
    label = result.label
    band = _band_sentence(result)
    if label == NO_FACE:
        return (f"<div class='verdict verdict-NO_FACE'><h2>No face detected - no verdict</h2></div>\n\n"
                f"The {what} was not scored. Try a picture with a clear, reasonably large, frontal face.\n\n{band}")
    video = getattr(result, "kind", "") == "video"
    faces = tuple(getattr(result, "faces", None) or ())
    extra = ""
    if video:
        extra = f" {result.frames_with_face}/{result.frames_sampled} sampled frames with a face."
    elif faces:
        extra = f" {len(faces)} face(s)."
    lines = [f"<div class='verdict verdict-{label}'><h2>{headline(result)}</h2></div>"]
    if render.scores_of(result):
        lines.append(score_bars(result))
    if label == UNCERTAIN:
        lines.append(_why_uncertain(result))
    lines.append(f"{band}{extra} Face detector: {result.face_detector}.")
    if video:
        lines.append(_video_gates(result))
    elif faces and (len(faces) > 1 or any(getattr(f, "reasons", ()) for f in faces)):
        lines.append("\n".join(_face_lines(faces)))
    for w in getattr(result, "warnings", ()) or ():
        lines.append(f"\n> Note: {w}")
    return "\n\n".join(lines)


def _gates_text(gates) -> str:
    """The quality gates' thresholds in words (a minimum at 0 never fails: off)."""
    def minimum(v, what):
        return f"{what} below {v:g}" if v > 0 else f"{what}: off"
    yaw = math.degrees(math.atan(gates.max_yaw))
    return (f"UNCERTAIN, not judged, when the {minimum(gates.min_side_px, 'face side (px)')}, "
            f"{minimum(gates.min_sharpness, 'sharpness (Laplacian variance)')}, "
            f"{minimum(gates.min_brightness, 'brightness (mean luma 0-255)')}, or head turn (yaw) above "
            f"{gates.max_yaw:g} (about {yaw:.0f} degrees)")


def _percent(share) -> str:
    return f"{float(share) * 100:g}%"


def _count(entry: dict, band: str) -> str:
    n = entry["counts"][band]
    return f"{n} ({entry['shares'][band]:.1%})" if entry.get("shares") else str(n)


def _share(mean: dict | None, band: str) -> str:
    return "-" if not mean else f"{mean[band]:.1%}"


def validation_table(at_validation) -> list[str]:
    """Validation faces per band and source (deepfake.band.band_counts: real faces and fakes called FAKE,
    UNCERTAIN and REAL, count (share)), pooled, and the mean share over sources; "no calibration
    recorded" without counts."""
    if not isinstance(at_validation, dict) or not isinstance(at_validation.get("per_source"), dict):
        return ["_No calibration recorded: the model config holds no validation counts per band._"]
    head = ("How many validation faces of each source land in each band (count, and share of that class):", "",
            "| Source | Real faces | called FAKE | UNCERTAIN | REAL | Fakes | called FAKE | UNCERTAIN | REAL |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    rows = list(head)
    entries = list(at_validation["per_source"].items())
    if isinstance(at_validation.get("overall"), dict):
        entries.append(("**all sources**", at_validation["overall"]))
    for name, v in entries:
        cells = []
        for cls in ("real", "fake"):
            e = v.get(cls) or {}
            if not e.get("n"):
                cells += ["0", "-", "-", "-"]
            else:
                cells += [str(e["n"])] + [_count(e, b) for b in (FAKE, UNCERTAIN, REAL)]
        rows.append(f"| {str(name).replace('|', '/')} | " + " | ".join(cells) + " |")
    mean = at_validation.get("mean_over_sources")
    if isinstance(mean, dict):
        rows.append("| **mean over sources** | | " + " | ".join(_share(mean.get("real"), b) for b in (FAKE, UNCERTAIN, REAL))
                    + " | | " + " | ".join(_share(mean.get("fake"), b) for b in (FAKE, UNCERTAIN, REAL)) + " |")
    return rows


# What each kind of network looks for, for the Model tab and the app's introduction.
KIND_WORDS = {"face_swap": "face swap / blending artefacts", "generated": "fully generated faces"}


def kinds_phrase(det) -> str:
    """What the detector's networks look for: "face swap / blending artefacts; fully generated faces"."""
    kinds = [m.kind for m in getattr(det, "members", ())] or ["face_swap"]
    return "; ".join(render.kind_text(k, KIND_WORDS) for k in dict.fromkeys(kinds))


def networks_table(det) -> list[str]:
    """The Model tab's networks: each one's name, what it finds, its band, temperature and source."""
    members = tuple(getattr(det, "members", ()))
    if len(members) > 1:
        lead = (f"{len(members)} networks score each face, each by its own band: FAKE if any network says FAKE, "
                "REAL if every network says REAL, UNCERTAIN otherwise. The likely kind of fake is that of the "
                "network furthest into its FAKE range. The sliders set the first network's band.")
    else:
        lead = "One network scores each face; the sliders set its band."
    rows = [lead, "", "| Network | Finds | Band | Temperature | Source |", "|---|---|---|---|---|"]
    for m in members:
        b = m.band
        rows.append(f"| {html.escape(m.name).replace('|', '/')} | {render.kind_text(m.kind, KIND_WORDS)} "
                    f"| {band_line(b.real_below, b.fake_from)} | {m.network.config.temperature:g} "
                    f"| `{m.model_id}` @ `{m.revision}` |")
    return rows


def model_markdown(det, card_text: str | None, reliability: bool = False) -> str:
    """The Model tab: the detector in use, its band and calibration, quality gates, card and limitations.
    reliability: the tab shows the model folder's reliability plot below this text."""
    cfg = det.config
    fd = det.face_detector
    band = det.band
    raw_band = (cfg.raw.get("deepfake") or {}).get("band") or {}
    rows = [
        ("Model", f"`{det.model_id}`"), ("Revision", f"`{det.revision}`"),
        ("Architecture", f"`{cfg.architecture}`"), ("Labels", ", ".join(cfg.label_names)),
        ("Decision threshold", render.threshold_text(cfg.threshold)
         + (f" ({cfg.threshold_rule})" if cfg.threshold_rule else "")),
        ("Decision band", band_line(band.real_below, band.fake_from)
         + ("" if cfg.band is not None else " - the config states no band, only its threshold")),
    ]
    if raw_band.get("rule"):
        rows.append(("Band rule", str(raw_band["rule"])))
    if raw_band.get("max_fpr") is not None and raw_band.get("max_fnr") is not None:
        rows.append(("Error budgets", f"at most {_percent(raw_band['max_fpr'])} of real faces called FAKE, at most "
                                      f"{_percent(raw_band['max_fnr'])} of fakes called REAL (mean over sources)"))
    rows += [
        ("Temperature", f"{cfg.temperature:g}" + (" (no temperature scaling)" if cfg.temperature == 1 else
                                                 " (probabilities are softmax(logits / T), fitted on validation)")),
        ("Quality gates", _gates_text(cfg.gates)),
        ("Face crop", f"margin {cfg.crop.margin}, {cfg.crop.size} px"),
        ("Face detector", f"{fd.name} ({fd.source})"),
        ("Upload limit", f"{settings.MAX_FILE_SIZE_MB} MB per file"),
        ("Image limit", f"{media.MAX_IMAGE_PIXELS // 1_000_000} megapixels ({media.ACCEPTED_IMAGES})"),
        ("Video limits", f"up to 4K, {media.MAX_VIDEO_SECONDS // 60} minutes, "
                         f"{media.MAX_SAMPLED_FRAMES} sampled frames ({media.ACCEPTED_VIDEOS})"),
    ]
    out = ["## Detector in use", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    for w in getattr(det, "load_warnings", ()):
        out.append(f"\n> Warning: {w}")
    out += ["", "## Networks", ""] + networks_table(det)
    if cfg.data_summary:
        out += ["", f"**Training data:** {cfg.data_summary}"]
    out += ["", "## Validation faces per band", ""] + validation_table(raw_band.get("at_validation"))
    out += ["", "## Calibration", "",
            "The reliability plot at the end of this tab shows the validation faces' calibration before and "
            "after temperature scaling." if reliability else "_No reliability plot in the model folder._"]
    out += ["", "## Model card", "", card_text or "_No model card found in the model folder._",
            "", "## Limitations", "", report.LIMITATIONS]
    return "\n".join(out)


def read_card(folder) -> str | None:
    if folder is None:
        return None
    path = Path(folder) / "README.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.startswith("---"):  # YAML front matter is metadata for the Hub, not for readers
        end = text.find("\n---", 3)
        if end != -1:
            text = text[end + 4:]
    return text.strip()


def threshold_step(default: float) -> float:
    """A band slider's step: 0.001, or finer when the default has more decimals, so that the default
    lies on the slider's grid (a browser's range input snaps its value to the grid)."""
    decimals = -Decimal(render.threshold_text(default)).as_tuple().exponent
    return float(f"1e-{max(3, decimals)}")
