"""What each button and API endpoint does, as plain functions: the detector and the inputs in; markdown,
picture and report file paths out (tests call them without a server). A package error becomes a gr.Error
with its message; any other error a generic message, logged on the server (no traceback or path shown).

Every analysis takes the band's two bounds: `threshold` (FAKE from it) and `real_below` (REAL below it,
UNCERTAIN between). None is the detector's own (the layout binds the detector and shows those defaults); a
REAL bound above the threshold is the detector's InputError, shown as its message."""
from __future__ import annotations

import csv
import functools
import logging

import gradio as gr
import numpy as np

from deepfake import DeepfakeError, media, render, report

from . import files
from .settings import GRID_DEFAULT
from .text import verdict_markdown

log = logging.getLogger("deepfake.app")
IMAGE_REPORT = "Deepfake analysis report: image"


def guard(fn):
    """Turn package errors into gr.Error with their message; anything else into a generic message
    (logged on the server, never shown: no traceback or path reaches the user)."""
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


def _bounds(det, threshold, real_below) -> tuple[float, float | None]:
    """(threshold, REAL bound) of a request, as the detector takes them. The REAL bound at the model's own
    value, above a lower threshold, follows it down (None: what the detector does for a lone threshold):
    Gradio clients made before the REAL bound existed send only a threshold, and the client fills the REAL
    bound in with the slider's default. Any other REAL bound above the threshold is refused by the detector."""
    threshold = float(det.threshold) if threshold is None else threshold
    if real_below is not None and real_below == det.band.real_below and real_below > threshold:
        real_below = None
    return threshold, real_below


def _settings(threshold, result, **more) -> dict:
    """A report's settings: the band's bounds as applied (the REAL bound from the result: after any clamp)."""
    return {"threshold": threshold, "real_below": result.real_below, **more}


def cam_analysis(det, image, method, threshold, real_below=None):
    """(CAM result, faces picture, CAM overlay, JSON report, HTML report): one CAM analysis, in which the
    faces are found and classified once."""
    threshold, real_below = _bounds(det, threshold, real_below)
    path = files.input_path(image, "an image")
    rgb = media.load_image(str(path))  # decoded once, for the analysis and the drawing
    cam = det.grad_cam(rgb, method, threshold=threshold, real_below=real_below)
    faces, overlay = render.draw_faces(rgb, cam.result), render.cam_overlay(rgb, cam)
    folder, stem = files.workdir(), files.stem(path.name)
    rj, rh = files.write_reports(folder, cam, path.name, report.sha256_file(path),
                                 {"Faces and verdicts": faces, f"{cam.method} of the fake output": overlay},
                                 _settings(threshold, cam.result, cam_method=cam.method), IMAGE_REPORT)
    return (cam, files.write_png(folder, f"{stem}_faces.png", faces),
            files.write_png(folder, f"{stem}_{cam.method}.png", overlay), rj, rh)


@guard
def analyze_image(det, image, method="gradcam", threshold=None, real_below=None):
    """The Image tab's Analyze button: verdict, face boxes and CAM from one analysis, one pair of reports."""
    cam, faces, overlay, rj, rh = cam_analysis(det, image, method, threshold, real_below)
    return verdict_markdown(cam.result), faces, overlay, cam.to_dict(), rj, rh


@guard
def predict_image(det, image, threshold=None, real_below=None):
    """Verdict for an image: label, fake probability, faces. Returns (verdict markdown, image with face
    boxes, result JSON, JSON report file, HTML report file)."""
    threshold, real_below = _bounds(det, threshold, real_below)
    path = files.input_path(image, "an image")
    rgb = media.load_image(str(path))  # decoded once, for the analysis and the drawing
    res = det.analyze_image(rgb, threshold=threshold, real_below=real_below)
    faces = render.draw_faces(rgb, res)
    folder = files.workdir()
    rj, rh = files.write_reports(folder, res, path.name, report.sha256_file(path), {"Faces and verdicts": faces},
                                 _settings(threshold, res), IMAGE_REPORT)
    return (verdict_markdown(res), files.write_png(folder, f"{files.stem(path.name)}_faces.png", faces),
            res.to_dict(), rj, rh)


@guard
def explain_image(det, image, method="gradcam", threshold=None, real_below=None):
    """Grad-CAM (or another CAM method) of the fake output on each face. Returns (verdict markdown,
    CAM overlay, CAM result JSON, JSON report file, HTML report file)."""
    cam, _, overlay, rj, rh = cam_analysis(det, image, method, threshold, real_below)
    return verdict_markdown(cam.result), overlay, cam.to_dict(), rj, rh


def _importance(importance) -> str:
    return importance if importance in render.IMPORTANCE_METHODS else "leave_one_out"


