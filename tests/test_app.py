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
from support.server import upload
from webapp import files, layout, settings
from webapp import text as webtext

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
    assert params == ["image", "threshold", "real_below"]


def test_every_endpoint_takes_the_real_bound_last_with_the_models_default(client, det):
    """Last, so that clients made before it existed keep their positional arguments."""
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name in ("/predict_image", "/explain_image", "/analyze_video", "/grid_heatmap"):
        params = api[name]["parameters"]
        assert [p["parameter_name"] for p in params[-2:]] == ["threshold", "real_below"], name
        assert [p["parameter_default"] for p in params[-2:]] == [det.band.fake_from, det.band.real_below], name


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
    """A threshold on either side of the probability flips the label; the REAL bound is sent at the same value
    (one cut, no UNCERTAIN between), since a calibrated model's own REAL bound may sit above the probability."""
    p = det.analyze_image(EXAMPLE_REAL).fake_probability
    assert 0.01 < p < 0.99
    for thr, want in ((0.01, "FAKE"), (0.99, "REAL")):
        result = call(client, EXAMPLE_REAL, thr, thr, api_name="/predict_image")[2]
        assert (result["threshold"], result["real_below"]) == (thr, thr)
        assert result["label"] == want


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
    result = call(client, unplayable_video, 4, api_name="/analyze_video")[4]
    assert result["frames_sampled"] == 4
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe missing (apt install ffmpeg)")
    preview = files.browser_preview(unplayable_video, tmp_path)
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


@pytest.mark.parametrize("api_name,example,extra", [
    ("predict_image", EXAMPLE_REAL, [0.5, 0.5]), ("grid_heatmap", EXAMPLE_REAL, [2, "mean", 0.5, 0.5]),
    ("analyze_video", EXAMPLE_VIDEO, [2, "mean", "leave_one_out", 0.5, 0.5])])
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


def test_uploads_are_capped_and_the_queue_limit_is_the_configured_one(det, monkeypatch, tmp_path):
    """(What a full queue answers is tested deterministically in test_load.py, with the queue held full.)"""
    import httpx

    import app
    monkeypatch.setattr(settings, "QUEUE_MAX_SIZE", 3)
    monkeypatch.setattr(settings, "MAX_FILE_SIZE_MB", 1)
    with running_app(det) as url:
        for size, ok in ((1024 * 1024 - 1024, True), (1024 * 1024 + 1024, False)):
            big = tmp_path / f"big{size}.png"
            big.write_bytes(b"\0" * size)
            with open(big, "rb") as fh:
                r = httpx.post(f"{url}gradio_api/upload", files={"files": (big.name, fh)}, timeout=60)
            assert (r.status_code == 200) == ok, (size, r.status_code, r.text[:200])
    assert app.build_demo(det, cache_examples=False)._queue.max_size == 3
    assert app.build_demo(det, cache_examples=False, queue_max=1)._queue.max_size == 1


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

    monkeypatch.setattr(files, "TMP_ROOT", tmp_path / "root")
    old = files.workdir()
    (old / "report.html").write_text("x")
    past = time.time() - files.KEEP_SECONDS - 10
    os.utime(old, (past, past))
    new = files.workdir()
    assert not old.exists() and new.is_dir()


def test_upload_cap_is_stated_in_the_ui(server):
    import httpx

    config = httpx.get(f"{server}config", timeout=30).json()
    assert config.get("max_file_size") == settings.MAX_FILE_SIZE_MB * 1024 * 1024
    assert f"{settings.MAX_FILE_SIZE_MB} MB" in json.dumps(config)


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


# ---------------------------------------------------------------------------------------------- issue 11
@pytest.fixture(scope="module")
def other_det(tmp_path_factory):
    """A second detector: other weights, and a threshold with more decimals than the slider's 0.001 step."""
    from conftest import YUNET_ONNX, write_random_detector

    from deepfake import load_detector
    folder = write_random_detector(tmp_path_factory.mktemp("other") / "other-lite0", seed=1, threshold=0.558603)
    return load_detector(str(folder), face_detector=str(YUNET_ONNX) if YUNET_ONNX.is_file() else "haar")


