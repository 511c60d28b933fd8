"""Gradio Space: an explainable deepfake detector (image, video, grid heatmap, model card).

A thin UI over the `deepfake` package: every verdict, map and score comes from `deepfake.Detector`,
every picture from `deepfake.render`, every report from `deepfake.report`.

    python app.py            # http://127.0.0.1:7860 (0.0.0.0:7860 on a Space)

Named endpoints for gradio_client: /predict_image, /explain_image, /analyze_video, /grid_heatmap.
"""
from __future__ import annotations

import atexit
import contextlib
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from deepfake import DeepfakeError, __version__, load_detector  # noqa: E402
from deepfake import explain, media, render, report  # noqa: E402
from deepfake.results import FAKE, NO_FACE, REAL  # noqa: E402

log = logging.getLogger("deepfake.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES = ROOT / "examples"
MAX_FILE_SIZE_MB = int(os.environ.get("DEEPFAKE_MAX_FILE_MB", "64"))
QUEUE_MAX_SIZE = int(os.environ.get("DEEPFAKE_QUEUE_MAX", "24"))
# Concurrency per event group: cheap predictions run two at a time, gradient/occlusion/video one.
LIGHT_CONCURRENCY = 2
HEAVY_CONCURRENCY = 1
BUSY_MESSAGE = "The server is busy (the queue is full). Please retry in a minute."
# Request files (reports, pictures, frames) go to a folder private to this process: made at start by mkdtemp
# (mode 0700, an unpredictable name), removed at exit. A fixed path such as /tmp/deepfake-app could be made
# first, or filled with symlinks, by another local user.
TMP_ROOT = Path(tempfile.mkdtemp(prefix="deepfake-app-"))
atexit.register(shutil.rmtree, TMP_ROOT, True)
KEEP_SECONDS = 15 * 60  # request files (reports, frames) live this long, then the next request sweeps them
PREVIEW_SECONDS = 60
# Gradio's own cache (uploads, files served to clients): every 30 minutes, files older than an hour go.
DELETE_CACHE = (30 * 60, 60 * 60)
VIDEO_TYPES = sorted(media.VIDEO_EXTENSIONS)
IMAGE_TYPES = sorted(media.IMAGE_EXTENSIONS)
GRID_DEFAULT = 8
CSS = """
.verdict h2, .verdict h3 {margin: 0.2em 0;}
.verdict-FAKE {color: #dc2626;} .verdict-REAL {color: #16a34a;} .verdict-NO_FACE {color: #6b7280;}
"""
THEME = gr.themes.Soft()


# ---------------------------------------------------------------------------------------------- files
def _sweep() -> None:
    """Remove request folders older than KEEP_SECONDS (bounded temp usage)."""
    if not TMP_ROOT.is_dir():
        return
    cutoff = time.time() - KEEP_SECONDS
    for d in TMP_ROOT.iterdir():
        try:
            if d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def _workdir() -> Path:
    _sweep()
    TMP_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="req-", dir=TMP_ROOT))


def _stem(name: str) -> str:
    stem = Path(report.safe_name(name)).stem
    return re.sub(r"[^\w.-]+", "_", stem)[:60].strip("._") or "input"


def _upload_roots() -> list[Path]:
    """Where an input file may be: Gradio's upload folder (uploads, and the examples Gradio copies there)
    and this process's private folder (frames sent from the Video tab). Nothing else."""
    from gradio.utils import get_upload_folder
    return [Path(get_upload_folder()).resolve(), TMP_ROOT.resolve()]


def _uploaded(value) -> Path | None:
    """The real path (symlinks resolved) of a file under an upload root; None for anything else."""
    if isinstance(value, dict):  # FileData as a dict
        value = value.get("path")
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        return None
    try:
        real = Path(value).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_file() and any(real.is_relative_to(root) for root in _upload_roots()) else None


def _input_path(value, what: str) -> Path:
    """The uploaded file's path, refused unless it is an upload of this app."""
    if value is None or value == "":
        raise gr.Error(f"Please upload {what} first.")
    real = _uploaded(value)
    if real is None:
        raise gr.Error(f"Only files uploaded to this app can be analysed; please upload {what}.")
    return real


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _png(folder: Path, name: str, image) -> str:
    """An output picture as a PNG file in the request folder. Gradio copies a returned file into its cache
    by write-and-rename (save_file_to_cache); a returned array would go through save_pil_to_cache, which
    rewrites a content-addressed file in place while another client may be downloading it (0-byte files)."""
    path = folder / name
    path.write_bytes(render.png_bytes(image))
    return str(path)


