"""deepfake.render: pictures show what the results say (boxes, colours, probabilities, grids, plots)."""
import numpy as np
import pytest

from deepfake import render
from deepfake.band import Band
from deepfake.verdict import merged_reasons
from deepfake.results import (FAKE, NO_FACE, REAL, UNCERTAIN, CamResult, FaceCam, FaceResult, FrameResult,
                              ImageResult, OcclusionResult, VideoResult)

AMBER = (217, 119, 6)
QUALITY = {"side_px": 80.0, "sharpness": 2.5, "brightness": 120.0, "yaw": 0.1}


def _label(p, threshold, real_below=None, reasons=()):
    if p is None:
        return NO_FACE
    return UNCERTAIN if reasons else Band(threshold if real_below is None else real_below, threshold).label(p)


def image_result(faces, threshold=0.5, shape=(200, 300), real_below=None):
    """An ImageResult by the verdict rule: judged on the faces that pass the gates, UNCERTAIN when none does."""
    passing = [f for f in faces if not f.reasons]
    p = max((f.fake_probability for f in passing or faces), default=None)
    reasons = merged_reasons(f.reasons for f in faces) if faces and not passing else ()
    return ImageResult(_label(p, threshold, real_below, reasons), p, threshold, tuple(faces), False, "haar",
                       "local:test", "sha256:0", shape[1], shape[0], {}, real_below=real_below, reasons=reasons)


def face(box, p, threshold=0.5, real_below=None, reasons=(), quality=None):
    x, y, w, h = box
    return FaceResult(box, (x - 10, y - 10, x + w + 10, y + h + 10), 0.9, p,
                      _label(p, threshold, real_below, reasons), dict(quality or QUALITY), tuple(reasons))


def video_result(probs, threshold=0.5, real_below=None, gated=()):
    """Frames at 0.4 s steps; frames whose index (in probs) is in `gated` failed the 'blurred' gate and are left
    out of the mean, as the detector does."""
    frames = []
    scored = [p for i, p in enumerate(probs) if p is not None and i not in gated]
    mean = float(np.mean(scored)) if scored else None
    for i, p in enumerate(probs):
        reasons = ("blurred",) if i in gated else ()
        used = p is not None and not reasons
        loo = mean - float(np.mean([q for q in scored if q != p] or [mean])) if used else None
        frames.append(FrameResult(i * 10, i * 0.4, p, (), loo, (p - 0.5) / len(scored) if used else None,
                                  label=_label(p, threshold, real_below, reasons), reasons=reasons))
    return VideoResult(_label(mean, threshold, real_below), mean, threshold, "mean", tuple(frames),
                       len(probs), sum(p is not None for p in probs), 0.5, 25.0, 4.0, 100, 64, 64, "haar",
                       "local:test", "sha256:0", {}, real_below=real_below, frames_judged=len(scored))


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
            if line.get_label().startswith("threshold")] == ["threshold 0.558603 (REAL below, FAKE from)"]


# ---------------------------------------------------------------------------------------------- the band
def test_an_uncertain_gated_face_is_boxed_in_amber_and_labelled_with_its_reason():
    rgb = np.full((200, 300, 3), 128, np.uint8)
    res = image_result([face((20, 60, 80, 80), 0.9, reasons=("blurred",)), face((180, 60, 80, 80), 0.1)])
    assert res.faces[0].label == UNCERTAIN and res.label == REAL  # judged on the face that passes
    assert render.COLORS[UNCERTAIN] == AMBER
    out = render.draw_faces(rgb, res)
    assert tuple(out[100, 20]) == AMBER and tuple(out[100, 100]) == AMBER  # left and right edges of the box
    assert tuple(out[100, 180]) == render.COLORS[REAL]
    assert tuple(out[100, 60]) == (128, 128, 128)  # inside the box: untouched
    # The label box above the face is amber and wider than "UNCERTAIN" alone: it carries the reason too.
    amber_cols = np.flatnonzero(np.all(out[40:60] == AMBER, axis=-1).any(axis=0))
    import cv2
    fs = 0.55 * render._scale(out)
    th = max(1, int(round(1.5 * render._scale(out))))
    w_reason = cv2.getTextSize("UNCERTAIN: blurred", cv2.FONT_HERSHEY_SIMPLEX, fs, th)[0][0]
    w_plain = cv2.getTextSize("UNCERTAIN", cv2.FONT_HERSHEY_SIMPLEX, fs, th)[0][0]
    assert amber_cols.max() - amber_cols.min() + 1 >= w_reason > w_plain


