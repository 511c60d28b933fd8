"""The app's handlers called directly, without a server: a file in, the verdict markdown, picture and report
files out, equal to what the package says; bad input is one gr.Error with a clear message."""
import csv
import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import cv2
import gradio as gr
import numpy as np
import pytest

from app_support import EXAMPLE_FAKE, EXAMPLE_REAL, EXAMPLE_VIDEO, pick_detector
from deepfake import InputError
from deepfake.results import FaceResult, FrameResult, ImageResult, VideoResult
from webapp import files, handlers, layout, text

pytestmark = pytest.mark.timeout(300)
NO_PROGRESS = lambda *a, **k: None  # noqa: E731  (gr.Progress needs a running request)


@pytest.fixture(scope="module")
def det(random_model_dir):
    return pick_detector(random_model_dir)[0]


@pytest.fixture(scope="module")
def one_net(tmp_path_factory):
    """The bundled detector's first network alone: the one-network texts."""
    from deepfake import load_detector
    from support.detectors import write_face_swap_only
    from support.paths import YUNET_ONNX

    folder = write_face_swap_only(tmp_path_factory.mktemp("one") / "face-swap-only")
    return load_detector(str(folder), face_detector=str(YUNET_ONNX) if YUNET_ONNX.is_file() else "haar")


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
    assert rep["input"]["name"] == EXAMPLE_FAKE.name
    assert rep["settings"] == {"threshold": det.threshold, "real_below": det.band.real_below}
    assert Path(rep_json).name == "astronaut_sbi_fake_report.json" and Path(rep_html).suffix == ".html"


def test_the_threshold_argument_decides_the_label(det):
    """Bounds just around the probability: a single cut below it is FAKE, above it REAL. A lone threshold keeps
    the model's REAL bound (followed down when the threshold is lower), so its label is that band's."""
    want = det.analyze_image(EXAMPLE_REAL)
    p = want.fake_probability
    assert p is not None and want.reasons == ()  # the example has a frontal face that passes the quality gates
    below, above = max(0.0, p - 0.01), min(1.0, p + 0.01)
    low = handlers.predict_image(det, upload(EXAMPLE_REAL), below, below)[2]
    high = handlers.predict_image(det, upload(EXAMPLE_REAL), above, above)[2]
    assert (low["label"], high["label"]) == ("FAKE", "REAL")
    assert low["threshold"] == pytest.approx(below, abs=1e-6)
    for thr in (below, above):
        lone = handlers.predict_image(det, upload(EXAMPLE_REAL), thr)[2]
        band = det.band_for(thr)
        assert [lone["threshold"], lone["real_below"]] == pytest.approx([band.fake_from, band.real_below], abs=1e-6)
        assert band.real_below == min(det.band.real_below, thr)
        assert lone["label"] == band.label(p)


def test_analyze_and_explain_give_the_same_cam_analysis(det):
    verdict, faces, overlay, cam, rep_json, _ = handlers.analyze_image(det, upload(EXAMPLE_FAKE), "gradcam")
    verdict2, overlay2, cam2, _, _ = handlers.explain_image(det, upload(EXAMPLE_FAKE), "gradcam")
    want = det.grad_cam(str(EXAMPLE_FAKE), "gradcam")
    assert verdict == verdict2
    assert cam["result"]["fake_probability"] == cam2["result"]["fake_probability"] == pytest.approx(
        want.result.fake_probability, abs=1e-6)
    assert cv2.imread(faces).shape[:2] == cv2.imread(overlay).shape[:2] == want.heatmap.shape
    assert np.abs(cv2.imread(overlay).astype(int) - cv2.imread(overlay2).astype(int)).max() <= 1
    assert json.loads(Path(rep_json).read_text())["settings"] == {"threshold": det.threshold,
                                                                  "real_below": det.band.real_below,
                                                                  "cam_method": "gradcam"}


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
                                                                  "threshold": det.threshold,
                                                                  "real_below": det.band.real_below}


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


