"""The Blocks app: components and events only (what each event does is in handlers)."""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from deepfake import __version__, explain, media, render, report
from deepfake.files import WEIGHTS_FILE

from . import files, gradio_compat, handlers as h, settings
from .settings import (BUSY_MESSAGE, EXAMPLES, GRID_DEFAULT, HEAVY_CONCURRENCY, IMAGE_TYPES, LIGHT_CONCURRENCY,
                       RELIABILITY_FILE, ROOT, VIDEO_TYPES)
from .text import kinds_phrase, model_markdown, read_card, threshold_step


def bind(fn, det):
    """fn(det, ...) as an event function of the other arguments, whose band bounds (threshold, real_below)
    default to the detector's own: Gradio reads the parameters (names and defaults are what the API shows)
    from the signature."""
    sig = inspect.signature(fn)
    defaults = {"threshold": float(det.band.fake_from), "real_below": float(det.band.real_below)}
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p
              for p in list(sig.parameters.values())[1:]]

    @functools.wraps(fn)
    def event(*args, **kwargs):
        return fn(det, *args, **kwargs)

    event.__signature__ = sig.replace(parameters=params)
    return event


def upload_image(**kwargs) -> gr.Image:
    """gr.Image whose file reaches the app unchanged (image_mode=None: no re-encoding, 16-bit and alpha
    kept), and whose unreadable uploads reach the package too, so the user gets its clear message rather
    than a generic error; but only an upload (a file under files.upload_roots), never whatever path the
    payload names."""
    def unreadable(payload):
        real = files.uploaded(getattr(payload, "path", None))
        if real is None:
            raise gr.Error("The image could not be read. Please upload it again.") from None
        return str(real)

    return gradio_compat.lenient_preprocess(gr.Image(type="filepath", image_mode=None, **kwargs), unreadable)


def upload_button(**kwargs) -> gr.UploadButton:
    """A file picker for every image format the package reads, matched by extension: the image widget takes
    what the browser calls image/* and cannot show HEIC, so an iPhone photo may never reach it."""
    return gr.UploadButton(file_types=IMAGE_TYPES, file_count="single", type="filepath", size="sm", **kwargs)


def picture(label: str, elem_id: str, show_label: bool | None = False) -> gr.Image:
    """An output picture (a PNG file a handler wrote)."""
    return gr.Image(label=label, format="png", interactive=False, show_label=show_label, elem_id=elem_id)


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
    weights = Path(det.folder) / WEIGHTS_FILE if det.folder else None
    if weights is None or not weights.is_file():
        return None
    fd = det.face_detector
    # Every network's weights in the folder (further networks too), each network's id, revision and config, and
    # the gates in force (the code's measured defaults apply where a config.json names none).
    digests = [report.sha256_file(w) for w in sorted(Path(det.folder).rglob(WEIGHTS_FILE))]
    nets = [[m.model_id, m.revision, m.network.config.raw, m.network.config.gates.to_dict()] for m in det.members]
    key = json.dumps([det.model_id, det.revision, digests, nets, fd.name, str(fd.source), __version__],
                     sort_keys=True, default=str)
    base = Path(os.environ.get("GRADIO_EXAMPLES_CACHE") or ROOT / ".gradio" / "cached_examples")
    name = re.sub(r"[^\w.-]+", "_", f"{det.model_id}-{fd.name}")[:80]
    return base / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def examples(names, inputs, outputs, fn, cache: bool, label="Examples (made by this project)"):
    """The project's own example files that exist, cached lazily (on first use) when cache is True."""
    found = [str(EXAMPLES / n) for n in names if (EXAMPLES / n).is_file()]
    if found:
        gr.Examples([[f] for f in found], inputs=[inputs], outputs=outputs, fn=fn, cache_examples=cache,
                    cache_mode="lazy" if cache else None, label=label)


