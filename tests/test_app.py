"""The Gradio app through gradio_client against a live local server: every endpoint returns the
package's values; bad files and server paths get clear refusals and no verdict."""
import csv
import os
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from app_support import EXAMPLE_FAKE, EXAMPLE_REAL, EXAMPLE_VIDEO, pick_detector, running_app
from conftest import ROOT

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def det_and_folder(random_model_dir):
    return pick_detector(random_model_dir)


@pytest.fixture(scope="module")
def det(det_and_folder):
    return det_and_folder[0]


@pytest.fixture(scope="module")
def server(det_and_folder):
    with running_app(*det_and_folder) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server, verbose=False)


def call(client, *args, api_name):
    from gradio_client import handle_file
    args = [handle_file(str(a)) if isinstance(a, Path) else a for a in args]
    return client.predict(*args, api_name=api_name)


def assert_no_server_path(text: str):
    assert str(ROOT) not in text and "/tmp/" not in text and "Traceback" not in text


def test_named_endpoints(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert {"/predict_image", "/explain_image", "/analyze_video", "/grid_heatmap"} <= set(api["named_endpoints"])
    params = [p["parameter_name"] for p in api["named_endpoints"]["/predict_image"]["parameters"]]
    assert params == ["image", "threshold"]


@pytest.mark.parametrize("example", [EXAMPLE_REAL, EXAMPLE_FAKE], ids=["real", "fake"])
def test_predict_image_equals_the_package(client, det, example):
    verdict, faces_png, result, rep_json, rep_html = call(client, example, api_name="/predict_image")
    want = det.analyze_image(example)
    assert result["label"] == want.label
    assert result["fake_probability"] == pytest.approx(want.fake_probability, abs=1e-6)
    assert [f["box"] for f in result["faces"]] == [list(f.box) for f in want.faces]
    assert result["threshold"] == pytest.approx(det.threshold)
    assert want.label in verdict.replace("No face detected", "NO_FACE")
    faces_img = cv2.imread(faces_png)
    assert faces_img.shape[:2] == (want.height, want.width)
    rep = json.loads(Path(rep_json).read_text())
    assert rep["input"]["name"] == example.name
    assert rep["input"]["sha256"] == __import__("hashlib").sha256(example.read_bytes()).hexdigest()
    assert rep["fake_probability"] == pytest.approx(want.fake_probability, abs=1e-6)
    page = Path(rep_html).read_text()
    assert "data:image/png;base64," in page and example.name in page
    assert_no_server_path(page + json.dumps(rep) + json.dumps(result))


def test_threshold_is_applied(client, det):
    p = det.analyze_image(EXAMPLE_REAL).fake_probability
    for thr in (0.01, 0.99):
        result = call(client, EXAMPLE_REAL, thr, api_name="/predict_image")[2]
        assert result["threshold"] == thr
        assert result["label"] == ("FAKE" if p >= thr else "REAL")


def test_explain_image_equals_the_package(client, det):
    verdict, cam_png, result, rep_json, rep_html = call(client, EXAMPLE_FAKE, "gradcam++",
                                                        api_name="/explain_image")
    want = det.grad_cam(str(EXAMPLE_FAKE), "gradcam++")
    assert result["method"] == "gradcam++" and result["target"] == want.target
    assert result["result"]["fake_probability"] == pytest.approx(want.result.fake_probability, abs=1e-6)
    assert [f["peak_xy"] for f in result["faces"]] == [list(f.peak_xy) for f in want.faces]
    assert cv2.imread(cam_png).shape[:2] == want.heatmap.shape
    assert "gradcam++" in Path(rep_html).read_text()


def test_grid_heatmap_equals_the_package(client, det):
    verdict, heat_png, result, grid_csv, rep_json, rep_html = call(client, EXAMPLE_FAKE, 4, "mean",
                                                                   api_name="/grid_heatmap")
    want = det.occlusion_map(str(EXAMPLE_FAKE), grid=4, baseline="mean")
    got = np.array(result["changes"])
    assert got.shape == (4, 4) and result["grid"] == 4 and result["baseline"] == "mean"
    assert np.allclose(got, want.changes, atol=1e-5)
    assert np.unravel_index(got.argmax(), got.shape) == np.unravel_index(np.argmax(want.changes), (4, 4))
    rows = list(csv.reader(open(grid_csv)))
    assert rows[0] == ["row", "col0", "col1", "col2", "col3"] and len(rows) == 5
    assert np.allclose(np.array([r[1:] for r in rows[1:]], float), want.changes, atol=1e-5)
    assert cv2.imread(heat_png) is not None
    assert np.allclose(json.loads(Path(rep_json).read_text())["result"]["changes"], want.changes, atol=1e-5)


def test_analyze_video_equals_the_package(client, det):
    out = call(client, EXAMPLE_VIDEO, 8, "mean", "blank", api_name="/analyze_video")
    verdict, timeline_png, importance_png, gallery, result, rep_json, rep_html = out
    want = det.analyze_video(str(EXAMPLE_VIDEO), 8)
    assert result["frames_sampled"] == want.frames_sampled == 8 and len(result["frames"]) == 8
    assert [f["index"] for f in result["frames"]] == [f.index for f in want.frames]
    for got, ref in zip(result["frames"], want.frames):
        assert (got["fake_probability"] is None) == (ref.fake_probability is None)
        if ref.fake_probability is not None:
            assert got["fake_probability"] == pytest.approx(ref.fake_probability, abs=1e-6)
    assert result["label"] == want.label
    assert len(gallery) == 8
    assert cv2.imread(timeline_png) is not None and cv2.imread(importance_png) is not None
    page = Path(rep_html).read_text()
    assert page.count("data:image/png;base64,") == 3 and EXAMPLE_VIDEO.name in page
    assert_no_server_path(page)


@pytest.fixture(scope="module", params=[("mp4v", "opencv clip.mp4"), ("MJPG", "motion jpeg.avi")], ids=["mp4v", "mjpg"])
def unplayable_video(request, tmp_path_factory, astronaut):
    """Clips in codecs browsers cannot play: OpenCV's mp4v in .mp4, Motion JPEG in .avi."""
    fourcc, name = request.param
    path = tmp_path_factory.mktemp(fourcc) / name
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (256, 256))
    small = cv2.cvtColor(cv2.resize(astronaut, (256, 256)), cv2.COLOR_RGB2BGR)
    for i in range(12):
        vw.write(np.roll(small, i, axis=1))
    vw.release()
    return path


