"""The command line: `python -m deepfake predict | train | evaluate | threshold | push`.

predict prints one JSON object per input file per line on stdout; progress, warnings, a readable line per file
and the counts per label go to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from . import render
from .band import BANDS, FAKE, NO_FACE, UNCERTAIN, Band
from .detector import DEFAULT_FRAMES, load_detector
from .errors import DeepfakeError, InputError
from .explain import CAM_METHODS
from .media import is_media_name, load_image, media_kind, unsupported_reason
from .video import AGGREGATIONS

try:
    from .train.commands import register as register_training
except ImportError as exc:  # training extras missing: predict still works
    logging.getLogger(__name__).debug("training commands unavailable: %s", exc)
    register_training = None


def collect_inputs(paths: list[str]) -> tuple[list[Path], int]:
    """(files to answer, files skipped): files as given, and every file below a directory (recursive,
    sorted) whose name is an image's or a video's, read by the package or not (those get an error line).
    Other files below a directory are only counted."""
    files, skipped = [], 0
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    if is_media_name(f):
                        files.append(f)
                    else:
                        skipped += 1
        else:
            files.append(path)
    return files, skipped


def _write_explanations(det, path: Path, result, outdir: Path, args) -> dict:
    """Grad-CAM and grid-heatmap PNGs (images), frame-importance JSON (videos). Returns written names."""
    outdir.mkdir(parents=True, exist_ok=True)
    stem = path.stem
    written = {}
    if result.kind == "video":
        name = f"{stem}.frame_importance.json"
        rows = [{"index": f.index, "timestamp_s": f.timestamp_s, "fake_probability": f.fake_probability,
                 "label": f.label, "reasons": list(f.reasons),
                 "importance_leave_one_out": f.importance_leave_one_out, "importance_blank": f.importance_blank}
                for f in result.frames]
        (outdir / name).write_text(json.dumps(rows, indent=1))
        written["frame_importance"] = name
        return written
    if result.fake_probability is None:
        return written
    cam = det.grad_cam(path, args.cam_method, threshold=args.threshold, whole_image=args.whole_image,
                       real_below=args.real_below)
    Image.fromarray(render.cam_overlay(load_image(path), cam)).save(outdir / f"{stem}.gradcam.png")
    written["gradcam"] = f"{stem}.gradcam.png"
    occ = det.occlusion_map(path, grid=args.grid, threshold=args.threshold, whole_image=args.whole_image,
                            real_below=args.real_below)
    Image.fromarray(render.occlusion_overlay(occ)).save(outdir / f"{stem}.grid.png")
    (outdir / f"{stem}.grid.json").write_text(json.dumps(occ.to_dict()))
    written["grid"] = f"{stem}.grid.png"
    written["grid_json"] = f"{stem}.grid.json"
    return written


def request_band(det, threshold: float | None, real_below: float | None) -> Band:
    """The band a run asks for: the model's, with the bounds given replaced (as Detector does for each call:
    without --real-below, the model's REAL bound, moved down to a lower threshold). InputError when the bounds
    are out of [0, 1] or the REAL bound is above the threshold, so a bad pair stops the run before any file."""
    for flag, v in (("--threshold", threshold), ("--real-below", real_below)):
        if v is not None and not 0.0 <= v <= 1.0:  # NaN fails this too
            raise InputError(f"{flag} must be between 0 and 1, got {v:g}.")
    try:
        return det.band_for(threshold, real_below)  # the detector's rule, so the check cannot drift from it
    except InputError:  # within [0, 1], only a REAL bound above the threshold is refused: say it with the flags
        t = det.band.fake_from if threshold is None else threshold
        raise InputError(f"--real-below ({real_below:g}) must not be above the threshold ({t:g}).") from None


def summary_line(path, result) -> str:
    """One readable line per file: label (with the likely kind of fake after a FAKE), probability and why an
    UNCERTAIN is one. With several networks, each network's probability and label instead of the first's
    p(fake) alone, since the combined label may come from any of them."""
    scores = render.scores_of(result)
    multi = len(scores) > 1
    text = f"{path}: {result.label}"
    if result.label == FAKE and getattr(result, "manipulation", None):
        text += f" ({result.manipulation})"
    if multi and result.fake_probability is not None:
        text += f" [{render.scores_text(scores)}]"
    elif result.fake_probability is not None:
        text += f" p(fake)={result.fake_probability:.3f}"
    if result.kind == "video":
        text += f" ({result.frames_judged}/{result.frames_sampled} frames judged)"
    if result.reasons:
        text += f" - no face passed the quality gates: {render.reasons_text(result.reasons)}"
    elif result.label == UNCERTAIN and not multi:  # several networks: the list above says which is undecided
        text += f" - between the bounds ({render.band_text(result.real_below, result.threshold)})"
    return text


def counts_line(counts: dict) -> str:
    """"3 files: 1 FAKE, 1 UNCERTAIN, 0 REAL, 1 NO_FACE, 0 failed"."""
    n = sum(counts.values())
    parts = ", ".join(f"{counts[k]} {k}" for k in (*BANDS, NO_FACE)) + f", {counts['failed']} failed"
    return f"{n} file{'s' * (n != 1)}: {parts}"


def cmd_predict(args) -> int:
    try:
        det = load_detector(args.model, face_detector=args.face_detector)
        request_band(det, args.threshold, args.real_below)
    except DeepfakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Fallback warnings (Hub, face detector) were already logged to stderr where they happened.
    inputs, skipped = collect_inputs(args.paths)
    if skipped:
        print(f"skipped {skipped} file{'s' * (skipped != 1)} that are not images or videos", file=sys.stderr)
    counts = dict.fromkeys((*BANDS, NO_FACE, "failed"), 0)
    for path in tqdm(inputs, desc="analysing", unit="file", file=sys.stderr, disable=None):
        kind = media_kind(path)
        row = {"path": str(path), "kind": kind}
        try:
            if kind is None:
                raise DeepfakeError(unsupported_reason(path))
            result = det.analyze(path, frames=args.frames, aggregation=args.aggregation,
                                 threshold=args.threshold, whole_image=args.whole_image, real_below=args.real_below)
            row.update(result.to_dict())
            if args.explain:
                row["explanations"] = _write_explanations(det, path, result, Path(args.explain), args)
        except DeepfakeError as exc:
            row["error"] = str(exc)
        except Exception as exc:  # one bad file must not end the run; say what failed, without a traceback
            row["error"] = f"unexpected {type(exc).__name__} while analysing this file"
            logging.getLogger(__name__).debug("analysis failed", exc_info=True)
        if "error" in row:
            counts["failed"] += 1
            tqdm.write(f"{path}: failed ({row['error']})", file=sys.stderr)
        else:
            counts[result.label] = counts.get(result.label, 0) + 1
            tqdm.write(summary_line(path, result), file=sys.stderr)
        print(json.dumps(row), flush=True)
    if inputs:
        print(counts_line(counts), file=sys.stderr)
    return 1 if counts["failed"] else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deepfake", description="Explainable deepfake detection.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="analyse images and videos; one JSON line per file")
    p.add_argument("paths", nargs="+", help="files or directories (searched recursively)")
    p.add_argument("--model", default=None, help="detector folder or Hub repo ORG/NAME[@REV] (default: "
                   "$DEEPFAKE_MODEL, else the bundled model)")
    p.add_argument("--face-detector", default=None, help="'yunet' (default), 'haar' or a YuNet .onnx path")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames sampled per video")
    p.add_argument("--aggregation", choices=AGGREGATIONS, default="mean", help="video score from frame scores")
    p.add_argument("--threshold", type=float, default=None,
                   help="FAKE from this fake probability (default: the model's threshold)")
    p.add_argument("--real-below", type=float, default=None,
                   help="REAL below this fake probability, UNCERTAIN from it up to the threshold (default: the "
                        "model's REAL bound, at most the threshold); must not be above the threshold")
    p.add_argument("--whole-image", action="store_true", help="score the whole image when no face is found")
    p.add_argument("--explain", metavar="OUTDIR", default=None,
                   help="write Grad-CAM and grid-heatmap PNGs (images) and frame importance JSON (videos)")
    p.add_argument("--cam-method", choices=list(CAM_METHODS), default="gradcam")
    p.add_argument("--grid", type=int, default=8, help="grid size of the occlusion heatmap (2-32)")
    p.set_defaults(func=cmd_predict)
    if register_training is not None:
        register_training(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
