"""deepfake.render: pictures show what the results say (boxes, colours, probabilities, grids, plots)."""
import numpy as np
import pytest

from deepfake import render
from deepfake.results import (FAKE, NO_FACE, REAL, CamResult, FaceCam, FaceResult, FrameResult, ImageResult,
                              OcclusionResult, VideoResult)


def image_result(faces, threshold=0.5, shape=(200, 300)):
    p = max((f.fake_probability for f in faces), default=None)
    label = NO_FACE if p is None else (FAKE if p >= threshold else REAL)
    return ImageResult(label, p, threshold, tuple(faces), False, "haar", "local:test", "sha256:0", shape[1],
                       shape[0], {})


def face(box, p, threshold=0.5):
    x, y, w, h = box
    return FaceResult(box, (x - 10, y - 10, x + w + 10, y + h + 10), 0.9, p, FAKE if p >= threshold else REAL)


def video_result(probs, threshold=0.5):
    frames = []
    scored = [p for p in probs if p is not None]
    mean = float(np.mean(scored)) if scored else None
    for i, p in enumerate(probs):
        loo = None if p is None else mean - float(np.mean([q for j, q in enumerate(scored) if j != i] or [mean]))
        frames.append(FrameResult(i * 10, i * 0.4, p, (), loo, None if p is None else (p - 0.5) / len(scored)))
    return VideoResult(FAKE if (mean or 0) >= threshold else REAL, mean, threshold, "mean", tuple(frames),
                       len(probs), len(scored), 0.5, 25.0, 4.0, 100, 64, 64, "haar", "local:test", "sha256:0", {})


def test_draw_faces_colours_each_box_by_its_verdict_and_leaves_the_input_alone():
    rgb = np.full((200, 300, 3), 128, np.uint8)
    res = image_result([face((20, 60, 80, 80), 0.9), face((180, 60, 80, 80), 0.1)])
    out = render.draw_faces(rgb, res)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (rgb == 128).all()
    assert tuple(out[100, 20]) == render.COLORS[FAKE]  # left edge of the FAKE box
    assert tuple(out[100, 180]) == render.COLORS[REAL]  # left edge of the REAL box
    assert tuple(out[190, 150]) == (128, 128, 128)  # nothing drawn away from the boxes


def test_draw_faces_without_a_face_shows_a_banner_and_no_box():
    rgb = np.full((200, 300, 3), 128, np.uint8)
    out = render.draw_faces(rgb, image_result([]))
    assert tuple(out[2, 2]) == render.COLORS[NO_FACE]
    assert (out[120:] == 128).all()


def test_cam_overlay_colours_only_the_face_crop_and_writes_the_probability():
    rgb = np.full((240, 320, 3), 200, np.uint8)
    res = image_result([face((110, 90, 60, 60), 0.8)], shape=(240, 320))
    heat = np.zeros((240, 320), np.float32)
    heat[80:160, 100:180] = np.linspace(0, 1, 80)[None, :]
    cam = CamResult("gradcam", "fake", res, (FaceCam((110, 90, 60, 60), (100, 80, 180, 160), 0.8, (179, 120),
                                                     np.zeros((8, 8))),), heat)
    out = render.cam_overlay(rgb, cam)
    assert out.shape == rgb.shape
    assert (out[200:, :80] == 200).all() and (out[:40, 250:] == 200).all()  # outside the crop: untouched
    inside = out[100:140, 120:160].astype(int)
    assert np.abs(inside - 200).max() > 40  # the heatmap shows inside the crop
    # the probability label sits on a box of the verdict's colour right above the crop
    assert (np.all(out[60:80, 100:180] == render.COLORS[FAKE], axis=-1)).sum() > 50


def test_cam_overlay_without_faces_is_a_banner():
    rgb = np.full((100, 200, 3), 50, np.uint8)
    cam = CamResult("gradcam", "fake", image_result([], shape=(100, 200)), (), np.zeros((100, 200), np.float32))
    out = render.cam_overlay(rgb, cam)
    assert tuple(out[1, 1]) == render.COLORS[NO_FACE]


def occlusion(changes):
    changes = np.asarray(changes, np.float64)
    crop = np.full((64, 64, 3), 128, np.uint8)
    return OcclusionResult(changes.shape[0], "mean", 0.7, changes, (0, 0, 64, 64), image_result([]), crop)