def test_image_outputs_reach_gradio_as_files_it_copies_by_rename(client, monkeypatch):
    """Every picture an endpoint returns is a PNG file the app wrote, so Gradio caches it with
    save_file_to_cache (write, then rename) and never with save_pil_to_cache / save_img_array_to_cache,
    which rewrite a shared content-addressed file in place while another client may be downloading it."""
    from gradio import processing_utils

    def refuse(*args, **kwargs):
        raise AssertionError("an image output reached Gradio as pixels, not as a file")

    copied = []
    real_save = processing_utils.save_file_to_cache
    monkeypatch.setattr(processing_utils, "save_pil_to_cache", refuse)
    monkeypatch.setattr(processing_utils, "save_img_array_to_cache", refuse)
    monkeypatch.setattr(processing_utils, "save_file_to_cache",
                        lambda path, cache_dir: copied.append(Path(path).name) or real_save(path, cache_dir))
    outs = {"/predict_image": call(client, EXAMPLE_FAKE, api_name="/predict_image"),
            "/explain_image": call(client, EXAMPLE_FAKE, "gradcam", api_name="/explain_image"),
            "/grid_heatmap": call(client, EXAMPLE_FAKE, 2, "mean", api_name="/grid_heatmap"),
            "/analyze_video": call(client, EXAMPLE_VIDEO, 3, "mean", "blank", api_name="/analyze_video")}
    pictures = [outs["/predict_image"][1], outs["/explain_image"][1], outs["/grid_heatmap"][1],
                outs["/analyze_video"][1], outs["/analyze_video"][2]] + [g["image"] for g in outs["/analyze_video"][3]]
    assert len(pictures) == 5 + 3
    for picture in pictures:
        assert Path(picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
        assert Path(picture).name in copied, (picture, copied)


def test_the_threshold_is_shown_and_applied_exactly(client):
    """The verdict, the result, and both reports carry the applied value itself, not 0.56 or 0.5586."""
    verdict, _, result, rep_json, rep_html = call(client, EXAMPLE_REAL, 0.558603, api_name="/predict_image")
    assert result["threshold"] == 0.558603
    assert "FAKE from 0.558603" in verdict and "0.5586 " not in verdict and "0.559" not in verdict
    assert json.loads(Path(rep_json).read_text())["threshold"] == 0.558603
    assert "<td>Threshold (face_swap)</td><td>0.558603</td>" in Path(rep_html).read_text()  # the first network's


def test_the_slider_step_keeps_the_default_threshold_and_the_card_states_it(other_det):
    """A browser's range input snaps its value to min + k * step: the default must be on that grid."""
    from decimal import Decimal

    import app
    assert other_det.threshold == 0.558603
    demo = app.build_demo(other_det, cache_examples=False)
    slider = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "threshold")
    assert slider.value == 0.558603
    assert Decimal(repr(slider.value)) % Decimal(repr(slider.step)) == 0, slider.step
    card = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "model-card")
    assert "| Decision threshold | 0.558603" in card.value
    assert webtext.threshold_step(0.5) == 0.001 and webtext.threshold_step(0.25) == 0.001


def _browser_click(demo, elem_id: str, values: dict):
    """Run what a click on the button does, as the browser does it: each function the click triggers, then
    those chained after it (.then always, .success only on success, .failure only on failure), each with its
    inputs from `values` (component -> value). Returns (outputs, error messages)."""
    import gradio as gr

    button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    pending = [f for f in demo.fns.values() if (button._id, "click") in [tuple(t) for t in f.targets]]
    outputs, errors = [], []
    while pending:
        fn = pending.pop(0)
        try:
            outputs.append(fn.fn(*[values[c] for c in fn.inputs]))
            ok = True
        except gr.Error as exc:
            errors.append(str(exc))
            ok = False
        pending += [f for f in demo.fns.values() if f.trigger_after == fn._id
                    and not (f.trigger_only_on_success and not ok) and not (f.trigger_only_on_failure and ok)]
    return outputs, errors