def _reports(folder: Path, result, name: str, sha: str, images: dict, settings: dict, title: str):
    created = report._now()
    images = {k: (render.fit(v, 1024) if isinstance(v, np.ndarray) else v) for k, v in images.items()}
    rep = report.report_json(result, input_name=name, input_sha256=sha, created=created, settings=settings)
    page = report.report_html(result, input_name=name, input_sha256=sha, images=images, created=created,
                              settings=settings, title=title)
    stem = _stem(name)
    return (_write(folder, f"{stem}_report.json", json.dumps(rep, indent=2)),
            _write(folder, f"{stem}_report.html", page))


def _guard(fn):
    """Turn package errors into gr.Error with their message; anything else into a generic message
    (logged on the server, never shown: no traceback or path reaches the user)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except DeepfakeError as exc:
            raise gr.Error(str(exc)) from None
        except Exception:
            log.exception("request failed")
            raise gr.Error("Something went wrong while analysing this file. Please try another file.") from None
    return wrapper


# ---------------------------------------------------------------------------------------------- text
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
        ("Upload limit", f"{MAX_FILE_SIZE_MB} MB per file"),
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


def upload_image(**kwargs) -> gr.Image:
    """gr.Image whose file reaches the app unchanged (image_mode=None: no re-encoding, 16-bit and alpha
    kept), and whose unreadable uploads reach the package too, so the user gets its clear message rather
    than a generic error; but only an upload (a file under _upload_roots), never whatever path the payload
    names. (The instance's preprocess is wrapped: subclassing a component would make Gradio write a .pyi
    file beside this one.)"""
    comp = gr.Image(type="filepath", image_mode=None, **kwargs)
    original = comp.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except Exception:
            real = _uploaded(getattr(payload, "path", None))
            if real is None:
                raise gr.Error("The image could not be read. Please upload it again.") from None
            return str(real)

    comp.preprocess = preprocess
    return comp


def upload_button(**kwargs) -> gr.UploadButton:
    """A file picker for every image format the package reads, matched by extension: the image widget takes
    what the browser calls image/* and cannot show HEIC, so an iPhone photo may never reach it."""
    return gr.UploadButton(file_types=IMAGE_TYPES, file_count="single", type="filepath", size="sm", **kwargs)


# ---------------------------------------------------------------------------------------------- preview
def browser_preview(path: Path, folder: Path) -> str | None:
    """H.264/yuv420p MP4 (first PREVIEW_SECONDS, at most 640 px wide) that any browser plays, whatever
    the upload's codec. None when ffmpeg is missing or fails: the analysis does not depend on it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    out = folder / f"{_stem(path.name)}_preview.mp4"
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-t", str(PREVIEW_SECONDS),
           "-an", "-vf", "scale='min(640,iw)':-2:flags=area,format=yuv420p", "-c:v", "libx264",
           "-preset", "veryfast", "-crf", "28", "-movflags", "+faststart", str(out)]
    try:
        subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError):
        return None
    return str(out) if out.is_file() and out.stat().st_size > 0 else None


# ---------------------------------------------------------------------------------------------- app
def report_outputs():
    """(JSON report file, HTML report file, result JSON) components, in a tab's layout."""
    with gr.Row():
        rep_json = gr.File(label="Report (JSON)", interactive=False, height=90)
        rep_html = gr.File(label="Report (HTML)", interactive=False, height=90)
    return rep_json, rep_html, gr.JSON(label="Result", open=False, max_height=320)


def example_cache_dir(det) -> Path | None:
    """This detector's own folder of cached example outputs, keyed by everything an output depends on: model
    id, revision, digests of its weights and config, face detector, package version. So no other model's
    cached verdicts are ever served. None (examples not cached) when there are no weights to digest."""
    weights = Path(det.folder) / "model.safetensors" if det.folder else None
    if weights is None or not weights.is_file():
        return None
    fd = det.face_detector
    key = json.dumps([det.model_id, det.revision, report.sha256_file(weights), det.config.raw, fd.name,
                      str(fd.source), __version__], sort_keys=True, default=str)
    base = Path(os.environ.get("GRADIO_EXAMPLES_CACHE") or ROOT / ".gradio" / "cached_examples")
    name = re.sub(r"[^\w.-]+", "_", f"{det.model_id}-{fd.name}")[:80]
    return base / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def _examples_cached_in(folder: Path | None):
    """gr.Examples made inside cache under `folder`: Gradio reads GRADIO_EXAMPLES_CACHE when an Examples is
    made. Afterwards the variable names the base folder (which holds `folder`), from which Gradio serves."""
    if folder is None:
        yield
        return
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(folder)
    try:
        yield
    finally:
        os.environ["GRADIO_EXAMPLES_CACHE"] = str(folder.parent)


def examples(names, inputs, outputs, fn, cache: bool, label="Examples (made by this project)"):
    """The project's own example files that exist, cached lazily (on first use) when cache is True."""
    files = [str(EXAMPLES / n) for n in names if (EXAMPLES / n).is_file()]
    if files:
        gr.Examples([[f] for f in files], inputs=[inputs], outputs=outputs, fn=fn, cache_examples=cache,
                    cache_mode="lazy" if cache else None, label=label)


def build_demo(detector, *, card_folder=None, cache_examples: bool = True, queue_max: int | None = None) -> gr.Blocks:
    """The Blocks app over one loaded detector (tests pass a small one). The model card is read from
    card_folder, by default the detector's own folder; queue_max defaults to QUEUE_MAX_SIZE."""
    det = detector
    default_threshold = float(det.threshold)
    card = model_markdown(det, read_card(card_folder or det.folder))
    cache_dir = example_cache_dir(det) if cache_examples else None
    cache_examples = cache_dir is not None

    # ------------------------------------------------------------------ endpoint functions
    def cam_analysis(image, method, threshold):
        """(file name, input SHA-256, CAM result, faces picture, CAM overlay, JSON report, HTML report): one
        CAM analysis, in which the faces are found and classified once."""
        path = _input_path(image, "an image")
        rgb = media.load_image(str(path))  # decoded once, for the analysis and the drawing
        cam = det.grad_cam(rgb, method, threshold=threshold)
        faces, overlay = render.draw_faces(rgb, cam.result), render.cam_overlay(rgb, cam)
        folder, stem = _workdir(), _stem(path.name)
        rj, rh = _reports(folder, cam, path.name, report.sha256_file(path),
                          {"Faces and verdicts": faces, f"{cam.method} of the fake output": overlay},
                          {"threshold": threshold, "cam_method": cam.method}, "Deepfake analysis report: image")
        return cam, _png(folder, f"{stem}_faces.png", faces), _png(folder, f"{stem}_{cam.method}.png", overlay), rj, rh

    @_guard
    def analyze_image(image, method="gradcam", threshold=default_threshold):
        """The Image tab's Analyze button: verdict, face boxes and CAM from one analysis, one pair of reports."""
        cam, faces, overlay, rj, rh = cam_analysis(image, method, threshold)
        return verdict_markdown(cam.result), faces, overlay, cam.to_dict(), rj, rh

    @_guard
    def predict_image(image, threshold=default_threshold):
        """Verdict for an image: label, fake probability, faces. Returns (verdict markdown, image with face
        boxes, result JSON, JSON report file, HTML report file)."""
        path = _input_path(image, "an image")
        rgb = media.load_image(str(path))  # decoded once, for the analysis and the drawing
        res = det.analyze_image(rgb, threshold=threshold)
        faces = render.draw_faces(rgb, res)
        folder = _workdir()
        rj, rh = _reports(folder, res, path.name, report.sha256_file(path), {"Faces and verdicts": faces},
                          {"threshold": threshold}, "Deepfake analysis report: image")
        return verdict_markdown(res), _png(folder, f"{_stem(path.name)}_faces.png", faces), res.to_dict(), rj, rh

    @_guard
    def explain_image(image, method="gradcam", threshold=default_threshold):
        """Grad-CAM (or another CAM method) of the fake output on each face. Returns (verdict markdown,
        CAM overlay, CAM result JSON, JSON report file, HTML report file)."""
        cam, _, overlay, rj, rh = cam_analysis(image, method, threshold)
        return verdict_markdown(cam.result), overlay, cam.to_dict(), rj, rh

    @_guard
    def analyze_video(video, frames=32, aggregation="mean", importance="leave_one_out",
                      threshold=default_threshold, progress=gr.Progress()):
        """Per-frame analysis of a video. Returns (verdict markdown, timeline plot, frame-importance plot,
        gallery of sampled frames, result JSON, JSON report file, HTML report file)."""
        path = _input_path(video, "a video")
        progress(0.0, desc="Reading frames")
        res = det.analyze_video(str(path), int(frames), aggregation=aggregation, threshold=threshold,
                                progress=lambda f: progress(0.9 * f, desc="Scoring frames"))
        progress(0.92, desc="Drawing")
        method = importance if importance in render.IMPORTANCE_METHODS else "leave_one_out"
        timeline = render.figure_to_rgb(render.timeline_figure(res))
        # both methods go into the report; the chosen one is also shown
        imp_figs = {m: render.figure_to_rgb(render.importance_figure(res, m)) for m in render.IMPORTANCE_METHODS}
        folder, stem = _workdir(), _stem(path.name)
        # Thumbnails from the previews the result keeps (bounded); a full frame is decoded again only when
        # one is sent to the Grid heatmap tab.
        gallery = [(_png(folder, f"{stem}_frame{fr.index:06d}.png", thumb), caption)
                   for fr, (thumb, caption) in zip(res.frames, render.frame_gallery(res))]
        rj, rh = _reports(folder, res, path.name, report.sha256_file(path),
                          {"Timeline": timeline, "Frame importance (leave-one-out)": imp_figs["leave_one_out"],
                           "Frame importance (blank frame)": imp_figs["blank"]},
                          {"frames": int(frames), "aggregation": aggregation, "threshold": threshold},
                          "Deepfake analysis report: video")
        progress(1.0)
        state = {"result": res, "video": str(path), "frames": [fr.index for fr in res.frames]}
        return (verdict_markdown(res, "video"), _png(folder, f"{stem}_timeline.png", timeline),
                _png(folder, f"{stem}_importance_{method}.png", imp_figs[method]), gallery, res.to_dict(), rj, rh,
                state)

    @_guard
    def grid_heatmap(image, grid=GRID_DEFAULT, baseline="mean", threshold=default_threshold,
                     progress=gr.Progress()):
        """Grid occlusion heatmap of the largest face. Returns (verdict markdown, heatmap with colour bar,
        occlusion result JSON, grid CSV file, JSON report file, HTML report file)."""
        path = _input_path(image, "an image")
        grid = int(grid)
        rgb = media.load_image(str(path))  # decoded once, for the analysis and the drawing
        progress(0.05, desc=f"Occluding {grid * grid} cells")
        occ = det.occlusion_map(rgb, grid=grid, baseline=baseline, threshold=threshold)
        progress(0.9, desc="Drawing")
        overlay = render.occlusion_overlay(occ)
        folder = _workdir()
        stem = _stem(path.name)
        csv_path = folder / f"{stem}_grid{grid}x{grid}.csv"
        with open(csv_path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row"] + [f"col{j}" for j in range(grid)])
            for i, row in enumerate(np.asarray(occ.changes)):
                w.writerow([i] + [f"{float(v):.6f}" for v in row])
        rj, rh = _reports(folder, occ, path.name, report.sha256_file(path),
                          {"Faces and verdicts": render.draw_faces(rgb, occ.result),
                           "Grid occlusion heatmap": overlay},
                          {"grid": grid, "baseline": baseline, "threshold": threshold},
                          "Deepfake analysis report: grid heatmap")
        progress(1.0)
        return (verdict_markdown(occ.result), _png(folder, f"{stem}_grid{grid}x{grid}.png", overlay), occ.to_dict(),
                str(csv_path), rj, rh)

    # ------------------------------------------------------------------ UI-only helpers
    def video_example(video):
        return analyze_video(video)[:-1]  # no gallery state for a cached example

    def video_preview(video):
        try:
            path = _input_path(video, "a video")
        except gr.Error:
            return None
        return browser_preview(path, _workdir())

    @_guard
    def rerender_importance(state, importance):
        if not state or "result" not in state:
            return None
        method = importance if importance in render.IMPORTANCE_METHODS else "leave_one_out"
        picture = render.figure_to_rgb(render.importance_figure(state["result"], method))
        return _png(_workdir(), f"importance_{method}.png", picture)

    def as_image_input(file):
        """A file from the upload button, into the image input as it is (the widget may not preview it)."""
        return None if file is None else str(_input_path(file, "an image"))

    def pick_frame(state, evt: gr.SelectData):
        return int(evt.index) if state else None

    @_guard
    def frame_to_grid(state, index):
        """The selected sampled frame at full size (decoded again from the upload) into the Grid tab."""
        if not state or not state.get("frames"):
            raise gr.Error("Analyse a video first, then select a frame in the gallery.")
        index = 0 if index is None else int(index)
        frame_index = state["frames"][min(max(index, 0), len(state["frames"]) - 1)]
        video = _uploaded(state["video"])
        if video is None:
            raise gr.Error("That analysis has expired; please analyse the video again.")
        frame = media.read_frame(video, frame_index)
        return _png(_workdir(), f"{_stem(video.name)}_frame{frame_index:06d}.png", frame.rgb), gr.Tabs(selected="grid")

    # ------------------------------------------------------------------ layout
    # Gradio's cache is cleaned by _clean_cache_on_schedule (started by launch), not by delete_cache=.
    with _examples_cached_in(cache_dir), gr.Blocks(title="Explainable deepfake detector") as demo:
        gr.Markdown(
            "# Explainable deepfake detector\n"
            "Finds faces, estimates how likely each is manipulated (face swap / blending artefacts), and "
            "shows **why**: Grad-CAM maps, grid occlusion heatmaps, and per-frame timelines for videos. "
            f"Uploads up to **{MAX_FILE_SIZE_MB} MB**. Images: {media.ACCEPTED_IMAGES}. "
            f"Videos: {media.ACCEPTED_VIDEOS}. The result is an estimate, not proof - see the Model tab.")
        threshold = gr.Slider(0.0, 1.0, value=default_threshold, step=threshold_step(default_threshold),
                              label="Decision threshold (FAKE when fake probability >= threshold)",
                              info=f"Default {render.threshold_text(default_threshold)} from the model config; "
                                   "shared by all tabs.", elem_id="threshold")
        with gr.Tabs() as tabs:
            # ------------------------------------------------------ image
            with gr.Tab("Image", id="image"):
                with gr.Row():
                    with gr.Column():
                        img_in = upload_image(sources=["upload", "webcam", "clipboard"],
                                          label=f"Image (max {MAX_FILE_SIZE_MB} MB)", elem_id="image-input")
                        img_file = upload_button(label="Or pick an image file (any accepted format, e.g. iPhone "
                                                       "HEIC, AVIF)", elem_id="image-file")
                        cam_method = gr.Dropdown(list(explain.CAM_METHODS), value="gradcam", label="CAM method")
                        img_btn = gr.Button("Analyze", variant="primary", elem_id="image-run")
                    with gr.Column():
                        img_verdict = gr.Markdown(label="Verdict", elem_id="image-verdict")
                        img_faces = gr.Image(label="Faces (red FAKE, green REAL)", format="png",
                                             interactive=False, elem_id="image-faces")
                        img_cam = gr.Image(label="CAM of the fake output (probability written on each map)",
                                           format="png", interactive=False, elem_id="image-cam")
                img_rep_json, img_rep_html, img_json = report_outputs()
                img_outputs = [img_verdict, img_faces, img_cam, img_json, img_rep_json, img_rep_html]
                examples(["astronaut.png", "astronaut_sbi_fake.png"], img_in, img_outputs, analyze_image,
                         cache_examples)
            # ------------------------------------------------------ video
            with gr.Tab("Video", id="video"):
                with gr.Row():
                    with gr.Column():
                        vid_in = gr.File(file_types=VIDEO_TYPES, label=f"Video (max {MAX_FILE_SIZE_MB} MB; any "
                                         "codec: a browser-playable preview is made)", elem_id="video-input")
                        vid_preview = gr.Video(label="Preview (H.264)", interactive=False, height=320,
                                               elem_id="video-preview")
                        n_frames = gr.Slider(1, media.MAX_SAMPLED_FRAMES, value=32, step=1,
                                             label="Frames to sample (evenly spaced)")
                        aggregation = gr.Radio(["mean", "confident"], value="mean", label="Video score",
                                               info="mean over frames with a face, or the DFDC winner's "
                                                    "'confident' strategy")
                        vid_btn = gr.Button("Analyze video", variant="primary", elem_id="video-run")
                    with gr.Column():
                        vid_verdict = gr.Markdown(label="Verdict", elem_id="video-verdict")
                        vid_timeline = gr.Image(label="Timeline: fake probability per sampled frame", format="png",
                                                show_label=False, interactive=False, elem_id="video-timeline")
                        importance = gr.Radio([("leave-one-out", "leave_one_out"), ("blank frame", "blank")],
                                              value="leave_one_out", label="Frame importance method")
                        vid_importance = gr.Image(label="Frame importance", format="png", interactive=False, show_label=False,
                                                  elem_id="video-importance")
                vid_gallery = gr.Gallery(label="Sampled frames (select one, then send it to Grid heatmap)",
                                         columns=8, height=420, elem_id="video-gallery")
                to_grid = gr.Button("Grid heatmap of the selected frame", size="sm")
                vid_rep_json, vid_rep_html, vid_json = report_outputs()
                vid_state = gr.State(None)
                vid_index = gr.State(None)
                vid_outputs = [vid_verdict, vid_timeline, vid_importance, vid_gallery, vid_json, vid_rep_json,
                               vid_rep_html, vid_state]
                examples(["astronaut_sbi.mp4"], vid_in, vid_outputs[:-1], video_example, cache_examples,
                         "Example (made by this project: the middle third of the frames is self-blended)")
            # ------------------------------------------------------ grid heatmap
            with gr.Tab("Grid heatmap", id="grid"):
                with gr.Row():
                    with gr.Column():
                        grid_in = upload_image(format="png", sources=["upload", "clipboard"],
                                           label=f"Image or a frame sent from the Video tab (max {MAX_FILE_SIZE_MB} MB)",
                                           elem_id="grid-input")
                        grid_file = upload_button(label="Or pick an image file (e.g. HEIC, AVIF)", elem_id="grid-file")
                        grid_size = gr.Slider(explain.GRID_MIN, explain.GRID_MAX, value=GRID_DEFAULT, step=1,
                                              label="Grid size G (G x G cells; cost grows with G squared)")
                        with gr.Row():
                            g4 = gr.Button("4 x 4", size="sm")
                            g16 = gr.Button("16 x 16", size="sm")
                        baseline = gr.Radio(list(explain.OCCLUSION_BASELINES), value="mean",
                                            label="Occlusion baseline (what replaces each cell)")
                        grid_btn = gr.Button("Compute heatmap", variant="primary", elem_id="grid-run")
                    with gr.Column():
                        grid_verdict = gr.Markdown(label="Verdict", elem_id="grid-verdict")
                        grid_img = gr.Image(label="Occlusion heatmap (red: cell pushes toward FAKE)", format="png",
                                            show_label=False, interactive=False, elem_id="grid-heatmap")
                        grid_csv = gr.File(label="Raw grid (CSV)", interactive=False, height=90)
                grid_rep_json, grid_rep_html, grid_json = report_outputs()
                examples(["astronaut_sbi_fake.png", "astronaut.png"], grid_in,
                         [grid_verdict, grid_img, grid_json, grid_csv, grid_rep_json, grid_rep_html], grid_heatmap,
                         cache_examples)
            # ------------------------------------------------------ model
            with gr.Tab("Model", id="model"):
                gr.Markdown(card, elem_id="model-card")

        # ------------------------------------------------------------------ events
        # One click, one analysis: the CAM analysis also gives the verdict and the face boxes.
        img_btn.click(analyze_image, [img_in, cam_method, threshold], img_outputs, api_visibility="private",
                      concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
        # The documented API endpoints, on no UI trigger (gr.on with no triggers: called by clients only).
        gr.on([], predict_image, [img_in, threshold], [img_verdict, img_faces, img_json, img_rep_json, img_rep_html],
              api_name="predict_image", concurrency_limit=LIGHT_CONCURRENCY, concurrency_id="light")
        gr.on([], explain_image, [img_in, cam_method, threshold],
              [img_verdict, img_cam, img_json, img_rep_json, img_rep_html], api_name="explain_image",
              concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
        img_file.upload(as_image_input, [img_file], [img_in], api_visibility="private", queue=False)
        grid_file.upload(as_image_input, [grid_file], [grid_in], api_visibility="private", queue=False)
        vid_in.upload(video_preview, [vid_in], [vid_preview], api_visibility="private", concurrency_limit=1,
                      concurrency_id="preview")
        vid_in.clear(lambda: None, None, [vid_preview], api_visibility="private", queue=False)
        vid_btn.click(analyze_video, [vid_in, n_frames, aggregation, importance, threshold], vid_outputs,
                      api_name="analyze_video", concurrency_id="heavy", concurrency_limit=HEAVY_CONCURRENCY)
        importance.change(rerender_importance, [vid_state, importance], [vid_importance], api_visibility="private",
                          queue=False)
        vid_gallery.select(pick_frame, [vid_state], [vid_index], api_visibility="private", queue=False)
        to_grid.click(frame_to_grid, [vid_state, vid_index], [grid_in, tabs], api_visibility="private")
        g4.click(lambda: 4, None, [grid_size], api_visibility="private", queue=False)
        g16.click(lambda: 16, None, [grid_size], api_visibility="private", queue=False)
        grid_btn.click(grid_heatmap, [grid_in, grid_size, baseline, threshold],
                       [grid_verdict, grid_img, grid_json, grid_csv, grid_rep_json, grid_rep_html],
                       api_name="grid_heatmap", concurrency_id="heavy", concurrency_limit=HEAVY_CONCURRENCY)

    demo.queue(max_size=QUEUE_MAX_SIZE if queue_max is None else queue_max, default_concurrency_limit=1)
    _busy_message(demo)
    return demo


def _busy_message(demo: gr.Blocks) -> None:
    """Replace Gradio's "Queue is full. Max size is N" with a message that says what to do."""
    queue = getattr(demo, "_queue", None)
    push = getattr(queue, "push", None)
    if push is None:
        return

    async def push_with_message(*args, **kwargs):
        ok, detail, state = await push(*args, **kwargs)
        if state == "queue_full":
            detail = BUSY_MESSAGE
        return ok, detail, state

    queue.push = push_with_message


def server_settings() -> tuple[str, int]:
    """0.0.0.0:7860 on a Space, 127.0.0.1:7860 elsewhere; GRADIO_SERVER_NAME/PORT win."""
    name = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    return name, port


def clean_cache_once(demo: gr.Blocks, age: float | None) -> bool:
    """One pass of Gradio's own cache deletion (files this app served or received, older than age seconds;
    examples kept). False when the pass failed: Gradio iterates its live file sets while requests add to
    them ("Set changed size during iteration"), and its built-in delete_cache task ends for good on that
    error, leaving the cache to grow for the life of the server. Here the next pass simply retries."""
    from gradio.route_utils import delete_files_created_by_app

    try:
        delete_files_created_by_app(demo, age)
        return True
    except Exception as exc:
        log.info("cache cleanup pass failed (%s: %s); retrying at the next pass", type(exc).__name__, exc)
        return False


def _clean_cache_on_schedule(demo: gr.Blocks, frequency: float, age: float) -> None:
    """Every `frequency` s delete cached files older than `age` s; everything once the server closes."""
    last = time.monotonic()
    while True:
        time.sleep(min(1.0, frequency))
        if not demo.is_running:
            clean_cache_once(demo, None)
            return
        if time.monotonic() - last >= frequency:
            clean_cache_once(demo, age)
            last = time.monotonic()


def launch(demo: gr.Blocks, **overrides):
    """demo.launch with this app's settings (theme, CSS, upload cap, minimal allowed_paths), plus the
    scheduled cleaning of Gradio's cache (DELETE_CACHE)."""
    name, port = server_settings()
    kwargs = dict(server_name=name, server_port=port, max_file_size=f"{MAX_FILE_SIZE_MB}mb", theme=THEME, css=CSS,
                  show_error=False, allowed_paths=[], footer_links=["api", "gradio"])
    kwargs.update(overrides)
    block = not kwargs.pop("prevent_thread_lock", False)
    out = demo.launch(**kwargs, prevent_thread_lock=True)  # returns, so that the cleaner can start
    _start_cleaner(demo)
    if block:
        demo.block_thread()
    return out


def _start_cleaner(demo: gr.Blocks) -> None:
    threading.Thread(target=_clean_cache_on_schedule, args=(demo, *DELETE_CACHE), name="gradio-cache-cleaner",
                     daemon=True).start()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from deepfake.hub import hub_reachable

    t0 = time.perf_counter()
    hub_reachable()  # one 2-second probe: when the Hub is unreachable, everything loads from the cache at once
    try:
        det = load_detector(None)
        det.warm_up()
    except DeepfakeError as exc:  # corrupt weights, invalid config, missing model: one clear line, no traceback
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    log.info("detector %s@%s loaded and warmed up in %.1fs (face detector: %s)", det.model_id, det.revision,
             time.perf_counter() - t0, det.face_detector.name)
    launch(build_demo(det))


if __name__ == "__main__":
    main()