def test_occlusion_figure_has_a_symmetric_diverging_colour_bar_labelled_in_probability_change():
    changes = np.zeros((4, 4))
    changes[0, 0], changes[3, 3] = 0.3, -0.1
    fig = render.occlusion_figure(occlusion(changes))
    ax, cax = fig.axes
    assert "probability" in cax.get_ylabel()
    grid_img = ax.images[1]
    assert grid_img.get_array().shape == (4, 4)
    assert grid_img.norm.vmin == pytest.approx(-0.3) and grid_img.norm.vmax == pytest.approx(0.3)
    rgb = render.occlusion_overlay(occlusion(changes))
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
    r, b = rgb[..., 0].astype(int), rgb[..., 2].astype(int)
    grey_crop = (np.abs(r - b) < 4)
    assert ((r - b) > 30).sum() > 1000  # the +0.3 cell (and the bar's top) are red
    assert ((b - r) > 15).sum() > 1000  # the -0.1 cell (and the bar's bottom) are blue
    assert grey_crop.sum() > 1000  # cells with no change leave the crop's own colours


def test_timeline_figure_plots_each_frame_with_threshold_and_verdict_colours():
    probs = [0.1, 0.2, None, 0.9, 0.95, 0.3]
    fig = render.timeline_figure(video_result(probs, threshold=0.5))
    ax = fig.axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    fake_pts = by_label["FAKE frame"].get_offsets()
    real_pts = by_label["REAL frame"].get_offsets()
    assert sorted(np.asarray(fake_pts)[:, 1].tolist()) == [0.9, 0.95]
    assert sorted(np.asarray(real_pts)[:, 1].tolist()) == [0.1, 0.2, 0.3]
    assert np.asarray(by_label["no face"].get_offsets())[:, 0].tolist() == [pytest.approx(0.8)]
    thr = [line for line in ax.get_lines() if line.get_label().startswith("threshold")]
    assert thr and thr[0].get_ydata()[0] == 0.5
    assert render.figure_to_rgb(fig).shape[2] == 3


@pytest.mark.parametrize("method,attr", [("leave_one_out", "importance_leave_one_out"),
                                         ("blank", "importance_blank")])
def test_importance_figure_bars_are_the_frame_importances(method, attr):
    vr = video_result([0.1, None, 0.9, 0.4])
    ax = render.importance_figure(vr, method).axes[0]
    heights = [p.get_height() for p in ax.patches if hasattr(p, "get_height")]
    want = [getattr(f, attr) for f in vr.frames if getattr(f, attr) is not None]
    assert heights == pytest.approx(want)
    with pytest.raises(ValueError):
        render.importance_figure(vr, "nope")


def test_frame_gallery_captions_and_shrinks_the_previews_with_their_boxes_scaled():
    """A 1000x800 video kept as 500x400 previews: the face box (full-frame pixels) is drawn at half size on
    the preview, and the thumbnails are shrunk to max_side."""
    import dataclasses
    vr = dataclasses.replace(video_result([0.9, None]), width=1000, height=800)
    grey = np.full((400, 500, 3), 128, np.uint8)
    frames = (dataclasses.replace(vr.frames[0], faces=(face((200, 300, 200, 200), 0.9),), preview=grey),
              dataclasses.replace(vr.frames[1], preview=grey))
    vr = dataclasses.replace(vr, frames=frames)
    gal = render.frame_gallery(vr, max_side=250)
    assert [img.shape for img, _ in gal] == [(200, 250, 3)] * 2
    assert "p(fake)=0.900" in gal[0][1] and "no face" in gal[1][1]
    thumb = render.frame_gallery(vr, max_side=500)[0][0]
    assert tuple(thumb[220, 100]) == render.COLORS[FAKE]  # left edge of the box, at (100, 150, 100, 100)
    assert tuple(thumb[220, 300]) == (128, 128, 128)  # where the unscaled box would be: nothing drawn
    assert (grey == 128).all()  # the preview itself is left alone


def test_png_bytes_of_arrays_and_figures():
    assert render.png_bytes(np.zeros((4, 4, 3), np.uint8)).startswith(b"\x89PNG")
    assert render.png_bytes(render.timeline_figure(video_result([0.5]))).startswith(b"\x89PNG")


def test_renders_a_real_detector_result(astronaut, random_model_dir):
    from app_support import pick_detector
    det, _ = pick_detector(random_model_dir)
    res = det.analyze_image(astronaut)
    assert res.faces, "the astronaut's face must be found"
    out = render.draw_faces(astronaut, res)
    x, y, w, h = res.faces[0].box
    assert tuple(out[y + h // 2, x]) == render.COLORS[res.faces[0].label]


@pytest.mark.parametrize("value,text", [(0.558603, "0.558603"), (0.5, "0.5"), (0.0, "0"), (1.0, "1"),
                                        (0.000001, "0.000001"), (0.1234567, "0.1234567"), (0.25, "0.25")])
def test_threshold_text_is_the_applied_value_itself(value, text):
    assert render.threshold_text(value) == text and float(text) == value


def test_the_timeline_states_the_exact_threshold():
    fig = render.timeline_figure(video_result([0.2, 0.7], threshold=0.558603))
    assert [line.get_label() for line in fig.axes[0].get_lines()
            if line.get_label().startswith("threshold")] == ["threshold 0.558603"]
