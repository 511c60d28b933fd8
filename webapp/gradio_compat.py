"""Every use of Gradio's private or undocumented API, in one place (tests/test_gradio_compat.py fails
loudly when a Gradio upgrade moves one): the busy message, the cache cleanup, the upload folder, the
examples cache folder and the lenient image upload."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

import gradio as gr

log = logging.getLogger("deepfake.app")


def upload_folder() -> Path:
    """Where Gradio keeps uploads and the files it serves (GRADIO_TEMP_DIR, else <tmp>/gradio), resolved."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def set_busy_message(demo: gr.Blocks, message: str) -> None:
    """Replace Gradio's "Queue is full. Max size is N" with `message` (Blocks._queue.push is what the
    /queue/join route awaits; its third value is "queue_full" for a full queue)."""
    queue = getattr(demo, "_queue", None)
    push = getattr(queue, "push", None)
    if push is None:
        return

    async def push_with_message(*args, **kwargs):
        ok, detail, state = await push(*args, **kwargs)
        if state == "queue_full":
            detail = message
        return ok, detail, state

    queue.push = push_with_message


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


def clean_cache_on_schedule(demo: gr.Blocks, frequency: float, age: float) -> None:
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


def start_cleaner(demo: gr.Blocks, frequency: float, age: float) -> threading.Thread:
    """The cleaning schedule in a daemon thread (instead of launch(delete_cache=...), whose task dies)."""
    thread = threading.Thread(target=clean_cache_on_schedule, args=(demo, frequency, age),
                              name="gradio-cache-cleaner", daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def examples_cached_in(folder: Path | None):
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


def lenient_preprocess(comp, fallback):
    """comp, whose preprocess hands `fallback(payload)` on when Gradio's own fails (an upload Gradio cannot
    decode reaches the package, which says clearly what is wrong). The instance's method is replaced:
    subclassing a component would make Gradio write a .pyi file beside this one."""
    original = comp.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except Exception:
            return fallback(payload)

    comp.preprocess = preprocess
    return comp