def test_a_video_browsers_cannot_play_is_analysed_and_previewed_as_h264(client, unplayable_video, tmp_path):
    import app
    result = call(client, unplayable_video, 4, api_name="/analyze_video")[4]
    assert result["frames_sampled"] == 4
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe missing (apt install ffmpeg)")
    preview = app.browser_preview(unplayable_video, tmp_path)
    codec = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,pix_fmt", "-of", "csv=p=0", preview], capture_output=True, text=True)
    assert codec.stdout.strip() == "h264,yuv420p"


@pytest.mark.parametrize("name,content,message", [
    ("notes.jpg", b"this is text, not a picture", "not an image this app can read"),
    ("empty.png", b"", "empty"),
    ("cut.png", None, "damaged or truncated"),
])
def test_bad_image_gives_the_clear_message_and_no_verdict(client, tmp_path, name, content, message):
    from gradio_client.exceptions import AppError
    path = tmp_path / name
    if content is None:
        content = EXAMPLE_REAL.read_bytes()[:5000]
    path.write_bytes(content)
    for api in ("/predict_image", "/explain_image", "/grid_heatmap"):
        with pytest.raises(AppError) as err:
            call(client, path, api_name=api)
        assert message in str(err.value)
        assert_no_server_path(str(err.value))


def test_bad_video_gives_the_clear_message(client, tmp_path):
    from gradio_client.exceptions import AppError
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(AppError) as err:
        call(client, path, api_name="/analyze_video")
    assert "broken.mp4" in str(err.value) and "Accepted" in str(err.value)


def test_the_app_recovers_after_a_failed_request(client, det, tmp_path):
    from gradio_client.exceptions import AppError
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(AppError):
        call(client, bad, api_name="/explain_image")
    result = call(client, EXAMPLE_REAL, api_name="/predict_image")[2]
    assert result["fake_probability"] == pytest.approx(det.analyze_image(EXAMPLE_REAL).fake_probability, abs=1e-6)


def raw_call(url: str, api_name: str, data: list) -> str:
    """A request made without gradio_client's upload step: file inputs carry whatever path we like."""
    import httpx
    r = httpx.post(f"{url}gradio_api/call/{api_name}", json={"data": data}, timeout=60)
    if r.status_code != 200:
        return f"HTTP {r.status_code}: {r.text}"
    event = r.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{api_name}/{event}", timeout=120).text


