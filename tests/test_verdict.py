"""The label rule end to end: quality gates and the band on known probabilities, in images and video frames."""
import dataclasses

import numpy as np
import pytest
from synth import write_video
from toy import FixedFaces, textured, toy_network

from deepfake.band import Band
from deepfake.detector import Detector
from deepfake.errors import InputError
from deepfake.quality import QualityGates
from deepfake.verdict import judge, merged_reasons

BAND = Band(real_below=0.2, fake_from=0.6)
# The tests' own gates (the measured defaults may move when they are re-measured).
GATES = QualityGates(min_side_px=48, min_sharpness=5, min_brightness=40, max_yaw=1.5)
SMALL, LARGE = (8, 8, 30, 30), (100, 40, 120, 120)  # face boxes (x, y, w, h): 30 px is under the 48 px gate


def _detector(boxes, gates=None, band=None) -> Detector:
    net = toy_network()
    cfg = dataclasses.replace(net.config, band=band, threshold=band.fake_from if band else net.config.threshold,
                              gates=gates or GATES)
    return Detector(dataclasses.replace(net, config=cfg), FixedFaces(boxes), "toy", "test")


def test_judge_uses_only_faces_that_pass_the_gates():
    v = judge([0.1, 0.9], [(), ("blurred",)], BAND)
    assert (v.label, v.probability, v.reasons, v.passing) == ("REAL", 0.1, (), (True, False))
    v = judge([0.3, 0.9], [(), ("blurred",)], BAND)
    assert (v.label, v.probability) == ("UNCERTAIN", 0.3)
    v = judge([0.7, 0.95], [("profile",), ("too_dark", "face_too_small")], BAND)
    assert (v.label, v.probability, v.reasons) == ("UNCERTAIN", 0.95, ("face_too_small", "too_dark", "profile"))
    assert judge([], [], BAND).label == "NO_FACE"
    assert merged_reasons([("profile",), ("blurred", "profile")]) == ("blurred", "profile")


def test_a_face_below_the_size_gate_is_uncertain_with_its_reason_whatever_its_score():
    image = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    res = _detector([SMALL], band=BAND).analyze_image(image)  # a fine checkerboard: the toy scores it FAKE
    (face,) = res.faces
    assert face.quality["side_px"] == 30.0 and face.reasons == ("face_too_small",)
    assert face.label == "UNCERTAIN" and face.fake_probability >= BAND.fake_from  # a FAKE score, not a verdict
    assert res.label == "UNCERTAIN" and res.reasons == ("face_too_small",)
    assert any("quality gates" in w for w in res.warnings)
    # The same face, judged with a size gate it passes, is FAKE by the band.
    res = _detector([SMALL], band=BAND, gates=dataclasses.replace(GATES, min_side_px=20)) \
        .analyze_image(image)
    assert res.label == "FAKE" and res.reasons == () and res.faces[0].reasons == ()


def test_the_image_verdict_comes_from_the_faces_that_pass():
    image = textured(size=256, region=(0, 256, 0, 256), seed=1)
    image[:128, :128] = 128  # the small face's corner is flat: its score is low, the large face's high
    res = _detector([SMALL, LARGE], band=BAND).analyze_image(image)
    small, large = res.faces
    assert small.reasons == ("face_too_small", "blurred") and large.reasons == ()
    assert res.fake_probability == large.fake_probability and res.label == BAND.label(large.fake_probability)


def test_band_bounds_of_a_request_on_a_known_probability():
    image = textured(size=256, region=(0, 256, 0, 256), seed=2)
    det = _detector([LARGE], band=BAND)
    p = det.analyze_image(image).fake_probability
    assert 0.05 < p < 0.95
    assert det.analyze_image(image, threshold=p + 0.02, real_below=p + 0.01).label == "REAL"
    assert det.analyze_image(image, threshold=p + 0.01, real_below=p - 0.01).label == "UNCERTAIN"
    assert det.analyze_image(image, threshold=p, real_below=p - 0.01).label == "FAKE"  # FAKE from the bound
    low = det.analyze_image(image, threshold=0.1)  # a lone threshold under the REAL bound takes it along
    assert (low.threshold, low.real_below) == (0.1, 0.1)
    assert det.analyze_image(image).real_below == BAND.real_below
    with pytest.raises(InputError, match="must not be above"):
        det.analyze_image(image, threshold=0.3, real_below=0.5)


