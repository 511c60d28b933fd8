"""Video scoring: aggregation, exact frame importance, and a video whose known frames drive the verdict."""
import cv2
import numpy as np
import pytest

from deepfake import video
from deepfake.crop import crop_face
from deepfake.faces import Face
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


def test_importance_leaves_frames_without_a_face_out():
    frame_p = [0.9, None, 0.3, 0.6, None]
    for method in video.AGGREGATIONS:
        video_p, loo, blank = video.importance(frame_p, method, 0.2)
        scored = np.array([0.9, 0.3, 0.6])
        assert video_p == video.aggregate(scored, method)
        np.testing.assert_array_equal(loo[[0, 2, 3]], video.leave_one_out(scored, method))
        np.testing.assert_array_equal(blank[[0, 2, 3]], video.blank_frame(scored, 0.2, method))
        assert np.isnan(loo[[1, 4]]).all() and np.isnan(blank[[1, 4]]).all()
    assert video.importance([0.7, 0.1], "mean", 0.2)[0] == pytest.approx(0.4)
    video_p, loo, blank = video.importance([None, None], "mean", None)
    assert video_p is None and np.isnan(loo).all() and np.isnan(blank).all() and len(loo) == 2


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


def test_video_analysis_holds_one_full_frame_at_a_time_and_keeps_bounded_previews(tmp_path, astronaut,
                                                                                     monkeypatch):
    """128 sampled 4K frames are 3.4 GB: frames are scored as they are decoded and only a preview (and the
    face crops, until classified) outlives each one (issue 11, 2.10)."""
    import dataclasses
    import weakref

    from deepfake import media

    det = toy_detector(size=64)
    # A fixed face box (this test is about what is kept, not about finding faces: Haar is slow at 960x540).
    monkeypatch.setattr(det.face_detector, "detect", lambda rgb: [Face((320, 60, 160, 160), 1.0)])
    base = cv2.resize(astronaut, (540, 540), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(40):
        f = np.full((540, 960, 3), 70, np.uint8)
        f[:, 100 + 5 * i:640 + 5 * i] = base
        frames.append(f)
    path = write_video(tmp_path / "hd.mp4", frames, fps=10)
    decoded, most_alive = [], []
    real_read = media._read

    def tracking_read(*args):
        frame = real_read(*args)
        if frame is not None:
            most_alive.append(sum(r() is not None for r in decoded))  # full frames still held by anyone
            decoded.append(weakref.ref(frame.rgb))
        return frame

    monkeypatch.setattr(media, "_read", tracking_read)
    res = det.analyze_video(path, frames=40)
    assert len(decoded) == 40 and max(most_alive) <= 1  # the previous frame at most (the loop variable)
    assert res.frames_with_face == 40 and res.frame_images == ()
    assert all(f.preview.shape == (270, 480, 3) and f.preview.dtype == np.uint8 for f in res.frames)

    def arrays(obj):
        if isinstance(obj, np.ndarray):
            yield obj
        elif dataclasses.is_dataclass(obj):
            for fld in dataclasses.fields(obj):
                yield from arrays(getattr(obj, fld.name))
        elif isinstance(obj, (tuple, list)):
            for v in obj:
                yield from arrays(v)

    assert max(a.nbytes for a in arrays(res)) <= media.PREVIEW_MAX_SIDE ** 2 * 3
    # Opt-in full frames (offline evaluation), the same scores: the crops were classified in chunks of 32,
    # which must give what one call on all 40 crops gives.
    monkeypatch.setattr(media, "_read", real_read)
    full = det.analyze_video(path, frames=40, keep_frames=True)
    assert [rgb.shape for rgb in full.frame_images] == [(540, 960, 3)] * 40
    crops = [crop_face(rgb, f.faces[0].box, det.config.crop)[0] for f, rgb in zip(res.frames, full.frame_images)]
    assert [f.fake_probability for f in res.frames] == list(det.network.predict(crops))
    for f, rgb in zip(res.frames, full.frame_images):
        np.testing.assert_array_equal(f.preview, media.preview(rgb))
