"""Downloadable reports of one analysis: a JSON dict and one self-contained HTML page.

Images are inlined as base64 PNG. Only what the result says and the name/hash of the input: never a server path,
an environment value or a traceback."""
from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import os
from pathlib import PurePath

import jinja2
import markupsafe

from . import __version__
from .render import band_text, kind_text, png_bytes, reasons_text, scores_of, scores_text, threshold_text

REPORT_VERSION = 1

LIMITATIONS = (
    "This is an automated estimate, not proof. The detector is a small image classifier trained on "
    "self-blended face swaps (with, in the bundled detector, a second network for GAN-generated faces); it can "
    "miss manipulations it was not trained on (diffusion-generated faces, lip-sync, face reenactment, new "
    "generators), and heavy compression, resizing, filters, low light, "
    "occlusion or non-frontal faces can push a genuine face toward FAKE or a fake toward REAL. Only faces "
    "are examined: the rest of the picture, the audio and the context are not. The probability depends on "
    "the chosen threshold and was calibrated on the validation data described in the model card. The "
    "heatmaps show where the model's fake score reacts, which is not necessarily where a manipulation is; "
    "Grad-CAM maps are rescaled per face, so read them together with the probability written on them. "
    "Do not base decisions about people on this result alone."
)


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def safe_name(name: str | os.PathLike | None) -> str:
    """The file's own name, without any directory (server paths never reach a report)."""
    if not name:
        return "(unnamed input)"
    text = str(name).replace("\\", "/")
    return PurePath(text).name or "(unnamed input)"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _kind(result) -> str:
    name = type(result).__name__
    return {"ImageResult": "image", "VideoResult": "video", "CamResult": "explanation",
            "OcclusionResult": "grid_heatmap"}.get(name, getattr(result, "kind", "result"))


def _base(result):
    """The ImageResult/VideoResult a result is about (CamResult/OcclusionResult carry one)."""
    inner = getattr(result, "result", None)
    return inner if inner is not None and dataclasses.is_dataclass(inner) else result


def report_json(result, *, input_name, input_sha256: str | None = None, created: str | None = None,
                settings: dict | None = None, extra: dict | None = None) -> dict:
    """A JSON-ready report: input name and SHA-256, time, software, model, face detector, band (threshold =
    FAKE from, real_below = REAL below), verdict and its reasons, the likely kind of fake and each network's
    score (`manipulation`, `scores`), every score of the result (`result`: its
    to_dict, per-face quality and gates included), settings used, limitations."""
    base = _base(result)
    report = {
        "report_version": REPORT_VERSION,
        "kind": _kind(result),
        "created_utc": created or _now(),
        "input": {"name": safe_name(input_name), "sha256": input_sha256},
        "software": {"package": "deepfake", "version": __version__},
        "model": {"id": getattr(base, "model_id", None), "revision": getattr(base, "model_revision", None)},
        "face_detector": getattr(base, "face_detector", None),
        "threshold": getattr(base, "threshold", None),
        "real_below": getattr(base, "real_below", None),
        "label": getattr(base, "label", None),
        "fake_probability": getattr(base, "fake_probability", None),
        "reasons": list(getattr(base, "reasons", ()) or ()),
        # The likely kind of fake (FAKE only) and each network's say; `result` has them per face and frame too.
        "manipulation": getattr(base, "manipulation", None),
        "scores": [s.to_dict() for s in getattr(base, "scores", ()) or ()],
        "settings": dict(settings or {}),
        "result": result.to_dict(),
        "limitations": LIMITATIONS,
    }
    if extra:
        report.update(extra)
    return report


