"""The app's handlers called directly, without a server: a file in, the verdict markdown, picture and report
files out, equal to what the package says; bad input is one gr.Error with a clear message."""
import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import gradio as gr
import numpy as np
import pytest

from app_support import EXAMPLE_FAKE, EXAMPLE_REAL, EXAMPLE_VIDEO, pick_detector
from webapp import files, handlers, layout

pytestmark = pytest.mark.timeout(300)
NO_PROGRESS = lambda *a, **k: None  # noqa: E731  (gr.Progress needs a running request)


@pytest.fixture(scope="module")
def det(random_model_dir):
    return pick_detector(random_model_dir)[0]


def upload(path: Path) -> str:
    """The file as an upload of this app (a copy in its private request folder, an upload root)."""
    return shutil.copy(path, files.workdir() / path.name)


def test_predict_image_gives_the_package_verdict_a_faces_picture_and_reports(det):
    verdict, faces_png, result, rep_json, rep_html = handlers.predict_image(det, upload(EXAMPLE_FAKE))
    want = det.analyze_image(EXAMPLE_FAKE)
    assert result["label"] == want.label and result["threshold"] == pytest.approx(det.threshold)
    assert result["fake_probability"] == pytest.approx(want.fake_probability, abs=1e-6)
    assert f"fake probability {want.fake_probability:.3f}" in verdict or want.label == "NO_FACE"
    assert cv2.imread(faces_png).shape[:2] == (want.height, want.width)
    rep = json.loads(Path(rep_json).read_text())
    assert rep["input"]["name"] == EXAMPLE_FAKE.name and rep["settings"] == {"threshold": det.threshold}
    assert Path(rep_json).name == "astronaut_sbi_fake_report.json" and Path(rep_html).suffix == ".html"


def test_the_threshold_argument_decides_the_label(det):
    p = det.analyze_image(EXAMPLE_REAL).fake_probability
    assert p is not None  # the example has a frontal face
    low = handlers.predict_image(det, upload(EXAMPLE_REAL), max(0.0, p - 0.01))[2]
    high = handlers.predict_image(det, upload(EXAMPLE_REAL), min(1.0, p + 0.01))[2]
    assert (low["label"], high["label"]) == ("FAKE", "REAL")
    assert low["threshold"] == pytest.approx(max(0.0, p - 0.01), abs=1e-6)


def test_analyze_and_explain_give_the_same_cam_analysis(det):
    verdict, faces, overlay, cam, rep_json, _ = handlers.analyze_image(det, upload(EXAMPLE_FAKE), "gradcam")
    verdict2, overlay2, cam2, _, _ = handlers.explain_image(det, upload(EXAMPLE_FAKE), "gradcam")
    want = det.grad_cam(str(EXAMPLE_FAKE), "gradcam")
    assert verdict == verdict2
    assert cam["result"]["fake_probability"] == cam2["result"]["fake_probability"] == pytest.approx(
        want.result.fake_probability, abs=1e-6)
    assert cv2.imread(faces).shape[:2] == cv2.imread(overlay).shape[:2] == want.heatmap.shape
    assert np.abs(cv2.imread(overlay).astype(int) - cv2.imread(overlay2).astype(int)).max() <= 1
    assert json.loads(Path(rep_json).read_text())["settings"] == {"threshold": det.threshold, "cam_method": "gradcam"}


def test_grid_heatmap_writes_the_occlusion_grid_as_csv(det):
    verdict, heatmap, occ, csv_path, rep_json, _ = handlers.grid_heatmap(det, upload(EXAMPLE_FAKE), 3,
                                                                        progress=NO_PROGRESS)
    want = det.occlusion_map(str(EXAMPLE_FAKE), grid=3)
    rows = list(csv.reader(open(csv_path, newline="")))
    assert rows[0] == ["row", "col0", "col1", "col2"] and [r[0] for r in rows[1:]] == ["0", "1", "2"]
    np.testing.assert_allclose(np.array([[float(v) for v in r[1:]] for r in rows[1:]]), np.asarray(want.changes),
                               atol=2e-6)
    assert Path(csv_path).name == "astronaut_sbi_fake_grid3x3.csv" and Path(heatmap).name.endswith("grid3x3.png")
    assert json.loads(Path(rep_json).read_text())["settings"] == {"grid": 3, "baseline": "mean",
                                                                  "threshold": det.threshold}