def test_the_analyze_button_runs_one_analysis(det, monkeypatch, tmp_path):
    """One click: faces found once, classified once, one CAM, one pair of reports; with a bad file, one
    error and no analysis at all."""
    import app
    demo = app.build_demo(det, cache_examples=False)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    calls = {"detect": 0, "classify": 0, "cam": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(det.face_detector, "detect", counting("detect", det.face_detector.detect))
    monkeypatch.setattr(det.network, "predict", counting("classify", det.network.predict))
    monkeypatch.setattr(det.network, "cam_network", counting("cam", det.network.cam_network))
    upload = Path(shutil.copy(EXAMPLE_FAKE, files.workdir() / EXAMPLE_FAKE.name))
    cam_method = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "CAM method")
    values = {by_id["image-input"]: str(upload), cam_method: "gradcam", by_id["threshold"]: det.threshold,
              by_id["real_below"]: det.band.real_below}
    outputs, errors = _browser_click(demo, "image-run", values)
    assert not errors and len(outputs) == 1, (errors, len(outputs))
    assert calls == {"detect": 1, "classify": 1, "cam": 1}, calls
    verdict, faces, cam_png, cam, rep_json, rep_html = outputs[0]
    want = det.grad_cam(str(EXAMPLE_FAKE), "gradcam")
    assert cam["result"]["fake_probability"] == pytest.approx(want.result.fake_probability, abs=1e-6)
    assert want.result.label in verdict
    assert cv2.imread(faces).shape[:2] == cv2.imread(cam_png).shape[:2] == want.heatmap.shape
    assert json.loads(Path(rep_json).read_text())["kind"] == "explanation"

    calls.update(detect=0, classify=0, cam=0)
    bad = files.workdir() / "notes.png"
    bad.write_text("not a picture")
    outputs, errors = _browser_click(demo, "image-run", {**values, by_id["image-input"]: str(bad)})
    assert not outputs and len(errors) == 1 and "not an image this app can read" in errors[0], errors
    assert calls == {"detect": 0, "classify": 0, "cam": 0}, calls


def test_a_click_with_the_real_bound_above_the_threshold_is_one_clear_error(det):
    import app
    demo = app.build_demo(det, cache_examples=False)
    by_id = _by_id(demo)
    cam_method = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "CAM method")
    upload = Path(shutil.copy(EXAMPLE_REAL, files.workdir() / EXAMPLE_REAL.name))
    values = {by_id["image-input"]: str(upload), cam_method: "gradcam", by_id["threshold"]: 0.3,
              by_id["real_below"]: 0.45}
    outputs, errors = _browser_click(demo, "image-run", values)
    assert not outputs and len(errors) == 1, errors
    assert errors[0].strip("'") == "The REAL bound (0.45) must not be above the FAKE threshold (0.3).", errors


def test_cached_examples_are_kept_per_model(det, other_det, monkeypatch, tmp_path):
    """Each build_demo caches its examples in its own model's folder (id, revision, weights digest, face
    detector), also when a second model is built in the same process or shares the first's id and revision."""
    import dataclasses

    from gradio import helpers

    import app
    monkeypatch.setenv("GRADIO_EXAMPLES_CACHE", str(tmp_path / "cache"))
    made = []
    real_init = helpers.Examples.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(Path(self.cached_folder))

    monkeypatch.setattr(helpers.Examples, "__init__", recording_init)
    same_name = dataclasses.replace(other_det, model_id=det.model_id, revision=det.revision)
    folders = []
    for d in (det, other_det, same_name):
        made.clear()
        app.build_demo(d, cache_examples=True)
        assert len(made) == 3 and len({f.parent for f in made}) == 1, made  # image, video, grid examples
        folders.append(made[0].parent)
    assert len(set(folders)) == 3 and all(f.parent == tmp_path / "cache" for f in folders), folders
    assert folders == [layout.example_cache_dir(d) for d in (det, other_det, same_name)]
    assert layout.example_cache_dir(dataclasses.replace(det, folder=None)) is None  # no digest: not cached
    # The gates in force are part of the key: measured defaults that change in code change the folder.
    from deepfake.quality import QualityGates
    config = dataclasses.replace(det.network.config, gates=QualityGates(1.0, 2.0, 3.0, 4.0))
    regated = dataclasses.replace(det, network=dataclasses.replace(det.network, config=config))
    assert layout.example_cache_dir(regated) not in (None, layout.example_cache_dir(det))


