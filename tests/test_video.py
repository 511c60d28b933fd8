"""Video scoring: aggregation, exact frame importance, and a video whose known frames drive the verdict."""
import cv2
import numpy as np
import pytest

from deepfake import video
from deepfake.media import sample_indices
from synth import write_video
from toy import toy_detector


def test_leave_one_out_is_exact():
    rng = np.random.default_rng(0)
    for method in video.AGGREGATIONS:
        for p in (rng.random(20), np.r_[np.full(14, 0.95), rng.random(6) * 0.3], np.full(30, 0.05)):
            full = video.aggregate(p, method)
            brute = [full - video.aggregate(np.delete(p, i), method) for i in range(len(p))]
            np.testing.assert_allclose(video.leave_one_out(p, method), brute, atol=1e-12)
            blank = [full - video.aggregate(np.r_[p[:i], 0.3, p[i + 1:]], method) for i in range(len(p))]
            np.testing.assert_allclose(video.blank_frame(p, 0.3, method), blank, atol=1e-12)


def test_confident_strategy_follows_the_dfdc_rule():
    p = np.r_[np.full(13, 0.9), np.full(17, 0.4)]  # 13 > 30/2.5 and > 11 confident fakes
    assert video.aggregate(p, "confident") == pytest.approx(0.9)
    p = np.r_[np.full(11, 0.9), np.full(4, 0.4)]  # only 11 confident: plain mean
    assert video.aggregate(p, "confident") == pytest.approx(p.mean())
    p = np.r_[np.full(28, 0.1), np.full(2, 0.9)]  # > 90% confidently real
    assert video.aggregate(p, "confident") == pytest.approx(0.1)
    assert np.isnan(video.aggregate(np.array([]), "mean"))
    with pytest.raises(ValueError):
        video.aggregate(np.ones(3), "median")


def _face_video(tmp_path, astronaut, manipulated, n=40, name="v.mp4"):
    """n frames of the astronaut drifting slowly; frames in `manipulated` get noise texture on the face."""
    rng = np.random.default_rng(1)
    base = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        m = np.float32([[1, 0, (i % 5) - 2], [0, 1, (i % 3) - 1]])
        f = cv2.warpAffine(base, m, (320, 320), borderMode=cv2.BORDER_REFLECT)
        if i in manipulated:
            noise = rng.normal(0, 45, (70, 60, 1))
            f[40:110, 100:160] = np.clip(f[40:110, 100:160] + noise, 0, 255).astype(np.uint8)
        frames.append(f)
    return write_video(tmp_path / name, frames, fps=10)


@pytest.mark.parametrize("manipulated", [{10, 11, 12, 13}, {25, 26, 27, 28}])
@pytest.mark.parametrize("aggregation", video.AGGREGATIONS)
def test_known_frames_drive_the_score_and_rank_most_important(tmp_path, astronaut, manipulated, aggregation):
    det = toy_detector(size=64)
    path = _face_video(tmp_path, astronaut, manipulated)
    res = det.analyze_video(path, frames=40, aggregation=aggregation)
    assert res.frames_sampled == 40 and res.frames_with_face == 40
    assert res.blank_frame_probability is not None
    by_p = sorted(res.frames, key=lambda f: f.fake_probability, reverse=True)
    assert {f.index for f in by_p[:4]} == manipulated
    for key in ("importance_leave_one_out", "importance_blank"):
        ranked = sorted(res.frames, key=lambda f: getattr(f, key), reverse=True)
        assert {f.index for f in ranked[:4]} == manipulated, key
    # Leave-one-out is exact: recompute the video score without the top frame.
    scores = np.array([f.fake_probability for f in res.frames])
    top = int(np.argmax([f.importance_leave_one_out for f in res.frames]))
    assert res.frames[top].importance_leave_one_out == pytest.approx(
        res.fake_probability - video.aggregate(np.delete(scores, top), aggregation), abs=1e-6)
    d = res.to_dict()
    assert d["kind"] == "video" and len(d["frames"]) == 40 and "frame_images" not in d


def test_frames_without_faces_are_excluded_and_reported(tmp_path, astronaut):
    det = toy_detector(size=64)
    base = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    frames = [base if i % 2 else np.full_like(base, 90) for i in range(20)]
    res = det.analyze_video(write_video(tmp_path / "half.mp4", frames, fps=10), frames=20)
    assert res.frames_with_face == 10
    empty = [f for f in res.frames if f.fake_probability is None]
    assert len(empty) == 10 and all(f.index % 2 == 0 and not f.faces for f in empty)
    assert all(f.importance_leave_one_out is None for f in empty)
    assert res.fake_probability == pytest.approx(np.mean([f.fake_probability for f in res.frames if f.faces]))
    assert any("no face" in w for w in res.warnings)


def test_video_without_faces_is_no_face(tmp_path):
    det = toy_detector(size=64)
    frames = [np.full((120, 160, 3), 40 + i, np.uint8) for i in range(12)]
    res = det.analyze_video(write_video(tmp_path / "blank.mp4", frames), frames=8)
    assert res.label == "NO_FACE" and res.fake_probability is None and res.frames_with_face == 0
    assert [f.index for f in res.frames] == sample_indices(12, 8)