def test_a_face_between_the_bounds_is_amber_with_its_probability():
    rgb = np.full((200, 300, 3), 128, np.uint8)
    res = image_result([face((20, 60, 80, 80), 0.4, threshold=0.6, real_below=0.2)], threshold=0.6, real_below=0.2)
    assert res.label == UNCERTAIN and res.faces[0].reasons == ()
    assert tuple(render.draw_faces(rgb, res)[100, 20]) == AMBER
    assert render._face_text(res.faces[0]) == "UNCERTAIN 0.400"
    assert render._face_text(face((0, 0, 9, 9), 0.4, reasons=("face_too_small", "too_dark"))) == \
        "UNCERTAIN: too small, too dark"


def test_cam_overlay_colours_each_face_by_its_own_label_band_and_gates_included():
    rgb = np.full((240, 320, 3), 200, np.uint8)
    res = image_result([face((110, 90, 60, 60), 0.4, threshold=0.6, real_below=0.2)], threshold=0.6,
                       real_below=0.2, shape=(240, 320))
    cam = CamResult("gradcam", "fake", res, (FaceCam((110, 90, 60, 60), (100, 80, 180, 160), 0.4, (179, 120),
                                                     np.zeros((8, 8))),), np.zeros((240, 320), np.float32))
    out = render.cam_overlay(rgb, cam)
    assert tuple(out[120, 110]) == AMBER  # left edge of the face box
    assert (np.all(out[60:80, 100:180] == AMBER, axis=-1)).sum() > 50  # its label, above the crop
    assert (np.all(out == render.COLORS[FAKE], axis=-1)).sum() == 0  # 0.4 >= 0.5 would have been FAKE before


@pytest.mark.parametrize("real,fake,text", [
    (0.2, 0.56, "REAL below 0.2, UNCERTAIN 0.2-0.56, FAKE from 0.56"),
    (0.123456, 0.558603, "REAL below 0.123456, UNCERTAIN 0.123456-0.558603, FAKE from 0.558603"),
    (0.1234567, 0.5, "REAL below 0.1234567, UNCERTAIN 0.1234567-0.5, FAKE from 0.5"),
    (0.558603, 0.558603, "REAL below 0.558603, FAKE from 0.558603"),
    (None, 0.5, "REAL below 0.5, FAKE from 0.5"),
    (0.0, 1.0, "REAL below 0, UNCERTAIN 0-1, FAKE from 1"),
])
def test_band_text_states_the_exact_bounds(real, fake, text):
    assert render.band_text(real, fake) == text


def test_reasons_text_is_short():
    assert render.reasons_text(("face_too_small", "blurred", "too_dark", "profile")) == \
        "too small, blurred, too dark, profile"
    assert render.reasons_text(()) == ""


def _collections(ax):
    return {c.get_label(): c for c in ax.collections}


def test_timeline_draws_the_band_and_colours_frames_by_their_labels_with_gated_frames_hollow():
    # frame 0 REAL, 1 UNCERTAIN (band), 2 FAKE, 3 gated (blurred, p 0.9: not in the score), 4 no face
    vr = video_result([0.1, 0.4, 0.8, 0.9, None], threshold=0.6, real_below=0.2, gated=(3,))
    assert [f.label for f in vr.frames] == [REAL, UNCERTAIN, FAKE, UNCERTAIN, NO_FACE]
    ax = render.timeline_figure(vr).axes[0]
    lines = {line.get_label(): line.get_ydata()[0] for line in ax.get_lines()}
    assert lines["threshold 0.6 (FAKE from)"] == 0.6 and lines["REAL below 0.2"] == 0.2
    by = _collections(ax)
    gated_label = "quality gate failed (blurred):\nUNCERTAIN, not in the video score"
    assert set(by) == {"REAL frame", "UNCERTAIN frame", "FAKE frame", gated_label, "no face"}
    pts = {k: np.asarray(c.get_offsets()).tolist() for k, c in by.items()}
    assert pts["REAL frame"] == [[0.0, 0.1]] and pts["UNCERTAIN frame"] == [[0.4, 0.4]]
    assert pts["FAKE frame"] == [[0.8, 0.8]]
    assert pts[gated_label] == [[pytest.approx(1.2), 0.9]] and pts["no face"] == [[1.6, 0.0]]
    hexrgb = {k: tuple(np.round(np.asarray(c.get_facecolor())[0, :3] * 255).astype(int)) for k, c in by.items()
              if k != gated_label}
    assert hexrgb["UNCERTAIN frame"] == AMBER and hexrgb["FAKE frame"] == render.COLORS[FAKE]
    assert hexrgb["REAL frame"] == render.COLORS[REAL]
    hollow = by[gated_label]
    assert len(hollow.get_facecolor()) == 0 or hollow.get_facecolor()[0][3] == 0  # no fill
    assert tuple(np.round(hollow.get_edgecolor()[0][:3] * 255).astype(int)) == AMBER
    assert gated_label in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "4/5 frames with a face, 3 passed the quality gates" in ax.get_title()