def test_request_files_live_in_a_private_folder_made_at_start():
    import stat
    import tempfile

    assert files.TMP_ROOT != Path(tempfile.gettempdir()) / "deepfake-app"
    st = files.TMP_ROOT.stat()
    assert files.TMP_ROOT.is_dir() and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    assert files.workdir().parent == files.TMP_ROOT


def test_only_gradio_uploads_and_the_private_folder_are_upload_roots(tmp_path):
    import gradio as gr
    from gradio.utils import get_upload_folder

    assert files.upload_roots() == [Path(get_upload_folder()).resolve(), files.TMP_ROOT.resolve()]
    with pytest.raises(gr.Error, match="Only files uploaded"):
        files.input_path(str(EXAMPLE_REAL), "an image")  # the repo's own examples are not uploads
    planted = tmp_path / "planted.png"  # e.g. another user's file in a shared folder
    shutil.copy(EXAMPLE_REAL, planted)
    with pytest.raises(gr.Error, match="Only files uploaded"):
        files.input_path(str(planted), "an image")


@pytest.mark.parametrize("where", ["outside the upload roots", "no path at all", "a directory"])
def test_the_upload_wrapper_never_passes_on_a_path_gradio_could_not_open(tmp_path, where):
    import gradio as gr
    from gradio.data_classes import ImageData

    comp = layout.upload_image()
    target = {"outside the upload roots": _write_text(tmp_path / "secret.png", "not an image"),
              "no path at all": None, "a directory": files.TMP_ROOT}[where]
    with pytest.raises(gr.Error, match="could not be read"):
        comp.preprocess(ImageData(path=None if target is None else str(target)))


def test_the_upload_wrapper_hands_an_unreadable_upload_to_the_package():
    """So the user gets the package's message (what is wrong, what is accepted), not Gradio's."""
    from gradio.data_classes import ImageData

    upload = _write_text(files.workdir() / "notes.jpg", "not an image")
    assert layout.upload_image().preprocess(ImageData(path=str(upload))) == str(upload.resolve())


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_image_file_pickers_take_every_format_the_package_reads(det):
    """HEIC/HEIF (iPhone) and AVIF photos may not count as image/* in a browser, and the image widget cannot
    preview HEIC: a picker matching by extension hands them to the image inputs."""
    from deepfake import media

    import app
    assert {".heic", ".heif", ".avif"} <= media.IMAGE_EXTENSIONS  # pillow-heif and Pillow's AVIF are installed
    demo = app.build_demo(det, cache_examples=False)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    for picker, target in (("image-file", "image-input"), ("grid-file", "grid-input")):
        assert set(by_id[picker].file_types) == media.IMAGE_EXTENSIONS
        fns = [f for f in demo.fns.values() if (by_id[picker]._id, "upload") in [tuple(t) for t in f.targets]]
        assert len(fns) == 1 and fns[0].outputs == [by_id[target]]