def upload(url: str, path: Path) -> dict:
    import httpx
    with open(path, "rb") as fh:
        r = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, fh)}, timeout=60)
    r.raise_for_status()
    return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("api_name,example,extra", [
    ("predict_image", EXAMPLE_REAL, [0.5]), ("grid_heatmap", EXAMPLE_REAL, [2, "mean", 0.5]),
    ("analyze_video", EXAMPLE_VIDEO, [2, "mean", "leave_one_out", 0.5])])
def test_server_paths_sent_as_file_inputs_are_refused(server, tmp_path, api_name, example, extra):
    ok = raw_call(server, api_name, [upload(server, example)] + extra)
    assert "event: complete" in ok  # the same request with an uploaded file works
    link = tmp_path / "innocent.png"
    link.symlink_to("/etc/passwd")
    for target in ("/etc/passwd", "../app.py", str(ROOT / "app.py"), str(link), str(EXAMPLE_REAL.parent / ".." / "app.py")):
        text = raw_call(server, api_name, [{"path": target, "meta": {"_type": "gradio.FileData"}}] + extra)
        assert "event: complete" not in text, f"{target} was accepted"
        assert "error" in text.lower()
        assert "root:" not in text and "import gradio" not in text  # no file content leaked


def test_a_full_queue_says_busy_retry_and_uploads_are_capped(det, monkeypatch, tmp_path):
    import httpx

    import app
    monkeypatch.setattr(app, "QUEUE_MAX_SIZE", 1)
    monkeypatch.setattr(app, "MAX_FILE_SIZE_MB", 1)
    with running_app(det) as url:
        for size, ok in ((1024 * 1024 - 1024, True), (1024 * 1024 + 1024, False)):
            big = tmp_path / f"big{size}.png"
            big.write_bytes(b"\0" * size)
            with open(big, "rb") as fh:
                r = httpx.post(f"{url}gradio_api/upload", files={"files": (big.name, fh)}, timeout=60)
            assert (r.status_code == 200) == ok, (size, r.status_code, r.text[:200])
        file = upload(url, EXAMPLE_REAL)
        answers = [httpx.post(f"{url}gradio_api/call/grid_heatmap", json={"data": [file, 2, "mean", 0.5]},
                              timeout=30) for _ in range(6)]
        busy = [r for r in answers if r.status_code == 503]
        assert busy, [r.status_code for r in answers]
        assert app.BUSY_MESSAGE in busy[0].text
        accepted = [r.json()["event_id"] for r in answers if r.status_code == 200]
        assert accepted
        for event in accepted:  # the accepted ones are answered
            assert "event: complete" in httpx.get(f"{url}gradio_api/call/grid_heatmap/{event}", timeout=120).text


@pytest.mark.parametrize("env,want", [
    ({}, ("127.0.0.1", 7860)),
    ({"SPACE_ID": "deepfake-explained/explainable-deepfake-detector"}, ("0.0.0.0", 7860)),
    ({"SPACE_ID": "x/y", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": "8080"}, ("127.0.0.1", 8080)),
    ({"GRADIO_SERVER_NAME": "0.0.0.0"}, ("0.0.0.0", 7860)),
])
def test_server_binding(monkeypatch, env, want):
    import app
    for key in ("SPACE_ID", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert app.server_settings() == want


def test_request_folders_are_swept(monkeypatch, tmp_path):
    import os
    import time

    import app
    monkeypatch.setattr(app, "TMP_ROOT", tmp_path / "root")
    old = app._workdir()
    (old / "report.html").write_text("x")
    past = time.time() - app.KEEP_SECONDS - 10
    os.utime(old, (past, past))
    new = app._workdir()
    assert not old.exists() and new.is_dir()


def test_upload_cap_is_stated_in_the_ui(server):
    import httpx

    import app
    config = httpx.get(f"{server}config", timeout=30).json()
    assert config.get("max_file_size") == app.MAX_FILE_SIZE_MB * 1024 * 1024
    assert f"{app.MAX_FILE_SIZE_MB} MB" in json.dumps(config)


def test_the_readme_client_snippets_run(server, tmp_path):
    """README's client block runs as written (only the URL points at this test's server)."""
    import re
    import sys
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Client API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'Client("http://127.0.0.1:7860/")' in code and code.count("api_name=") == 4
    script = tmp_path / "snippet.py"
    script.write_text(code.replace("http://127.0.0.1:7860/", server), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if not line.startswith("Loaded as API")]
    assert len(lines) == 4
    assert lines[0].split()[0] in ("FAKE", "REAL") and lines[1].startswith("gradcam ")
    assert lines[2].startswith("4 ") and lines[3].split()[2] == "16"
