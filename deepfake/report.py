"""Downloadable reports of one analysis: a JSON dict and one self-contained HTML page (images inlined
as base64 PNG). Only what the result says and the name/hash of the input: never a server path, an
environment value or a traceback."""
from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import html
import os
from pathlib import PurePath

from . import __version__
from .render import png_bytes, threshold_text

REPORT_VERSION = 1

LIMITATIONS = (
    "This is an automated estimate, not proof. The detector is a small image classifier trained on "
    "self-blended face swaps; it can miss manipulations it was not trained on (fully synthetic faces, "
    "lip-sync, face reenactment, new generators), and heavy compression, resizing, filters, low light, "
    "occlusion or non-frontal faces can push a genuine face toward FAKE or a fake toward REAL. Only faces "
    "are examined: the rest of the picture, the audio and the context are not. The probability depends on "
    "the chosen threshold and was calibrated on the validation data described in the model card. The "
    "heatmaps show where the model's fake score reacts, which is not necessarily where a manipulation is; "
    "Grad-CAM maps are rescaled per face, so read them together with the probability written on them. "
    "Do not base decisions about people on this result alone."
)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    """A JSON-ready report: input name and SHA-256, time, software, model, face detector, threshold,
    verdict and every score of the result, settings used, limitations."""
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
        "label": getattr(base, "label", None),
        "fake_probability": getattr(base, "fake_probability", None),
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
.NO_FACE{color:#4b5563;font-weight:700}.verdict{font-size:1.4rem}figure{margin:1rem 0}
img{max-width:100%;height:auto;border:1px solid #e5e7eb}figcaption{font-size:.85rem;color:#4b5563}
.warn{background:#fef3c7;padding:.5rem .8rem;border-radius:4px}.lim{background:#f3f4f6;padding:.8rem;border-radius:4px}
@media (prefers-color-scheme: dark){body{background:#111827;color:#e5e7eb}th{background:#1f2937}
td,th{border-color:#374151}.lim{background:#1f2937}.warn{background:#78350f;color:#fef3c7}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _p(value) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _table(headers, rows) -> str:
    """headers None: a key/value table without a header row."""
    head = "" if headers is None else "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in headers) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _img_tag(image, caption: str) -> str:
    data = base64.b64encode(png_bytes(image)).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _faces_rows(faces):
    return [[str(i), _e(tuple(f.box)), _p(f.fake_probability), f'<span class="{_e(f.label)}">{_e(f.label)}</span>',
             _p(f.detection_score)] for i, f in enumerate(faces)]


def report_html(result, *, input_name, input_sha256: str | None = None, images: dict | None = None,
                created: str | None = None, settings: dict | None = None, title: str | None = None) -> str:
    """One self-contained HTML page: summary, per-face and per-frame scores, the explanation images
    (`images`: caption -> RGB array or matplotlib figure, inlined as PNG) and the limitations."""
    rep = report_json(result, input_name=input_name, input_sha256=input_sha256, created=created,
                      settings=settings)
    base = _base(result)
    label = rep["label"] or "NO_FACE"
    summary = [
        ["Input file", _e(rep["input"]["name"])],
        ["SHA-256", f"<code>{_e(rep['input']['sha256'] or 'n/a')}</code>"],
        ["Analysed (UTC)", _e(rep["created_utc"])],
        ["Verdict", f'<span class="{_e(label)} verdict">{_e(label)}</span>'],
        ["Fake probability", _p(rep["fake_probability"])],
        ["Threshold", "n/a" if rep["threshold"] is None else _e(threshold_text(rep["threshold"]))],
        ["Model", _e(rep["model"]["id"])],
        ["Model revision", f"<code>{_e(rep['model']['revision'])}</code>"],
        ["Face detector", _e(rep["face_detector"])],
        ["Software", _e(f"deepfake {__version__}")],
    ]
    for k, v in (settings or {}).items():
        if k != "threshold":  # already above
            summary.append([_e(k.replace("_", " ").capitalize()), _e(v)])
    parts = [f"<h1>{_e(title or 'Deepfake analysis report')}</h1>", _table(None, summary)]
    if label == "NO_FACE":
        parts.append("<p><b>No face was detected, so no verdict is given.</b></p>")
    warnings = tuple(getattr(base, "warnings", ()) or ())
    if warnings:
        parts.append('<div class="warn"><b>Warnings</b><ul>' + "".join(f"<li>{_e(w)}</li>" for w in warnings)
                     + "</ul></div>")
    if getattr(base, "kind", "") == "video":
        parts.append("<h2>Video</h2>")
        parts.append(_table(None, [
            ["Frames sampled", _e(base.frames_sampled)], ["Frames with a face", _e(base.frames_with_face)],
            ["Aggregation", _e(base.aggregation)], ["Duration (s)", _e(base.duration_s)], ["FPS", _e(base.fps)],
            ["Size", _e(f"{base.width}x{base.height}")]]))
        parts.append("<h2>Per-frame scores</h2>")
        rows = []
        for fr in base.frames:
            rows.append([_e(fr.index), _e(f"{fr.timestamp_s:.3f}"), _p(fr.fake_probability), _e(len(fr.faces)),
                         _p(fr.importance_leave_one_out), _p(fr.importance_blank)])
        parts.append(_table(["frame", "time (s)", "p(fake)", "faces", "importance (leave-one-out)",
                             "importance (blank frame)"], rows))
    else:
        parts.append("<h2>Faces</h2>")
        faces = getattr(base, "faces", ())
        parts.append(_table(["face", "box (x, y, w, h)", "p(fake)", "verdict", "detection score"],
                            _faces_rows(faces)) if faces else "<p>No face detected.</p>")
    if type(result).__name__ == "OcclusionResult":
        parts.append(f"<h2>Grid occlusion ({result.grid}x{result.grid}, baseline {_e(result.baseline)})</h2>")
        parts.append("<p>Each cell: fake probability of the face crop minus that with the cell occluded "
                     "(positive: the cell pushes toward FAKE).</p>")
        rows = [[_e(i)] + [f"{float(v):+.4f}" for v in row] for i, row in enumerate(result.changes)]
        parts.append(_table(["row"] + [str(j) for j in range(result.grid)], rows))
    if type(result).__name__ == "CamResult":
        parts.append(f"<h2>Class activation map: {_e(result.method)}</h2><p>Map of the '{_e(result.target)}' "
                     "output, computed on each face crop and rescaled per face to full range.</p>")
    if images:
        parts.append("<h2>Images</h2>")
        parts.extend(_img_tag(img, cap) for cap, img in images.items() if img is not None)
    parts.append(f'<h2>Limitations</h2><p class="lim">{_e(LIMITATIONS)}</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title or 'Deepfake analysis report')} - {_e(rep['input']['name'])}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}"
            "<p><small>Generated by the explainable deepfake detector.</small></p></body></html>\n")