def test_a_video_analysis_keeps_previews_and_decodes_a_frame_again_for_the_grid(det, monkeypatch):
    """Memory stays bounded: the app asks for no full frames (the gallery is drawn on the result's previews);
    the frame sent to the Grid heatmap tab is decoded again from the upload, at full size."""
    from deepfake import media

    import app
    demo = app.build_demo(det, cache_examples=False)
    kept = []
    real = det.analyze_video
    monkeypatch.setattr(det, "analyze_video", lambda *a, **kw: kept.append(kw.get("keep_frames")) or real(*a, **kw))
    fns = {f.api_name: f for f in demo.fns.values()}
    video = Path(shutil.copy(EXAMPLE_VIDEO, files.workdir() / EXAMPLE_VIDEO.name))
    out = fns["analyze_video"].fn(str(video), 4, "mean", "leave_one_out", det.threshold, progress=lambda *a, **k: None)
    assert kept == [None] or kept == [False], kept
    gallery, state = out[3], out[-1]
    assert len(gallery) == 4 and all(max(cv2.imread(p).shape[:2]) <= media.PREVIEW_MAX_SIDE for p, _ in gallery)
    to_grid = next(f for f in demo.fns.values() if f.fn is not None and f.fn.__name__ == "frame_to_grid")
    frame_png, _ = to_grid.fn(state, 2)
    want = media.read_frame(video, state["result"].frames[2].index).rgb
    assert np.array_equal(cv2.cvtColor(cv2.imread(frame_png), cv2.COLOR_BGR2RGB), want)


# ---------------------------------------------------------------------------------------------- issue 14
BAND = {"real_below": 0.300001, "fake_from": 0.6}


def _at_validation() -> dict:
    """Validation counts per band as deepfake/train/calibrate.py writes them (deepfake.band.band_counts), of
    scores made up so that every count is known: dfdc 10 real (1 FAKE, 2 UNCERTAIN, 7 REAL) and 10 fakes
    (6, 2, 2); stylegan 4 real (all REAL) and no fakes."""
    from deepfake.band import Band, band_counts
    real_dfdc, fake_dfdc, real_sg = [0.1] * 7 + [0.4] * 2 + [0.7], [0.9] * 6 + [0.5] * 2 + [0.2] * 2, [0.2] * 4
    scores = real_dfdc + fake_dfdc + real_sg
    labels = [0] * 10 + [1] * 10 + [0] * 4
    sources = ["dfdc"] * 20 + ["stylegan"] * 4
    return json.loads(json.dumps(band_counts(labels, scores, sources, Band(**BAND))))


@pytest.fixture(scope="module")
def banded(tmp_path_factory):
    """(detector, folder) of a calibrated detector: a band with a 6-decimal REAL bound, a temperature, gates,
    the validation counts per band and a reliability plot."""
    from conftest import YUNET_ONNX, write_random_detector

    from deepfake import load_detector
    folder = write_random_detector(tmp_path_factory.mktemp("banded") / "banded-lite0", seed=2, threshold=0.6)
    cfg = json.loads((folder / "config.json").read_text())
    gates = {"min_side_px": 64, "min_sharpness": 0, "min_brightness": 40, "max_yaw": 1.5}
    cfg["deepfake"].update(temperature=1.7, quality_gates=gates,
                           band=dict(BAND, rule="FAKE from ... (the stated rule)", max_fpr=0.05, max_fnr=0.1,
                                     at_validation=_at_validation()))
    (folder / "config.json").write_text(json.dumps(cfg))
    plot = np.zeros((30, 40, 3), np.uint8)
    plot[:, :20] = (0, 0, 255)
    cv2.imwrite(str(folder / "reliability.png"), plot)
    return load_detector(str(folder), face_detector=str(YUNET_ONNX) if YUNET_ONNX.is_file() else "haar"), folder


def _by_id(demo) -> dict:
    return {getattr(b, "elem_id", None): b for b in demo.blocks.values()}


def test_both_band_sliders_start_at_the_models_bounds_on_their_grid(banded):
    from decimal import Decimal

    import app
    det = banded[0]
    assert (det.band.real_below, det.band.fake_from) == (0.300001, 0.6)
    by_id = _by_id(app.build_demo(det, cache_examples=False))
    for elem_id, want in (("threshold", 0.6), ("real_below", 0.300001)):
        slider = by_id[elem_id]
        assert (slider.value, slider.minimum, slider.maximum) == (want, 0.0, 1.0)
        assert Decimal(repr(slider.value)) % Decimal(repr(slider.step)) == 0, (elem_id, slider.step)
    assert by_id["real_below"].step == 1e-6 and by_id["threshold"].step == 0.001