def image_tab(ev, cache: bool) -> SimpleNamespace:
    """The Image tab's components (inside a gr.Tab)."""
    with gr.Row():
        with gr.Column():
            inp = upload_image(sources=["upload", "webcam", "clipboard"], elem_id="image-input",
                               label=f"Image (max {settings.MAX_FILE_SIZE_MB} MB)")
            file = upload_button(label="Or pick an image file (any accepted format, e.g. iPhone HEIC, AVIF)",
                                 elem_id="image-file")
            method = gr.Dropdown(list(explain.CAM_METHODS), value="gradcam", label="CAM method")
            run = gr.Button("Analyze", variant="primary", elem_id="image-run")
        with gr.Column():
            verdict = gr.Markdown(label="Verdict", elem_id="image-verdict")
            faces = picture("Faces (red FAKE, amber UNCERTAIN, green REAL)", "image-faces", show_label=None)
            cam = picture("CAM of the fake output (probability written on each map)", "image-cam", show_label=None)
    rep_json, rep_html, result = report_outputs()
    outputs = [verdict, faces, cam, result, rep_json, rep_html]
    examples(["astronaut.png", "astronaut_sbi_fake.png"], inp, outputs, ev.analyze_image, cache)
    return SimpleNamespace(inp=inp, file=file, method=method, run=run, outputs=outputs,
                           predict_outputs=[verdict, faces, result, rep_json, rep_html],
                           explain_outputs=[verdict, cam, result, rep_json, rep_html])


def video_tab(ev, cache: bool) -> SimpleNamespace:
    """The Video tab's components (inside a gr.Tab)."""
    with gr.Row():
        with gr.Column():
            inp = gr.File(file_types=VIDEO_TYPES, elem_id="video-input",
                          label=f"Video (max {settings.MAX_FILE_SIZE_MB} MB; any codec: a browser-playable "
                                "preview is made)")
            preview = gr.Video(label="Preview (H.264)", interactive=False, height=320, elem_id="video-preview")
            frames = gr.Slider(1, media.MAX_SAMPLED_FRAMES, value=32, step=1, label="Frames to sample (evenly spaced)")
            aggregation = gr.Radio(["mean", "confident"], value="mean", label="Video score",
                                   info="mean over frames with a face, or the DFDC winner's 'confident' strategy")
            run = gr.Button("Analyze video", variant="primary", elem_id="video-run")
        with gr.Column():
            verdict = gr.Markdown(label="Verdict", elem_id="video-verdict")
            timeline = picture("Timeline: fake probability per sampled frame", "video-timeline")
            importance = gr.Radio([("leave-one-out", "leave_one_out"), ("blank frame", "blank")],
                                  value="leave_one_out", label="Frame importance method")
            importance_img = picture("Frame importance", "video-importance")
    gallery = gr.Gallery(label="Sampled frames (select one, then send it to Grid heatmap)", columns=8, height=420,
                         elem_id="video-gallery")
    to_grid = gr.Button("Grid heatmap of the selected frame", size="sm")
    rep_json, rep_html, result = report_outputs()
    state, index = gr.State(None), gr.State(None)
    outputs = [verdict, timeline, importance_img, gallery, result, rep_json, rep_html, state]
    examples(["astronaut_sbi.mp4"], inp, outputs[:-1], ev.video_example, cache,
             "Example (made by this project: the middle third of the frames is self-blended)")
    return SimpleNamespace(inp=inp, preview=preview, frames=frames, aggregation=aggregation, run=run,
                           importance=importance, importance_img=importance_img, gallery=gallery, to_grid=to_grid,
                           state=state, index=index, outputs=outputs)


