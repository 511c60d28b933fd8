"""The app's uses of Gradio's private API (webapp/gradio_compat.py), each pinned: when a Gradio upgrade
renames, moves or changes one, a test here fails and says which, instead of the workaround going quiet."""
import asyncio
import inspect
import os
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio import helpers, processing_utils, queueing, route_utils, routes, utils

from webapp import gradio_compat
from webapp.settings import BUSY_MESSAGE


def test_the_queue_join_route_awaits_blocks_queue_push_with_the_expected_signature():
    assert list(inspect.signature(queueing.Queue.push).parameters) == ["self", "body", "request", "username"]
    assert inspect.iscoroutinefunction(queueing.Queue.push)
    assert "blocks._queue.push(" in inspect.getsource(routes)  # the instance attribute the app replaces


def test_a_full_queue_answers_the_busy_message():
    with gr.Blocks() as demo:
        gr.Button().click(lambda: None)
    demo.queue(max_size=1)
    gradio_compat.set_busy_message(demo, BUSY_MESSAGE)
    demo._queue.max_size = 0  # full before anything is queued
    ok, detail, state = asyncio.run(demo._queue.push(SimpleNamespace(fn_index=0), None, None))
    assert (ok, detail, state) == (False, BUSY_MESSAGE, "queue_full")


def test_delete_files_created_by_app_takes_blocks_and_an_age():
    params = inspect.signature(route_utils.delete_files_created_by_app).parameters
    assert list(params) == ["blocks", "age"]
    source = inspect.getsource(route_utils.delete_files_created_by_app)
    assert "blocks.temp_file_sets" in source and "keep_in_cache" in source  # what the cleanup pass relies on


def test_gradio_own_delete_cache_task_still_dies_on_an_error():
    """Why the app runs its own schedule (gradio_compat.start_cleaner): Gradio's task calls the same pass in a
    loop without catching its errors, so one "Set changed size during iteration" ends it for good. When Gradio
    catches them itself, the app's cleaner may go."""
    source = inspect.getsource(route_utils.delete_files_on_schedule)
    assert "delete_files_created_by_app" in source and "except" not in source


def test_the_upload_folder_is_gradio_temp_dir(monkeypatch, tmp_path):
    assert inspect.signature(utils.get_upload_folder).parameters == {}
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    assert gradio_compat.upload_folder() == tmp_path.resolve()
    monkeypatch.delenv("GRADIO_TEMP_DIR")
    assert gradio_compat.upload_folder() == (Path(utils.tempfile.gettempdir()) / "gradio").resolve()
    assert "get_upload_folder()" in inspect.getsource(processing_utils)  # where Gradio saves uploads


def test_examples_cache_folder_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIO_EXAMPLES_CACHE", raising=False)
    folder = tmp_path / "base" / "model-key"
    with gradio_compat.examples_cached_in(folder):
        assert utils.get_cache_folder() == folder
    assert utils.get_cache_folder() == folder.parent and os.environ["GRADIO_EXAMPLES_CACHE"] == str(folder.parent)
    assert "utils.get_cache_folder()" in inspect.getsource(helpers.Examples)  # read when an Examples is made


def test_an_instance_preprocess_is_what_gradio_calls(tmp_path):
    """lenient_preprocess replaces the component instance's method: Gradio must call it through the
    instance (block.preprocess), not through the class."""
    comp = gradio_compat.lenient_preprocess(gr.Image(type="filepath"), lambda payload: "fallback")
    from gradio.data_classes import ImageData
    assert comp.preprocess(ImageData(path=str(tmp_path / "absent.png"))) == "fallback"
    assert "run_sync(\n                            block.preprocess," in inspect.getsource(gr.blocks)


@pytest.mark.parametrize("name", ["upload_folder", "set_busy_message", "clean_cache_once", "start_cleaner",
                                  "examples_cached_in", "lenient_preprocess"])
def test_the_app_reaches_gradio_internals_only_through_gradio_compat(name):
    from webapp import files, handlers, layout
    assert hasattr(gradio_compat, name)
    for module in (files, handlers, layout):
        source = inspect.getsource(module)
        for private in ("_queue", "route_utils", "get_upload_folder", "GRADIO_EXAMPLES_CACHE\"] ="):
            assert private not in source, (module.__name__, private)