def test_the_model_tab_states_the_band_calibration_counts_and_gates(banded):
    import app
    demo = app.build_demo(banded[0], card_folder=banded[1], cache_examples=False)
    card = _by_id(demo)["model-card"].value
    assert "| Decision band | REAL below 0.300001, UNCERTAIN from 0.300001 to 0.6, FAKE from 0.6 |" in card
    assert "| Band rule | FAKE from ... (the stated rule) |" in card
    assert "| Error budgets | at most 5% of real faces called FAKE, at most 10% of fakes called REAL" in card
    assert "| Temperature | 1.7 (probabilities are softmax(logits / T)" in card
    assert ("| Quality gates | UNCERTAIN, not judged, when the face side (px) below 64, sharpness (Laplacian "
            "variance): off, brightness (mean luma 0-255) below 40, or head turn (yaw) above 1.5 (about 56 degrees) |"
            ) in card
    rows = [line for line in card.splitlines() if line.startswith("| dfdc") or line.startswith("| stylegan")
            or line.startswith("| **")]
    assert rows == [
        "| dfdc | 10 | 1 (10.0%) | 2 (20.0%) | 7 (70.0%) | 10 | 6 (60.0%) | 2 (20.0%) | 2 (20.0%) |",
        "| stylegan | 4 | 0 (0.0%) | 0 (0.0%) | 4 (100.0%) | 0 | - | - | - |",
        "| **all sources** | 14 | 1 (7.1%) | 2 (14.3%) | 11 (78.6%) | 10 | 6 (60.0%) | 2 (20.0%) | 2 (20.0%) |",
        "| **mean over sources** | | 5.0% | 10.0% | 85.0% | | 60.0% | 20.0% | 20.0% |"]
    assert "no calibration recorded" not in card.lower() and "The reliability plot at the end of this tab" in card


@pytest.fixture(scope="module")
def uncalibrated(det_and_folder, tmp_path_factory):
    """The test model's folder as it was before calibration: no band, no temperature, no reliability plot."""
    from conftest import YUNET_ONNX

    from deepfake import load_detector
    from deepfake.files import CONFIG_FILE
    folder = tmp_path_factory.mktemp("uncalibrated") / det_and_folder[1].name
    shutil.copytree(det_and_folder[1], folder, ignore=shutil.ignore_patterns(settings.RELIABILITY_FILE))
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    for key in ("band", "temperature"):
        cfg["deepfake"].pop(key, None)
    (folder / CONFIG_FILE).write_text(json.dumps(cfg))
    return load_detector(str(folder), face_detector=str(YUNET_ONNX) if YUNET_ONNX.is_file() else "haar")


def test_a_model_without_calibration_says_so_and_shows_no_plot(uncalibrated):
    import app
    det = uncalibrated
    assert det.config.band is None and det.config.temperature == 1.0 and det.band.is_single
    by_id = _by_id(app.build_demo(det, cache_examples=False))
    card = by_id["model-card"].value
    assert "no calibration recorded" in card.lower() and "No reliability plot in the model folder" in card
    assert "the config states no band, only its threshold" in card
    assert f"| Temperature | {det.config.temperature:g}" in card
    assert "reliability-plot" not in by_id


def test_the_reliability_plot_is_served_by_the_app(banded):
    """The model folder's plot, shown in the Model tab from Gradio's own cache (no allowed_paths needed)."""
    import httpx

    with running_app(*banded) as url:
        config = httpx.get(f"{url}config", timeout=30).json()
        plot = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "reliability-plot")
        value = plot["props"]["value"]
        served = httpx.get(value["url"] if value["url"].startswith("http") else url + value["url"].lstrip("/"),
                           timeout=30)
    assert served.status_code == 200 and served.content == (banded[1] / "reliability.png").read_bytes()
    assert str(banded[1]) not in json.dumps(plot)  # the model folder's path is not shown