def test_bind_gives_the_api_the_arguments_after_the_detector_and_its_band(det):
    import inspect

    event = layout.bind(handlers.grid_heatmap, det)
    params = inspect.signature(event).parameters
    assert list(params) == ["image", "grid", "baseline", "threshold", "real_below", "progress"]
    assert params["threshold"].default == det.band.fake_from == det.threshold and event.__name__ == "grid_heatmap"
    assert params["real_below"].default == det.band.real_below
    assert event(upload(EXAMPLE_FAKE), 2, progress=NO_PROGRESS)[2]["result"]["threshold"] == pytest.approx(
        det.threshold, abs=1e-6)


# ---------------------------------------------------------------------------------------------- issue 14: the band
def test_a_real_bound_above_the_threshold_is_the_detectors_message_from_every_handler(det):
    threshold, real_below = 0.3, 0.4
    assert real_below != det.band.real_below  # not the default, which follows a lower threshold down
    with pytest.raises(InputError) as want:
        det.analyze_image(str(EXAMPLE_REAL), threshold=threshold, real_below=real_below)
    assert str(want.value) == "The REAL bound (0.4) must not be above the FAKE threshold (0.3)."
    image = upload(EXAMPLE_REAL)
    calls = [lambda: handlers.predict_image(det, image, threshold, real_below),
             lambda: handlers.explain_image(det, image, "gradcam", threshold, real_below),
             lambda: handlers.analyze_image(det, image, "gradcam", threshold, real_below),
             lambda: handlers.grid_heatmap(det, image, 2, "mean", threshold, real_below, progress=NO_PROGRESS),
             lambda: handlers.analyze_video(det, upload(EXAMPLE_VIDEO), 2, "mean", "blank", threshold, real_below,
                                            progress=NO_PROGRESS)]
    for call in calls:
        with pytest.raises(gr.Error) as err:
            call()
        assert err.value.message == str(want.value)


def test_the_real_bound_at_its_default_follows_a_lower_threshold_down(det):
    """A Gradio client made before the REAL bound existed sends a threshold only; its client fills the REAL bound
    in with the slider's default, the model's: that one is lowered to the threshold, as the detector does."""
    low = round(det.band.real_below / 2, 3)
    result = handlers.predict_image(det, upload(EXAMPLE_REAL), low, det.band.real_below)[2]
    assert (result["threshold"], result["real_below"]) == (pytest.approx(low), pytest.approx(low))
    assert result["label"] == det.analyze_image(EXAMPLE_REAL, threshold=low).label


def _bands_around(p: float) -> dict:
    """(threshold, real_below) that put probability p in each band (3 decimals: the verdict shows them so)."""
    def r(v):
        return round(min(1.0, max(0.0, v)), 3)
    return {"REAL": (r(p + 0.2), r(p + 0.1)), "UNCERTAIN": (r(p + 0.05), r(p - 0.05)), "FAKE": (r(p - 0.05), r(p - 0.1))}


