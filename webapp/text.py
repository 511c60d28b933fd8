"""The app's text: verdict and model-card markdown, the threshold slider's step."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from deepfake import media, render, report
from deepfake.results import FAKE, NO_FACE, REAL

from . import settings


def verdict_markdown(result, what: str = "image") -> str:
    label = result.label
    if label == NO_FACE:
        return (f"<div class='verdict verdict-NO_FACE'><h2>No face detected - no verdict</h2></div>\n\n"
                f"The {what} was not scored. Try a picture with a clear, reasonably large, frontal face.")
    name = {FAKE: "FAKE", REAL: "REAL"}[label]
    extra = ""
    if getattr(result, "kind", "") == "video":
        extra = f" &nbsp; {result.frames_with_face}/{result.frames_sampled} sampled frames with a face."
    elif getattr(result, "faces", None):
        extra = f" &nbsp; {len(result.faces)} face(s)."
    lines = [f"<div class='verdict verdict-{label}'><h2>{name}: fake probability "
             f"{result.fake_probability:.3f}</h2></div>",
             f"Threshold {render.threshold_text(result.threshold)} (FAKE when the probability is at least the "
             f"threshold).{extra} "
             f"Face detector: {result.face_detector}."]
    for w in getattr(result, "warnings", ()) or ():
        lines.append(f"\n> Note: {w}")
    return "\n\n".join(lines)


def model_markdown(det, card_text: str | None) -> str:
    cfg = det.config
    fd = det.face_detector
    rows = [
        ("Model", f"`{det.model_id}`"), ("Revision", f"`{det.revision}`"),
        ("Architecture", f"`{cfg.architecture}`"), ("Labels", ", ".join(cfg.label_names)),
        ("Decision threshold", render.threshold_text(cfg.threshold)
         + (f" ({cfg.threshold_rule})" if cfg.threshold_rule else "")),
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
    if cfg.data_summary:
        out += ["", f"**Training data:** {cfg.data_summary}"]
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
    """The threshold slider's step: 0.001, or finer when the default has more decimals, so that the default
    lies on the slider's grid (a browser's range input snaps its value to the grid)."""
    decimals = -Decimal(render.threshold_text(default)).as_tuple().exponent
    return float(f"1e-{max(3, decimals)}")
