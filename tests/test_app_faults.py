"""`python app.py` with a broken detector refuses to start: one clear line on stderr, no traceback, a
non-zero exit code, quickly. And the app's file clean-up is configured."""
import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import ROOT, free_port, write_random_detector
from webapp import files, gradio_compat, settings

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def good_detector(tmp_path_factory):
    return write_random_detector(tmp_path_factory.mktemp("good") / "detector")


def _broken(folder, kind):
    if kind == "garbage weights":
        (folder / "model.safetensors").write_bytes(os.urandom(4096))
    elif kind == "truncated weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif kind == "config not JSON":
        (folder / "config.json").write_text("{ this is not json")
    elif kind == "unknown architecture":
        cfg = json.loads((folder / "config.json").read_text())
        cfg["architecture"] = "no_such_network_v9"
        (folder / "config.json").write_text(json.dumps(cfg))
    return folder


@pytest.mark.parametrize("kind", ["garbage weights", "truncated weights", "config not JSON", "unknown architecture"])
def test_app_refuses_to_start_with_a_broken_detector(good_detector, tmp_path, kind):
    folder = _broken(shutil.copytree(good_detector, tmp_path / "detector"), kind)
    env = dict(os.environ, DEEPFAKE_MODEL=str(folder), DEEPFAKE_FACE_DETECTOR="haar", HF_HUB_OFFLINE="1",
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(free_port()), GRADIO_ANALYTICS_ENABLED="False")
    out = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    assert str(tmp_path) not in errors[0]  # names the file and the problem, not the server's paths
    assert "Running on" not in out.stdout  # never served


def test_a_missing_model_folder_is_one_clear_error(tmp_path):
    env = dict(os.environ, DEEPFAKE_MODEL=str(tmp_path / "nowhere"), DEEPFAKE_FACE_DETECTOR="haar",
               HF_HUB_OFFLINE="1", GRADIO_SERVER_PORT=str(free_port()), GRADIO_ANALYTICS_ENABLED="False")
    out = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert [line for line in out.stderr.splitlines() if line.startswith("error:")] == \
        ["error: 'nowhere' is neither a detector folder nor a Hub repo id (ORG/NAME[@REVISION])"]


def test_gradio_cache_is_cleaned_on_a_schedule(monkeypatch):
    """launch starts the app's own cleaner with DELETE_CACHE (and leaves Gradio's delete_cache task off, which
    dies on its first error): checked on what launch does, not only on the constants."""
    import types

    import app
    frequency, age = settings.DELETE_CACHE
    assert 0 < frequency <= age <= 24 * 3600
    assert files.KEEP_SECONDS <= age  # our request folders do not outlive Gradio's copies by much
    scheduled, launched = [], []
    started = threading.Event()

    def schedule(demo, frequency, age):
        scheduled.append((demo, frequency, age, threading.current_thread().name))
        started.set()

    monkeypatch.setattr(gradio_compat, "clean_cache_on_schedule", schedule)
    demo = types.SimpleNamespace(launch=lambda **kw: launched.append(kw) or ("app", "url", "share"))
    assert app.launch(demo, prevent_thread_lock=True) == ("app", "url", "share")
    assert started.wait(60)  # a bound against a hang only
    assert scheduled == [(demo, frequency, age, "gradio-cache-cleaner")]
    assert "delete_cache" not in launched[0] and launched[0]["prevent_thread_lock"] is True
    assert launched[0]["max_file_size"] == f"{settings.MAX_FILE_SIZE_MB}mb" and launched[0]["allowed_paths"] == []


class _ChangesDuringFirstPass(set):
    """A Gradio temp-file set that a request changes during the first cleanup pass."""
    passes = 0

    def __iter__(self):
        type(self).passes += 1
        if type(self).passes == 1:
            raise RuntimeError("Set changed size during iteration")
        return super().__iter__()


@pytest.fixture
def clock(monkeypatch):
    """The time Gradio's cleanup pass reads (datetime.now in gradio.route_utils), set by the test: a file's
    age is then exactly what the test says, however slow the machine."""
    import datetime as dt

    from gradio import route_utils

    class Clock(dt.datetime):
        at = None

        @classmethod
        def now(cls, tz=None):
            return cls.at

    monkeypatch.setattr(route_utils, "datetime", Clock)
    return Clock


def _made(path):
    import datetime as dt
    return dt.datetime.fromtimestamp(path.lstat().st_ctime)


def test_cache_cleanup_survives_a_pass_that_races_a_request(tmp_path, clock):
    """Gradio's own delete_cache task dies on this error; the app's pass reports it and the next one cleans:
    files older than the age go, younger ones stay."""
    import datetime as dt
    import types

    served = tmp_path / "served.png"
    served.write_bytes(b"x")
    files = _ChangesDuringFirstPass({str(served)})
    demo = types.SimpleNamespace(blocks={}, temp_file_sets=[files], is_running=True)
    clock.at = _made(served) + dt.timedelta(seconds=3)
    assert gradio_compat.clean_cache_once(demo, 2) is False and served.exists()  # raced a request: nothing lost
    clock.at = _made(served) + dt.timedelta(seconds=1)
    assert gradio_compat.clean_cache_once(demo, 2) is True and served.exists() and files == {str(served)}  # young: kept
    clock.at = _made(served) + dt.timedelta(seconds=3)
    assert gradio_compat.clean_cache_once(demo, 2) is True and not served.exists() and files == set()


def test_the_schedule_keeps_young_files_and_removes_everything_at_close(tmp_path, clock, monkeypatch):
    import datetime as dt
    import types

    young = tmp_path / "young.png"
    young.write_bytes(b"x")
    clock.at = _made(young) + dt.timedelta(seconds=1)
    demo = types.SimpleNamespace(blocks={}, temp_file_sets=[{str(young)}], is_running=True)
    passes = []
    two_passes = threading.Event()
    real_pass = gradio_compat.clean_cache_once

    def counted(d, age):
        passes.append(age)
        if len(passes) >= 2:
            two_passes.set()
        return real_pass(d, age)

    monkeypatch.setattr(gradio_compat, "clean_cache_once", counted)
    worker = threading.Thread(target=gradio_compat.clean_cache_on_schedule, args=(demo, 0.05, 3600), daemon=True)
    worker.start()
    assert two_passes.wait(60)  # a bound against a hang only
    assert young.exists() and passes[:2] == [3600, 3600]  # younger than the age: kept while the server runs
    demo.is_running = False
    worker.join(60)
    assert not worker.is_alive() and not young.exists() and passes[-1] is None