@pytest.mark.parametrize("label", ["REAL", "UNCERTAIN", "FAKE"])
def test_the_two_bounds_put_a_known_probability_in_each_band(one_net, label):
    det = one_net
    p = det.analyze_image(EXAMPLE_REAL).fake_probability
    assert p is not None and 0.1 < p < 0.9, p  # the astronaut's frontal face: about 0.21 with the bundled model
    threshold, real_below = _bands_around(p)[label]
    verdict, _, result, rep_json, rep_html = handlers.predict_image(det, upload(EXAMPLE_REAL), threshold, real_below)
    assert result["label"] == label and [f["label"] for f in result["faces"]] == [label]
    assert result["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert result["real_below"] == pytest.approx(real_below, abs=1e-6)
    # A FAKE headline names the likely kind: the one network's, face swap.
    assert result["manipulation"] == ("face_swap" if label == "FAKE" else None)
    likely = " — likely face swap" if label == "FAKE" else ""
    assert f"verdict-{label}'><h2>{label}: fake probability {p:.3f}{likely}</h2>" in verdict
    x, y = (format(v, ".6f").rstrip("0").rstrip(".") for v in (real_below, threshold))
    assert f"Band: REAL below {x}, UNCERTAIN from {x} to {y}, FAKE from {y}." in verdict
    between = f"between the REAL bound {x} and the FAKE threshold {y}"
    assert (between in verdict) == (label == "UNCERTAIN")
    assert json.loads(Path(rep_json).read_text())["settings"] == {"threshold": threshold, "real_below": real_below}


def test_the_cam_grid_and_video_handlers_apply_both_bounds(det):
    p = det.analyze_image(EXAMPLE_REAL).fake_probability
    threshold, real_below = _bands_around(p)["UNCERTAIN"]
    image = upload(EXAMPLE_REAL)
    verdict, _, cam, rep_json, _ = handlers.explain_image(det, image, "gradcam", threshold, real_below)
    assert cam["result"]["label"] == "UNCERTAIN" and cam["result"]["real_below"] == pytest.approx(real_below)
    assert "UNCERTAIN: fake probability" in verdict
    assert json.loads(Path(rep_json).read_text())["settings"]["real_below"] == real_below
    verdict, _, occ, _, rep_json, _ = handlers.grid_heatmap(det, image, 2, "mean", threshold, real_below,
                                                            progress=NO_PROGRESS)
    assert occ["result"]["label"] == "UNCERTAIN" and "UNCERTAIN: fake probability" in verdict
    want = det.analyze_video(str(EXAMPLE_VIDEO), 3, threshold=0.99, real_below=0.0)
    assert want.fake_probability is not None
    out = handlers.analyze_video(det, upload(EXAMPLE_VIDEO), 3, "mean", "blank", 0.99, 0.0, progress=NO_PROGRESS)
    verdict, result, rep_json = out[0], out[4], out[5]
    assert result["label"] == want.label == "UNCERTAIN" and result["real_below"] == 0.0
    assert [f["label"] for f in result["frames"]] == [f.label for f in want.frames]
    assert f"{want.frames_judged} of {want.frames_with_face} frames with a face passed the quality gates" in verdict
    assert json.loads(Path(rep_json).read_text())["settings"] == {"threshold": 0.99, "real_below": 0.0, "frames": 3,
                                                                  "aggregation": "mean"}


def _image_result(label, p, faces, reasons=()) -> ImageResult:
    return ImageResult(label=label, fake_probability=p, threshold=0.6, faces=faces, scored_whole_image=False,
                       face_detector="yunet", model_id="m", model_revision="r", width=100, height=80, timings_ms={},
                       real_below=0.3, reasons=reasons)


def test_a_face_too_small_to_judge_is_uncertain_in_words():
    small = FaceResult((5, 6, 20, 20), (0, 0, 30, 30), 0.9, 0.7, "UNCERTAIN", {"side_px": 20.0},
                       ("face_too_small",))
    md = text.verdict_markdown(_image_result("UNCERTAIN", 0.7, (small,), ("face_too_small",)))
    assert "<div class='verdict verdict-UNCERTAIN'><h2>UNCERTAIN: fake probability 0.700</h2></div>" in md
    assert "No face could be judged: face too small to judge." in md
    assert "Band: REAL below 0.3, UNCERTAIN from 0.3 to 0.6, FAKE from 0.6." in md
    assert "- Face 1 (20x20 px at 5, 6): UNCERTAIN, fake probability 0.700 - not judged: face too small to judge" in md
    assert "between the REAL bound" not in md  # the gates, not the band, made it UNCERTAIN


def test_per_face_reasons_are_listed_and_every_gate_has_words():
    judged = FaceResult((0, 0, 90, 90), (0, 0, 99, 99), 0.9, 0.2, "REAL")
    dark = FaceResult((50, 0, 60, 60), (40, 0, 99, 70), 0.8, 0.9, "UNCERTAIN", {}, ("too_dark", "profile"))
    md = text.verdict_markdown(_image_result("REAL", 0.2, (judged, dark)))
    assert "<h2>REAL: fake probability 0.200</h2>" in md and "UNCERTAIN from 0.3" in md
    assert "- Face 1 (90x90 px at 0, 0): REAL, fake probability 0.200\n" in md
    assert md.count("not judged") == 1 and "not judged: too dark, turned too far from frontal" in md
    assert text.reasons_words(("face_too_small", "blurred", "too_dark", "profile")) == \
        "face too small to judge, blurred, too dark, turned too far from frontal"
    one_cut = text.verdict_markdown(dataclasses.replace(_image_result("FAKE", 0.7, (judged,)), real_below=0.6))
    assert "Band: REAL below 0.6, UNCERTAIN from 0.6 to 0.6, FAKE from 0.6 (no UNCERTAIN band: one cut)." in one_cut


def _frame(i, p, label, reasons=()):
    faces = () if p is None else (FaceResult((0, 0, 50, 50), (0, 0, 60, 60), 0.9, p, label, {}, reasons),)
    return FrameResult(i, i / 10, p, faces, None, None, label=label, reasons=reasons)


def test_a_video_verdict_says_how_many_frames_passed_the_gates():
    frames = (_frame(0, 0.8, "FAKE"), _frame(1, 0.4, "UNCERTAIN", ("blurred",)), _frame(2, None, "NO_FACE"),
              _frame(3, 0.9, "UNCERTAIN", ("blurred", "too_dark")), _frame(4, 0.7, "FAKE"))
    res = VideoResult(label="FAKE", fake_probability=0.75, threshold=0.6, aggregation="mean", frames=frames,
                      frames_sampled=5, frames_with_face=4, blank_frame_probability=0.1, fps=10.0, duration_s=0.5,
                      frame_count=5, width=64, height=64, face_detector="yunet", model_id="m", model_revision="r",
                      timings_ms={}, real_below=0.3, frames_judged=2)
    md = text.verdict_markdown(res, "video")
    assert "<h2>FAKE: fake probability 0.750</h2>" in md and "4/5 sampled frames with a face." in md
    assert "2 of 4 frames with a face passed the quality gates (failed: 2 blurred, 1 too dark)." in md
    gated = dataclasses.replace(res, label="UNCERTAIN", frames_judged=0, reasons=("blurred",))
    md = text.verdict_markdown(gated, "video")
    assert "<h2>UNCERTAIN: fake probability 0.750</h2>" in md and "No frame could be judged: blurred." in md
    assert "0 of 4 frames with a face passed the quality gates" in md


# ---------------------------------------------------------------------------------------------- issue 14: networks
def _score(network, kind, p, label, threshold, real_below):
    from deepfake.results import NetworkScore
    return NetworkScore(network, kind, p, label, threshold, real_below)


TWO_SCORES = (_score("face_swap", "face_swap", 0.21, "REAL", 0.6, 0.3),
              _score("generated", "generated", 0.95, "FAKE", 0.9, 0.2))


def test_a_two_network_verdict_has_one_bar_per_network_and_the_kind_in_its_headline():
    judged = dataclasses.replace(FaceResult((0, 0, 90, 90), (0, 0, 99, 99), 0.9, 0.21, "FAKE"),
                                 scores=TWO_SCORES, manipulation="generated")
    res = dataclasses.replace(_image_result("FAKE", 0.21, (judged,)), scores=TWO_SCORES, manipulation="generated")
    md = text.verdict_markdown(res)
    assert md.startswith("<div class='verdict verdict-FAKE'><h2>FAKE: fake probability 0.950 — likely fully "
                         "generated</h2></div>\n\n<div class='network-scores'>")
    assert md.count("<div class='network-score ") == 2
    swap, gen = md.split("<div class='network-score ")[1:]
    assert "<b>face_swap</b> (face swap)" in swap and "<b>generated</b> (fully generated)" in gen
    assert "color:#16a34a;font-weight:700'>REAL 21.0%</span>" in swap and "width:21.0%;" in swap
    assert "color:#dc2626;font-weight:700'>FAKE 95.0%</span>" in gen and "width:95.0%;" in gen
    assert "left:30%;border-left:2px solid #16a34a" in swap and "left:60%;border-left:2px solid #dc2626" in swap
    assert "left:20%;border-left:2px solid #16a34a" in gen and "left:90%;border-left:2px solid #dc2626" in gen
    assert ">REAL below 0.3, UNCERTAIN 0.3-0.6, FAKE from 0.6</div>" in swap
    assert ">REAL below 0.2, UNCERTAIN 0.2-0.9, FAKE from 0.9</div>" in gen
    assert ("Band of the face_swap network (the sliders): REAL below 0.3, UNCERTAIN from 0.3 to 0.6, FAKE from 0.6; "
            "the other networks keep their own bands (under their bars). 1 face(s).") in md
    two = text.verdict_markdown(dataclasses.replace(res, faces=(judged, judged)))
    assert ("- Face 1 (90x90 px at 0, 0): FAKE, likely fully generated, face_swap 0.210 REAL, generated 0.950 FAKE"
            in two)


def test_an_uncertain_two_network_verdict_names_the_unsure_network():
    scores = (TWO_SCORES[0], _score("generated", "generated", 0.5, "UNCERTAIN", 0.9, 0.2))
    md = text.verdict_markdown(dataclasses.replace(_image_result("UNCERTAIN", 0.21, ()), scores=scores))
    assert "<h2>UNCERTAIN: fake probability 0.500</h2>" in md
    assert ("the fake probability of generated (fully generated) is between its REAL bound and its FAKE threshold"
            in md)
    assert "color:#d97706;font-weight:700'>UNCERTAIN 50.0%</span>" in md


def test_a_one_network_verdict_has_one_bar_and_its_old_headline():
    scores = (_score("face_swap", "face_swap", 0.7, "FAKE", 0.6, 0.6),)
    res = dataclasses.replace(_image_result("FAKE", 0.7, ()), scores=scores, manipulation="face_swap", real_below=0.6)
    md = text.verdict_markdown(res)
    assert "<h2>FAKE: fake probability 0.700 — likely face swap</h2>" in md
    assert md.count("<div class='network-score ") == 1 and "FAKE 70.0%" in md and "width:70.0%;" in md
    # a single cut: one dark mark at the threshold
    assert "left:60%;border-left:2px solid #111827" in md and ">REAL below 0.6, FAKE from 0.6</div>" in md
    assert "Band: REAL below 0.6, UNCERTAIN from 0.6 to 0.6, FAKE from 0.6 (no UNCERTAIN band: one cut)." in md
    no_face = text.verdict_markdown(dataclasses.replace(_image_result("NO_FACE", None, ()), scores=(
        _score("face_swap", "face_swap", None, "NO_FACE", 0.6, 0.3),)))
    assert "network-score" not in no_face and "No face detected - no verdict" in no_face


def test_a_two_network_video_verdict_shows_each_networks_video_probability_and_label():
    frames = (_frame(0, 0.2, "FAKE"), _frame(1, 0.22, "FAKE"))
    scores = (_score("face_swap", "face_swap", 0.21, "REAL", 0.6, 0.3),
              _score("generated", "generated", 0.925, "FAKE", 0.9, 0.2))
    res = VideoResult(label="FAKE", fake_probability=0.21, threshold=0.6, aggregation="mean", frames=frames,
                      frames_sampled=2, frames_with_face=2, blank_frame_probability=0.1, fps=10.0, duration_s=0.2,
                      frame_count=2, width=64, height=64, face_detector="yunet", model_id="m", model_revision="r",
                      timings_ms={}, real_below=0.3, frames_judged=2, scores=scores, manipulation="generated")
    md = text.verdict_markdown(res, "video")
    assert "<h2>FAKE: fake probability 0.925 — likely fully generated</h2>" in md
    assert md.count("<div class='network-score ") == 2
    assert "REAL 21.0%</span>" in md and "FAKE 92.5%</span>" in md and "width:92.5%;" in md
    assert "2/2 sampled frames with a face." in md


@pytest.fixture(scope="module")
def two_net(tmp_path_factory):
    """The bundled detector with a second network, 'generated' (the bundled weights at T 0.7), whose band
    (REAL below 0.01, FAKE from 0.02) calls the astronaut FAKE."""
    from support.detectors import write_two_network_detector
    from support.paths import YUNET_ONNX

    from deepfake import load_detector
    from deepfake.band import Band
    folder = write_two_network_detector(tmp_path_factory.mktemp("nets") / "two", Band(0.01, 0.02), 0.7)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPFAKE_BACKEND", "torch")  # no ONNX export of the copy
        return load_detector(str(folder), face_detector=str(YUNET_ONNX) if YUNET_ONNX.is_file() else "haar")


def test_a_two_network_detector_through_the_handlers_gives_the_combined_verdict(two_net):
    want = two_net.analyze_image(str(EXAMPLE_REAL), threshold=1.0, real_below=1.0)  # face swap: REAL
    p1, p2 = (s.fake_probability for s in want.scores)
    assert p2 >= 0.02 and p1 < 1.0, (p1, p2)  # the generated network says FAKE, the face-swap one REAL
    verdict, faces_png, result, _, _ = handlers.predict_image(two_net, upload(EXAMPLE_REAL), 1.0, 1.0)
    assert (result["label"], result["manipulation"]) == ("FAKE", "generated")
    assert [(s["network"], s["label"]) for s in result["scores"]] == [("face_swap", "REAL"), ("generated", "FAKE")]
    assert f"<h2>FAKE: fake probability {p2:.3f} — likely fully generated</h2>" in verdict
    swap, gen = verdict.split("<div class='network-score ")[1:]
    assert f"<b>face_swap</b> (face swap)</span><span style='color:#16a34a;font-weight:700'>REAL {p1:.1%}</span>" in swap
    assert f"<b>generated</b> (fully generated)</span><span style='color:#dc2626;font-weight:700'>FAKE {p2:.1%}" in gen
    assert ">REAL below 0.01, UNCERTAIN 0.01-0.02, FAKE from 0.02</div>" in gen
    x, y, w, h = want.faces[0].box
    assert tuple(cv2.imread(faces_png)[y + h // 2, x][::-1]) == (220, 38, 38)  # the face's box: red, FAKE
    # The CAM tab shows the same verdict (its map is the face-swap network's).
    assert handlers.analyze_image(two_net, upload(EXAMPLE_REAL), "gradcam", 1.0, 1.0)[0] == verdict


def test_a_two_network_video_through_the_handler_shows_each_network(two_net):
    out = handlers.analyze_video(two_net, upload(EXAMPLE_VIDEO), 2, "mean", "blank", 1.0, 1.0, progress=NO_PROGRESS)
    verdict, gallery, result = out[0], out[3], out[4]
    swap, gen = result["scores"]
    assert (result["label"], result["manipulation"]) == ("FAKE", "generated") and gen["label"] == "FAKE"
    assert f"REAL {swap['fake_probability']:.1%}</span>" in verdict and f"FAKE {gen['fake_probability']:.1%}" in verdict
    for (_, caption), frame in zip(gallery, result["frames"]):
        s1, s2 = frame["scores"]
        assert caption.endswith(f"p(fake) face_swap {s1['fake_probability']:.3f}, generated "
                                f"{s2['fake_probability']:.3f} - FAKE, likely fully generated")


def test_the_model_tab_lists_each_network(two_net, one_net):
    det = one_net
    one = text.model_markdown(det, None)
    member = det.members[0]
    assert "## Networks\n\nOne network scores each face; the sliders set its band." in one
    assert (f"| {member.name} | face swap / blending artefacts | "
            f"{text.band_line(member.band.real_below, member.band.fake_from)} |") in one
    assert text.kinds_phrase(det) == "face swap / blending artefacts"
    card = text.model_markdown(two_net, None)
    first, extra = two_net.members
    band = first.band
    assert "## Networks\n\n2 networks score each face, each by its own band: FAKE if any network says FAKE" in card
    assert (f"| face_swap | face swap / blending artefacts | {text.band_line(band.real_below, band.fake_from)} | "
            f"{first.network.config.temperature:g} | `{first.model_id}` @ `{first.revision}` |") in card
    assert ("| generated | fully generated faces | REAL below 0.01, UNCERTAIN from 0.01 to 0.02, FAKE from 0.02 | 0.7 | "
            f"`networks/generated` @ `{extra.revision}` |") in card
    assert text.kinds_phrase(two_net) == "face swap / blending artefacts; fully generated faces"