def grid_tab(ev, cache: bool) -> SimpleNamespace:
    """The Grid heatmap tab's components (inside a gr.Tab)."""
    with gr.Row():
        with gr.Column():
            inp = upload_image(format="png", sources=["upload", "clipboard"], elem_id="grid-input",
                               label=f"Image or a frame sent from the Video tab (max {settings.MAX_FILE_SIZE_MB} MB)")
            file = upload_button(label="Or pick an image file (e.g. HEIC, AVIF)", elem_id="grid-file")
            size = gr.Slider(explain.GRID_MIN, explain.GRID_MAX, value=GRID_DEFAULT, step=1,
                             label="Grid size G (G x G cells; cost grows with G squared)")
            with gr.Row():
                g4 = gr.Button("4 x 4", size="sm")
                g16 = gr.Button("16 x 16", size="sm")
            baseline = gr.Radio(list(explain.OCCLUSION_BASELINES), value="mean",
                                label="Occlusion baseline (what replaces each cell)")
            run = gr.Button("Compute heatmap", variant="primary", elem_id="grid-run")
        with gr.Column():
            verdict = gr.Markdown(label="Verdict", elem_id="grid-verdict")
            heatmap = picture("Occlusion heatmap (red: cell pushes toward FAKE)", "grid-heatmap")
            raw = gr.File(label="Raw grid (CSV)", interactive=False, height=90)
    rep_json, rep_html, result = report_outputs()
    outputs = [verdict, heatmap, result, raw, rep_json, rep_html]
    examples(["astronaut_sbi_fake.png", "astronaut.png"], inp, outputs, ev.grid_heatmap, cache)
    return SimpleNamespace(inp=inp, file=file, size=size, g4=g4, g16=g16, baseline=baseline, run=run,
                           outputs=outputs)


def band_sliders(det) -> tuple[gr.Slider, gr.Slider]:
    """(FAKE threshold, REAL bound) sliders, shared by all tabs: each starts at the model's bound exactly
    (its step puts that value on the range input's grid)."""
    fake, real = float(det.band.fake_from), float(det.band.real_below)
    with gr.Row():
        threshold = gr.Slider(0.0, 1.0, value=fake, step=threshold_step(fake),
                              label="FAKE from (FAKE when the fake probability >= this threshold)",
                              info=f"Default {render.threshold_text(fake)} from the model config; shared by all tabs.",
                              elem_id="threshold")
        real_below = gr.Slider(0.0, 1.0, value=real, step=threshold_step(real),
                               label="REAL below (REAL when the fake probability < this bound; UNCERTAIN between)",
                               info=f"Default {render.threshold_text(real)} from the model config; at most the "
                                    "FAKE threshold (at its default it follows a lower threshold down).",
                               elem_id="real_below")
    return threshold, real_below


def reliability_plot(folder) -> Path | None:
    """The model folder's calibration plot (before/after), when it has one."""
    path = Path(folder) / RELIABILITY_FILE if folder else None
    return path if path is not None and path.is_file() else None