def test_a_config_without_a_band_keeps_the_single_cut():
    det = _detector([LARGE])
    res = det.analyze_image(textured(size=256, region=(0, 256, 0, 256), seed=2))
    assert res.real_below == res.threshold == det.config.threshold and res.label in ("FAKE", "REAL")


def test_video_score_leaves_out_frames_that_fail_a_gate(tmp_path):
    bright = textured(size=256, region=(0, 256, 0, 256), seed=3)
    dark = (bright * 0.1).astype(np.uint8)  # mean luma about 12: too dark
    frames = [bright, dark] * 4
    path = write_video(tmp_path / "half_dark.avi", frames, fourcc="MJPG")
    det = _detector([LARGE], band=BAND)
    vr = det.analyze_video(path, frames=8)
    assert [f.reasons for f in vr.frames] == [(), ("too_dark",)] * 4
    assert [f.label == "UNCERTAIN" for f in vr.frames][1::2] == [True] * 4
    assert (vr.frames_with_face, vr.frames_judged) == (8, 4)
    judged = [f.fake_probability for f in vr.frames if not f.reasons]
    assert vr.fake_probability == pytest.approx(np.mean(judged)) and vr.label == BAND.label(vr.fake_probability)
    assert vr.reasons == () and any("failed a quality gate (too_dark)" in w for w in vr.warnings)
    # Left-out frames have no importance: they are not part of the score.
    assert all(f.importance_leave_one_out is None for f in vr.frames[1::2])


def test_a_video_with_no_frame_passing_is_uncertain(tmp_path):
    dark = (textured(size=256, region=(0, 256, 0, 256), seed=3) * 0.1).astype(np.uint8)
    path = write_video(tmp_path / "dark.avi", [dark] * 4, fourcc="MJPG")
    vr = _detector([LARGE], band=BAND).analyze_video(path, frames=4)
    assert (vr.label, vr.frames_judged, vr.reasons) == ("UNCERTAIN", 0, ("too_dark",))
    assert vr.fake_probability is not None  # shown, not judged


def test_evaluate_scores_degraded_videos_by_the_detectors_video_rule(tmp_path):
    """evaluate re-scores a video's kept frames under each degradation: its video row follows analyze_video's
    rule (only frames that pass the gates; UNCERTAIN with the reasons when none does)."""
    from deepfake.train.data import Item
    from deepfake.train.evaluate import score_items

    bright = textured(size=256, region=(0, 256, 0, 256), seed=3)
    dark = (bright * 0.1).astype(np.uint8)
    det = _detector([LARGE], band=BAND)
    mixed = Item(write_video(tmp_path / "mixed.avi", [bright, dark] * 2, fourcc="MJPG"), 1, "v", "g1", "video")
    all_dark = Item(write_video(tmp_path / "dark.avi", [dark] * 4, fourcc="MJPG"), 0, "v", "g2", "video")
    rows = score_items(det, [mixed, all_dark], 4, BAND.fake_from, conditions=("clean", "jpeg50"), log=None)
    video = {(r["path"], r["condition"]): r for r in rows if r["level"] == "video"}
    for c in ("clean", "jpeg50"):
        m, d = video[(str(mixed.path), c)], video[(str(all_dark.path), c)]
        frames = [r for r in rows if r["level"] == "frame" and r["path"] == str(mixed.path) and r["condition"] == c]
        assert [r["gated"] for r in frames] == [False, True, False, True]
        assert m["score"] == pytest.approx(np.mean([r["score"] for r in frames if not r["gated"]]))
        assert (m["verdict"], m["gated"]) == (BAND.label(m["score"]), False)
        assert (d["verdict"], d["gated"]) == ("UNCERTAIN", True) and d["score"] is not None
