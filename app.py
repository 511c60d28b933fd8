"""Gradio Space: an explainable deepfake detector (image, video, grid heatmap, model card).

The entry point only: load the detector, build the UI (webapp.layout, whose events call webapp.handlers),
serve it with this app's settings and the cache cleaner (webapp.gradio_compat).

    python app.py            # http://127.0.0.1:7860 (0.0.0.0:7860 on a Space)

Named endpoints for gradio_client: /predict_image, /explain_image, /analyze_video, /grid_heatmap. Each takes the
band's bounds last: threshold (FAKE from it), then real_below (REAL below it, UNCERTAIN between); both default to
the model's, so calls made before real_below existed keep working.
"""
from __future__ import annotations

import logging
import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from deepfake import DeepfakeError, load_detector  # noqa: E402
from webapp import gradio_compat, settings  # noqa: E402
from webapp.layout import build_demo  # noqa: E402,F401 (the app, for tests and bench/load.py)

log = logging.getLogger("deepfake.app")


def server_settings() -> tuple[str, int]:
    """0.0.0.0:7860 on a Space, 127.0.0.1:7860 elsewhere; GRADIO_SERVER_NAME/PORT win."""
    name = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
    return name, port


def launch(demo: gr.Blocks, **overrides):
    """demo.launch with this app's settings (theme, CSS, upload cap, minimal allowed_paths), plus the
    scheduled cleaning of Gradio's cache (DELETE_CACHE)."""
    name, port = server_settings()
    kwargs = dict(server_name=name, server_port=port, max_file_size=f"{settings.MAX_FILE_SIZE_MB}mb",
                  theme=gr.themes.Soft(), css=settings.CSS, show_error=False, allowed_paths=[],
                  footer_links=["api", "gradio"])
    kwargs.update(overrides)
    block = not kwargs.pop("prevent_thread_lock", False)
    out = demo.launch(**kwargs, prevent_thread_lock=True)  # returns, so that the cleaner can start
    gradio_compat.start_cleaner(demo, *settings.DELETE_CACHE)
    if block:
        demo.block_thread()
    return out


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