def wire(ev, bounds, tabs, img, vid, grid) -> None:
    """The events: which handler each trigger runs, on which inputs and outputs, with which concurrency.
    bounds: the (threshold, real_below) sliders, the last inputs of every analysis (real_below last of all,
    so that clients made before it existed keep their positional arguments)."""
    bounds = list(bounds)
    # One click, one analysis: the CAM analysis also gives the verdict and the face boxes.
    img.run.click(ev.analyze_image, [img.inp, img.method, *bounds], img.outputs, api_visibility="private",
                  concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
    # The documented API endpoints, on no UI trigger (gr.on with no triggers: called by clients only).
    gr.on([], ev.predict_image, [img.inp, *bounds], img.predict_outputs, api_name="predict_image",
          concurrency_limit=LIGHT_CONCURRENCY, concurrency_id="light")
    gr.on([], ev.explain_image, [img.inp, img.method, *bounds], img.explain_outputs, api_name="explain_image",
          concurrency_limit=HEAVY_CONCURRENCY, concurrency_id="heavy")
    img.file.upload(h.as_image_input, [img.file], [img.inp], api_visibility="private", queue=False)
    grid.file.upload(h.as_image_input, [grid.file], [grid.inp], api_visibility="private", queue=False)
    vid.inp.upload(h.video_preview, [vid.inp], [vid.preview], api_visibility="private", concurrency_limit=1,
                   concurrency_id="preview")
    vid.inp.clear(lambda: None, None, [vid.preview], api_visibility="private", queue=False)
    vid.run.click(ev.analyze_video, [vid.inp, vid.frames, vid.aggregation, vid.importance, *bounds], vid.outputs,
                  api_name="analyze_video", concurrency_id="heavy", concurrency_limit=HEAVY_CONCURRENCY)
    vid.importance.change(h.rerender_importance, [vid.state, vid.importance], [vid.importance_img],
                          api_visibility="private", queue=False)
    vid.gallery.select(h.pick_frame, [vid.state], [vid.index], api_visibility="private", queue=False)
    vid.to_grid.click(h.frame_to_grid, [vid.state, vid.index], [grid.inp, tabs], api_visibility="private")
    grid.g4.click(lambda: 4, None, [grid.size], api_visibility="private", queue=False)
    grid.g16.click(lambda: 16, None, [grid.size], api_visibility="private", queue=False)
    grid.run.click(ev.grid_heatmap, [grid.inp, grid.size, grid.baseline, *bounds], grid.outputs,
                   api_name="grid_heatmap", concurrency_id="heavy", concurrency_limit=HEAVY_CONCURRENCY)


def build_demo(detector, *, card_folder=None, cache_examples: bool = True, queue_max: int | None = None) -> gr.Blocks:
    """The Blocks app over one loaded detector (tests pass a small one). The model card is read from
    card_folder, by default the detector's own folder; queue_max defaults to settings.QUEUE_MAX_SIZE (read
    at each call, as are the upload limit's labels)."""
    det = detector
    plot = reliability_plot(card_folder or det.folder)
    card = model_markdown(det, read_card(card_folder or det.folder), reliability=plot is not None)
    cache_dir = example_cache_dir(det) if cache_examples else None
    cache = cache_dir is not None
    ev = SimpleNamespace(**{fn.__name__: bind(fn, det) for fn in (
        h.analyze_image, h.predict_image, h.explain_image, h.analyze_video, h.grid_heatmap, h.video_example)})

    # Gradio's cache is cleaned by gradio_compat.start_cleaner (started by app.launch), not by delete_cache=.
    with gradio_compat.examples_cached_in(cache_dir), gr.Blocks(title="Explainable deepfake detector") as demo:
        gr.Markdown(
            "# Explainable deepfake detector\n"
            f"Finds faces, estimates how likely each is manipulated ({kinds_phrase(det)}; one score per network, "
            "each shown as a bar with its own band), and "
            "shows **why**: Grad-CAM maps, grid occlusion heatmaps, and per-frame timelines for videos. "
            "**UNCERTAIN** when the probability is between the two bounds below, or when no face is large, "
            "sharp, bright and frontal enough to judge. "
            f"Uploads up to **{settings.MAX_FILE_SIZE_MB} MB**. Images: {media.ACCEPTED_IMAGES}. "
            f"Videos: {media.ACCEPTED_VIDEOS}. The result is an estimate, not proof - see the Model tab.")
        bounds = band_sliders(det)
        with gr.Tabs() as tabs:
            with gr.Tab("Image", id="image"):
                img = image_tab(ev, cache)
            with gr.Tab("Video", id="video"):
                vid = video_tab(ev, cache)
            with gr.Tab("Grid heatmap", id="grid"):
                grid = grid_tab(ev, cache)
            with gr.Tab("Model", id="model"):
                gr.Markdown(card, elem_id="model-card")
                if plot is not None:
                    gr.Image(str(plot), format="png", interactive=False, label="Reliability on validation "
                             "(before and after calibration)", elem_id="reliability-plot")
        wire(ev, bounds, tabs, img, vid, grid)

    demo.queue(max_size=settings.QUEUE_MAX_SIZE if queue_max is None else queue_max,
               default_concurrency_limit=1)
    gradio_compat.set_busy_message(demo, BUSY_MESSAGE)
    return demo