def test_timeline_says_when_no_frame_passed_the_gates():
    vr = video_result([0.3, 0.9], gated=(0, 1))
    by = _collections(render.timeline_figure(vr).axes[0])
    assert set(by) == {"quality gate failed (blurred):\nUNCERTAIN, no frame passed: video UNCERTAIN"}


def test_importance_figure_marks_gated_frames_apart_from_frames_without_a_face():
    vr = video_result([0.1, None, 0.9, 0.4], gated=(2,))
    ax = render.importance_figure(vr).axes[0]
    by = _collections(ax)
    assert np.asarray(by["no face"].get_offsets())[:, 0].tolist() == [1.0]
    gated = by["quality gate failed (blurred):\nUNCERTAIN, not in the video score"]
    assert np.asarray(gated.get_offsets())[:, 0].tolist() == [2.0]
    assert len([p for p in ax.patches if hasattr(p, "get_height")]) == 2  # bars of frames 0 and 3 only


def test_frame_captions_say_the_label_and_the_failed_gates():
    vr = video_result([0.9, 0.4, None], threshold=0.6, real_below=0.2, gated=(1,))
    assert [render.frame_caption(f) for f in vr.frames] == [
        "t=0.00s  frame 0: p(fake)=0.900 FAKE", "t=0.40s  frame 10: p(fake)=0.400 UNCERTAIN: blurred",
        "t=0.80s  frame 20: no face"]


# ---------------------------------------------------------------------------------------------- issue 14: networks
SWAP, GEN = Band(0.3, 0.6), Band(0.2, 0.9)  # the face-swap and the fully-generated network's own bands


def scores_of(p_swap, p_gen, reasons=()):
    """Both networks' scores of one face or frame and their combination, as the detector builds them."""
    from deepfake.results import NetworkScore
    from deepfake.verdict import combine
    labels = [_label(p, b.fake_from, b.real_below, reasons) for p, b in ((p_swap, SWAP), (p_gen, GEN))]
    scores = (NetworkScore("face_swap", "face_swap", p_swap, labels[0], SWAP.fake_from, SWAP.real_below),
              NetworkScore("generated", "generated", p_gen, labels[1], GEN.fake_from, GEN.real_below))
    label, kind = combine(labels, [p_swap, p_gen], [SWAP, GEN], ["face_swap", "generated"])
    return scores, label, kind


def two_network_face(box, p_swap, p_gen, reasons=()):
    import dataclasses
    scores, label, kind = scores_of(p_swap, p_gen, reasons)
    return dataclasses.replace(face(box, p_swap, reasons=reasons), label=label, scores=scores, manipulation=kind)


@pytest.mark.parametrize("p_swap,p_gen,text", [
    (0.4, 0.95, "FAKE 0.950 fully generated"),  # only the generated network says FAKE: its probability and kind
    (0.84, 0.95, "FAKE 0.840 face swap"),  # both FAKE: 0.84 is 60% into swap's FAKE range, 0.95 50% into gen's
    (0.1, 0.5, "UNCERTAIN 0.500 (fully generated network)"),  # the generated network is the unsure one
    (0.15, 0.05, "REAL 0.150 (face swap network)"),  # both REAL: the one nearer its FAKE bound
])
def test_a_face_box_names_the_kind_of_fake_and_the_network_behind_its_label(p_swap, p_gen, text):
    assert render._face_text(two_network_face((0, 0, 50, 50), p_swap, p_gen)) == text


def test_a_one_network_fake_box_says_its_kind_and_a_gated_face_its_gates():
    import dataclasses
    from deepfake.results import NetworkScore
    one = dataclasses.replace(face((0, 0, 50, 50), 0.9), manipulation="face_swap",
                              scores=(NetworkScore("face_swap", "face_swap", 0.9, FAKE, 0.5, 0.5),))
    assert render._face_text(one) == "FAKE 0.900 face swap"
    assert render._face_text(face((0, 0, 50, 50), 0.9)) == "FAKE 0.900"  # a result without a kind: as before
    assert render._face_text(two_network_face((0, 0, 50, 50), 0.4, 0.95, ("blurred",))) == "UNCERTAIN: blurred"