def test_video_handlers_share_one_analysis_state(det):
    out = handlers.analyze_video(det, upload(EXAMPLE_VIDEO), 3, "mean", "blank", progress=NO_PROGRESS)
    verdict, timeline, importance, gallery, result, rep_json, rep_html, state = out
    want = det.analyze_video(str(EXAMPLE_VIDEO), 3)
    assert result["fake_probability"] == pytest.approx(want.fake_probability, abs=1e-6)
    assert state["frames"] == [f.index for f in want.frames] and len(gallery) == 3
    assert Path(importance).name.endswith("_importance_blank.png")
    assert Path(handlers.rerender_importance(state, "nonsense")).name == "importance_leave_one_out.png"
    assert handlers.rerender_importance(None, "blank") is None
    assert handlers.pick_frame(state, SimpleNamespace(index=2)) == 2 and handlers.pick_frame(None, None) is None
    frame_png, tabs = handlers.frame_to_grid(state, 99)  # clamped to the last sampled frame
    from deepfake import media
    last = media.read_frame(EXAMPLE_VIDEO, state["frames"][-1]).rgb
    assert np.array_equal(cv2.cvtColor(cv2.imread(frame_png), cv2.COLOR_BGR2RGB), last)
    assert isinstance(tabs, gr.Tabs)


@pytest.mark.parametrize("call,message", [
    (lambda det: handlers.predict_image(det, None), "Please upload an image first."),
    (lambda det: handlers.grid_heatmap(det, str(EXAMPLE_REAL), progress=NO_PROGRESS), "Only files uploaded"),
    (lambda det: handlers.analyze_video(det, "", progress=NO_PROGRESS), "Please upload a video first."),
    (lambda det: handlers.frame_to_grid(None, 0), "Analyse a video first"),
    (lambda det: handlers.frame_to_grid({"frames": [0], "video": str(EXAMPLE_VIDEO)}, 0), "has expired"),
], ids=["nothing", "not an upload", "empty video", "no analysis", "expired"])
def test_bad_requests_are_one_clear_error(det, call, message):
    with pytest.raises(gr.Error, match=message):
        call(det)


def test_package_errors_keep_their_message_and_others_become_a_generic_one(det, monkeypatch):
    bad = files.workdir() / "notes.png"
    bad.write_text("not a picture")
    with pytest.raises(gr.Error, match="not an image this app can read"):
        handlers.predict_image(det, str(bad))
    monkeypatch.setattr(det, "analyze_image", lambda *a, **k: (_ for _ in ()).throw(RuntimeError(f"in {bad}")))
    with pytest.raises(gr.Error) as err:
        handlers.predict_image(det, upload(EXAMPLE_REAL))
    assert "Something went wrong" in err.value.message and str(bad) not in err.value.message


def test_ui_helpers_pass_uploads_on_and_nothing_else(det):
    assert handlers.as_image_input(None) is None
    assert handlers.as_image_input(upload(EXAMPLE_REAL)).startswith(str(files.TMP_ROOT.resolve()))
    assert handlers.video_preview(None) is None and handlers.video_preview(str(EXAMPLE_VIDEO)) is None
    assert len(handlers.video_example(det, upload(EXAMPLE_VIDEO))) == 7  # no gallery state for a cached example


def test_bind_gives_the_api_the_arguments_after_the_detector_and_its_threshold(det):
    import inspect

    event = layout.bind(handlers.grid_heatmap, det)
    params = inspect.signature(event).parameters
    assert list(params) == ["image", "grid", "baseline", "threshold", "progress"]
    assert params["threshold"].default == det.threshold and event.__name__ == "grid_heatmap"
    assert event(upload(EXAMPLE_FAKE), 2, progress=NO_PROGRESS)[2]["result"]["threshold"] == pytest.approx(
        det.threshold, abs=1e-6)