# ---------------------------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:980px;
padding:0 1rem;color:#111827;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}td,th{border:1px solid #e5e7eb;padding:.25rem .6rem;
text-align:left}th{background:#f3f4f6}.FAKE{color:#b91c1c;font-weight:700}.REAL{color:#15803d;font-weight:700}
.UNCERTAIN{color:#b45309;font-weight:700}.NO_FACE{color:#4b5563;font-weight:700}.verdict{font-size:1.4rem}
figure{margin:1rem 0}
img{max-width:100%;height:auto;border:1px solid #e5e7eb}figcaption{font-size:.85rem;color:#4b5563}
.warn{background:#fef3c7;padding:.5rem .8rem;border-radius:4px}.lim{background:#f3f4f6;padding:.8rem;border-radius:4px}
@media (prefers-color-scheme: dark){body{background:#111827;color:#e5e7eb}th{background:#1f2937}
td,th{border-color:#374151}.lim{background:#1f2937}.warn{background:#78350f;color:#fef3c7}}
"""


def _p(value) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _q(quality: dict, key: str, fmt: str) -> str:
    v = (quality or {}).get(key)
    return "n/a" if v is None else format(float(v), fmt)


def _reasons(reasons) -> str:
    return reasons_text(reasons) if reasons else "none"


def _png_base64(image) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


# The kinds of fake a network finds (deepfake.model.KINDS), in the report's words.
KIND_WORDS = {"face_swap": "face swap", "generated": "generated face"}


def _verdict(label, manipulation=None, cls: str = "") -> dict:
    """A verdict cell: the label, and the likely kind of fake after a FAKE."""
    note = f" (likely a {kind_text(manipulation, KIND_WORDS)})" if manipulation and label == "FAKE" else ""
    return {"label": label or "NO_FACE", "cls": cls, "note": note}


def _network_row(s) -> list:
    """network, kind, p(fake), band, verdict of one NetworkScore."""
    return [s.network, kind_text(s.kind, KIND_WORDS), _p(s.fake_probability), band_text(s.real_below, s.threshold),
            _verdict(s.label)]


# The page, rendered by Jinja2 with autoescape on: every value (file names, settings, warnings) is escaped;
# only this template writes markup. A cell is a value, or {"code": v} / {"label": v, "cls": extra class}.
_TEMPLATE = """\
{%- macro cell(c) -%}
{%- if c is mapping and "code" in c %}<code>{{ c.code }}</code>
{%- elif c is mapping %}<span class="{{ c.label }}{{ c.cls }}">{{ c.label }}</span>{{ c.note }}
{%- else %}{{ c }}{% endif -%}
{%- endmacro -%}
{%- macro table(headers, rows) -%}
<table>{% if headers %}<thead><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr></thead>{% endif -%}
<tbody>{% for row in rows %}<tr>{% for c in row %}<td>{{ cell(c) }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} - {{ input_name }}</title><style>{{ css }}</style></head><body>
<h1>{{ title }}</h1>{{ table(None, summary) }}
{% if no_face %}<p><b>No face was detected, so no verdict is given.</b></p>{% endif %}
{% if gated %}<p><b>No face passed the quality gates ({{ gated }}), so the label is UNCERTAIN, not a verdict.</b></p>
{% elif uncertain %}<p><b>{{ uncertain }}</b></p>{% endif %}
{% if warnings %}<div class="warn"><b>Warnings</b><ul>{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul></div>
{% endif %}
{% if networks %}<h2>Networks</h2><p>Each network looks for one kind of fake and labels by its own band. The
verdict is FAKE if any network says FAKE (the likely kind is that of the network furthest into its FAKE range),
REAL if every network says REAL, UNCERTAIN otherwise.</p>{{ table(["network", "kind of fake", "p(fake)", "band",
                                                                  "verdict"], networks) }}
{% endif %}
{% if video %}<h2>Video</h2>{{ table(None, video) }}
<h2>Per-frame scores</h2><p>Frames whose faces all failed a quality gate are UNCERTAIN and left out of the video
score (unless no frame passed).</p>{{ table(["frame", "time (s)", p_header, "verdict", "quality gates failed",
                                  "faces", "importance (leave-one-out)", "importance (blank frame)"]
                                 + (["p(fake) per network"] if networks else []), frames) }}
{% else %}<h2>Faces</h2>{% if faces %}{{ table(["face", "box (x, y, w, h)", p_header, "verdict",
                                              "quality gates failed", "size (px)", "sharpness", "brightness", "yaw",
                                              "detection score"], faces) }}
<p>A face that fails a quality gate (too small, blurred, too dark, profile) is UNCERTAIN whatever its
probability.</p>
{% if face_networks %}<h2>Each face by network</h2>{{ table(["face", "network", "kind of fake", "p(fake)", "band",
                                                            "verdict"], face_networks) }}
{% endif %}{% else %}<p>No face detected.</p>{% endif %}
{% endif %}
{% if grid %}<h2>Grid occlusion ({{ grid.size }}x{{ grid.size }}, baseline {{ grid.baseline }})</h2>
<p>Each cell: fake probability of the face crop minus that with the cell occluded (positive: the cell pushes toward
FAKE).</p>{{ table(["row"] + grid.columns, grid.rows) }}
{% endif %}
{% if cam %}<h2>Class activation map: {{ cam.method }}</h2><p>Map of the '{{ cam.target }}' output, computed on each
face crop and rescaled per face to full range.</p>
{% endif %}
{% if images %}<h2>Images</h2>
{% for caption, data in images %}<figure><img alt="{{ caption }}" src="data:image/png;base64,{{ data }}">
<figcaption>{{ caption }}</figcaption></figure>
{% endfor %}{% endif %}
<h2>Limitations</h2><p class="lim">{{ limitations }}</p>
<p><small>Generated by the explainable deepfake detector.</small></p></body></html>
"""
_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                           keep_trailing_newline=True).from_string(_TEMPLATE)


def report_html(result, *, input_name, input_sha256: str | None = None, images: dict | None = None,
                created: str | None = None, settings: dict | None = None, title: str | None = None) -> str:
    """One self-contained HTML page: summary (with the likely kind of fake after a FAKE verdict), per-face and
    per-frame scores, each network's score when there are several, the explanation images
    (`images`: caption -> RGB array or matplotlib figure, inlined as PNG) and the limitations."""
    rep = report_json(result, input_name=input_name, input_sha256=input_sha256, created=created,
                      settings=settings)
    base = _base(result)
    label = rep["label"] or "NO_FACE"
    # A result without a REAL bound had a single cut at its threshold.
    real_below = rep["real_below"] if rep["real_below"] is not None else rep["threshold"]
    scores = scores_of(base)
    multi = len(scores) > 1  # one network: its scores are the summary's, so no network tables
    of_first = f" ({scores[0].network})" if multi else ""  # the summary's probability and band are its
    summary = [
        ["Input file", rep["input"]["name"]],
        ["SHA-256", {"code": rep["input"]["sha256"] or "n/a"}],
        ["Analysed (UTC)", rep["created_utc"]],
        ["Verdict", _verdict(label, rep["manipulation"], " verdict")],
        *([["Reasons", _reasons(rep["reasons"])]] if rep["reasons"] else []),
        [f"Fake probability{of_first}", _p(rep["fake_probability"])],
        [f"Threshold{of_first}", "n/a" if rep["threshold"] is None else threshold_text(rep["threshold"])],
        [f"REAL below{of_first}", "n/a" if real_below is None else threshold_text(real_below)],
        [f"Band{of_first}", "n/a" if rep["threshold"] is None else band_text(real_below, rep["threshold"])],
        ["Model", rep["model"]["id"]],
        ["Model revision", {"code": rep["model"]["revision"]}],
        ["Face detector", rep["face_detector"]],
        ["Software", f"deepfake {__version__}"],
    ]
    summary += [[k.replace("_", " ").capitalize(), v] for k, v in (settings or {}).items()
                if k not in ("threshold", "real_below")]  # the bounds are already above
    video = frames = grid = cam = None
    if getattr(base, "kind", "") == "video":
        video = [["Frames sampled", base.frames_sampled], ["Frames with a face", base.frames_with_face],
                 ["Frames judged (a face passed the quality gates)", base.frames_judged],
                 ["Aggregation", base.aggregation], ["Duration (s)", base.duration_s], ["FPS", base.fps],
                 ["Size", f"{base.width}x{base.height}"]]
        frames = [[fr.index, f"{fr.timestamp_s:.3f}", _p(fr.fake_probability), _verdict(fr.label, fr.manipulation),
                   _reasons(fr.reasons), len(fr.faces), _p(fr.importance_leave_one_out), _p(fr.importance_blank),
                   *([scores_text(fr.scores, _p)] if multi else [])]
                  for fr in base.frames]
    faces = [[i, tuple(f.box), _p(f.fake_probability), _verdict(f.label, f.manipulation), _reasons(f.reasons),
              _q(f.quality, "side_px", ".0f"), _q(f.quality, "sharpness", ".1f"), _q(f.quality, "brightness", ".1f"),
              _q(f.quality, "yaw", ".2f"), _p(f.detection_score)]
             for i, f in enumerate(getattr(base, "faces", ()) or ())]
    face_networks = [[i, *_network_row(s)] for i, f in enumerate(getattr(base, "faces", ()) or ()) for s in f.scores
                     ] if multi else []
    uncertain = label == "UNCERTAIN" and (
        "No network says FAKE and not every network says REAL: UNCERTAIN, not a verdict." if multi else
        "The fake probability lies between the REAL bound and the FAKE threshold: UNCERTAIN, not a verdict.")
    if type(result).__name__ == "OcclusionResult":
        grid = {"size": result.grid, "baseline": result.baseline, "columns": [str(j) for j in range(result.grid)],
                "rows": [[i] + [f"{float(v):+.4f}" for v in row] for i, row in enumerate(result.changes)]}
    if type(result).__name__ == "CamResult":
        cam = {"method": result.method, "target": result.target}
    return _PAGE.render(
        title=title or "Deepfake analysis report", input_name=rep["input"]["name"], summary=summary,
        css=markupsafe.Markup(_CSS),  # this module's constant, the one unescaped value
        no_face=label == "NO_FACE", gated=reasons_text(rep["reasons"]), uncertain=uncertain,
        warnings=tuple(getattr(base, "warnings", ()) or ()), video=video,
        networks=[_network_row(s) for s in scores] if multi else [], face_networks=face_networks,
        p_header=f"p(fake){of_first}",
        frames=frames, faces=faces, grid=grid, cam=cam, limitations=LIMITATIONS,
        images=[(cap, _png_base64(img)) for cap, img in (images or {}).items() if img is not None])
