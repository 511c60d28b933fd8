"""Shared by the app, render, report and browser tests: the detector to test with, example files and a
live local server of the app."""
from __future__ import annotations

import contextlib
from pathlib import Path

from support.paths import BUNDLED, EXAMPLE_FAKE, EXAMPLE_REAL, EXAMPLE_VIDEO, YUNET_ONNX  # noqa: F401
from support.server import free_port


def pick_detector(random_dir: Path):
    """The bundled model when it is there, else the random-weights folder; YuNet from ../shared when
    present (Haar otherwise), so no test touches the Hub."""
    from deepfake import load_detector

    folder = BUNDLED if (BUNDLED / "config.json").is_file() else random_dir
    fd = str(YUNET_ONNX) if YUNET_ONNX.is_file() else "haar"
    return load_detector(str(folder), face_detector=fd), folder


@contextlib.contextmanager
def running_demo(detector, card_folder=None):
    """The app on 127.0.0.1 and a free port; yields (its Blocks, its URL)."""
    import app

    demo = app.build_demo(detector, card_folder=card_folder, cache_examples=False)
    _, url, _ = app.launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        yield demo, url
    finally:
        demo.close()


@contextlib.contextmanager
def running_app(detector, card_folder=None):
    """The app on 127.0.0.1 and a free port; yields its URL."""
    with running_demo(detector, card_folder) as (_, url):
        yield url