def test_the_fake_box_label_is_wide_enough_for_the_kind():
    import cv2
    rgb = np.full((200, 300, 3), 128, np.uint8)
    f = two_network_face((20, 80, 80, 80), 0.4, 0.95)
    out = render.draw_faces(rgb, image_result([f]))
    assert tuple(out[120, 20]) == render.COLORS[FAKE]  # the box: red, by the combined label
    red_cols = np.flatnonzero(np.all(out[55:80] == render.COLORS[FAKE], axis=-1).any(axis=0))
    fs, th = 0.55 * render._scale(out), max(1, int(round(1.5 * render._scale(out))))
    width = cv2.getTextSize("FAKE 0.950 fully generated", cv2.FONT_HERSHEY_SIMPLEX, fs, th)[0][0]
    assert red_cols.max() - red_cols.min() + 1 >= width > cv2.getTextSize("FAKE 0.950", cv2.FONT_HERSHEY_SIMPLEX,
                                                                          fs, th)[0][0]


def test_lead_score_is_the_network_behind_the_combined_label():
    assert render.lead_score(two_network_face((0, 0, 9, 9), 0.4, 0.95)).network == "generated"
    assert render.lead_score(two_network_face((0, 0, 9, 9), 0.84, 0.95)).network == "face_swap"
    assert render.lead_score(two_network_face((0, 0, 9, 9), 0.15, 0.05)).network == "face_swap"
    assert render.lead_score(face((0, 0, 9, 9), 0.4)) is None  # no per-network scores
    assert [render.kind_text(k) for k in ("face_swap", "generated")] == ["face swap", "fully generated"]


def test_the_cam_label_names_the_kind_and_the_network_the_map_explains():
    f = two_network_face((0, 0, 9, 9), 0.4, 0.95)
    assert render._cam_text(FAKE, f, 0.4) == "FAKE fully generated, face swap p(fake)=0.400"
    assert render._cam_text(REAL, two_network_face((0, 0, 9, 9), 0.15, 0.05), 0.15) == "REAL, face swap p(fake)=0.150"
    assert render._cam_text(FAKE, face((0, 0, 9, 9), 0.8), 0.8) == "FAKE p(fake)=0.800"  # one network: as before


def test_frame_captions_give_each_networks_probability_and_the_kind_of_a_fake_frame():
    import dataclasses
    vr = video_result([0.4, 0.1, 0.3])
    scores, label, kind = scores_of(0.4, 0.95)
    fake = dataclasses.replace(vr.frames[0], scores=scores, label=label, manipulation=kind)
    scores, label, kind = scores_of(0.1, 0.05)
    real = dataclasses.replace(vr.frames[1], scores=scores, label=label, manipulation=kind)
    scores, _, _ = scores_of(0.3, 0.5, ("blurred",))
    gated = dataclasses.replace(vr.frames[2], scores=scores, label=UNCERTAIN, reasons=("blurred",))
    assert [render.frame_caption(f) for f in (fake, real, gated)] == [
        "t=0.00s  frame 0: p(fake) face_swap 0.400, generated 0.950 - FAKE, likely fully generated",
        "t=0.40s  frame 10: p(fake) face_swap 0.100, generated 0.050 - REAL",
        "t=0.80s  frame 20: p(fake) face_swap 0.300, generated 0.500 - UNCERTAIN: blurred"]
    one = dataclasses.replace(video_result([0.9]).frames[0], manipulation="face_swap")
    assert render.frame_caption(one) == "t=0.00s  frame 0: p(fake)=0.900 FAKE, likely face swap"


def test_the_timeline_title_says_the_kind_and_whose_probability_it_plots():
    import dataclasses
    scores, label, kind = scores_of(0.4, 0.95)
    vr = dataclasses.replace(video_result([0.4]), label=label, manipulation=kind, scores=scores)
    ax = render.timeline_figure(vr).axes[0]
    assert ax.get_title().startswith("Video: FAKE, likely fully generated, face swap p(fake) = 0.400")
    assert ax.get_ylabel() == "face swap fake probability"
    assert render.timeline_figure(video_result([0.4])).axes[0].get_title().startswith("Video: REAL, p(fake) = 0.400")