@guard
def analyze_video(det, video, frames=32, aggregation="mean", importance="leave_one_out", threshold=None,
                  real_below=None, progress=gr.Progress()):
    """Per-frame analysis of a video. Returns (verdict markdown, timeline plot, frame-importance plot,
    gallery of sampled frames, result JSON, JSON report file, HTML report file, gallery state)."""
    threshold, real_below = _bounds(det, threshold, real_below)
    path = files.input_path(video, "a video")
    progress(0.0, desc="Reading frames")
    res = det.analyze_video(str(path), int(frames), aggregation=aggregation, threshold=threshold,
                            real_below=real_below, progress=lambda f: progress(0.9 * f, desc="Scoring frames"))
    progress(0.92, desc="Drawing")
    method = _importance(importance)
    timeline = render.figure_to_rgb(render.timeline_figure(res))
    # both methods go into the report; the chosen one is also shown
    imp_figs = {m: render.figure_to_rgb(render.importance_figure(res, m)) for m in render.IMPORTANCE_METHODS}
    folder, stem = files.workdir(), files.stem(path.name)
    # Thumbnails from the previews the result keeps (bounded); a full frame is decoded again only when
    # one is sent to the Grid heatmap tab.
    gallery = [(files.write_png(folder, f"{stem}_frame{fr.index:06d}.png", thumb), caption)
               for fr, (thumb, caption) in zip(res.frames, render.frame_gallery(res))]
    rj, rh = files.write_reports(folder, res, path.name, report.sha256_file(path),
                                 {"Timeline": timeline, "Frame importance (leave-one-out)": imp_figs["leave_one_out"],
                                  "Frame importance (blank frame)": imp_figs["blank"]},
                                 _settings(threshold, res, frames=int(frames), aggregation=aggregation),
                                 "Deepfake analysis report: video")
    progress(1.0)
    state = {"result": res, "video": str(path), "frames": [fr.index for fr in res.frames]}
    return (verdict_markdown(res, "video"), files.write_png(folder, f"{stem}_timeline.png", timeline),
            files.write_png(folder, f"{stem}_importance_{method}.png", imp_figs[method]), gallery, res.to_dict(),
            rj, rh, state)


def write_grid_csv(path, changes) -> str:
    """The occlusion grid as CSV: a header row, then one row per grid row."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        changes = np.asarray(changes)
        w.writerow(["row"] + [f"col{j}" for j in range(changes.shape[1])])
        for i, row in enumerate(changes):
            w.writerow([i] + [f"{float(v):.6f}" for v in row])
    return str(path)


@guard
def grid_heatmap(det, image, grid=GRID_DEFAULT, baseline="mean", threshold=None, real_below=None,
                 progress=gr.Progress()):
    """Grid occlusion heatmap of the largest face. Returns (verdict markdown, heatmap with colour bar,
    occlusion result JSON, grid CSV file, JSON report file, HTML report file)."""
    threshold, real_below = _bounds(det, threshold, real_below)
    path = files.input_path(image, "an image")
    grid = int(grid)
    rgb = media.load_image(str(path))  # decoded once, for the analysis and the drawing
    progress(0.05, desc=f"Occluding {grid * grid} cells")
    occ = det.occlusion_map(rgb, grid=grid, baseline=baseline, threshold=threshold,
                             real_below=real_below)
    progress(0.9, desc="Drawing")
    overlay = render.occlusion_overlay(occ)
    folder, stem = files.workdir(), files.stem(path.name)
    csv_path = write_grid_csv(folder / f"{stem}_grid{grid}x{grid}.csv", occ.changes)
    rj, rh = files.write_reports(folder, occ, path.name, report.sha256_file(path),
                                 {"Faces and verdicts": render.draw_faces(rgb, occ.result),
                                  "Grid occlusion heatmap": overlay},
                                 _settings(threshold, occ.result, grid=grid, baseline=baseline),
                                 "Deepfake analysis report: grid heatmap")
    progress(1.0)
    return (verdict_markdown(occ.result), files.write_png(folder, f"{stem}_grid{grid}x{grid}.png", overlay),
            occ.to_dict(), csv_path, rj, rh)


# ---------------------------------------------------------------------------------------------- UI only
def video_example(det, video):
    """A cached example's outputs: the video analysis without its gallery state."""
    return analyze_video(det, video)[:-1]


def video_preview(video):
    """A browser-playable preview of an uploaded video; None when there is none (no upload, no ffmpeg)."""
    try:
        path = files.input_path(video, "a video")
    except gr.Error:
        return None
    return files.browser_preview(path, files.workdir())


@guard
def rerender_importance(state, importance):
    """The frame-importance plot of the last video analysis, by the newly chosen method."""
    if not state or "result" not in state:
        return None
    method = _importance(importance)
    picture = render.figure_to_rgb(render.importance_figure(state["result"], method))
    return files.write_png(files.workdir(), f"importance_{method}.png", picture)


def as_image_input(file):
    """A file from the upload button, into the image input as it is (the widget may not preview it)."""
    return None if file is None else str(files.input_path(file, "an image"))


def pick_frame(state, evt: gr.SelectData):
    return int(evt.index) if state else None


@guard
def frame_to_grid(state, index):
    """(PNG of the selected sampled frame at full size, decoded again from the upload; the Grid tab)."""
    if not state or not state.get("frames"):
        raise gr.Error("Analyse a video first, then select a frame in the gallery.")
    index = 0 if index is None else int(index)
    frame_index = state["frames"][min(max(index, 0), len(state["frames"]) - 1)]
    video = files.uploaded(state["video"])
    if video is None:
        raise gr.Error("That analysis has expired; please analyse the video again.")
    frame = media.read_frame(video, frame_index)
    path = files.write_png(files.workdir(), f"{files.stem(video.name)}_frame{frame_index:06d}.png", frame.rgb)
    return path, gr.Tabs(selected="grid")
