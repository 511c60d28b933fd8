"""The face-crop recipe, face filtering, the bundled YuNet file and detection on large frames."""
import hashlib

import cv2
import numpy as np
import pytest

from deepfake.crop import CropRecipe, crop_box, crop_face, whole_image_crop
from deepfake.faces import BUNDLED_YUNET, Face, haar_detector, keep_large_faces, yunet_from_file

# The Hub's file (opencv/face_detection_yunet) and the OpenCV Zoo's have this digest; deepfake/assets/NOTICE.md.
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


def test_crop_box_is_a_square_with_the_margin_centred_on_the_face():
    assert crop_box((100, 100, 50, 80), (500, 500), 1.5) == (65, 80, 185, 200)  # side 120


def test_crop_box_is_clipped_to_the_frame():
    x0, y0, x1, y1 = crop_box((0, 10, 60, 60), (100, 200), 2.0)
    assert (x0, y0) == (0, 0) and x1 == 90 and y1 == 100


def test_crop_face_resizes_to_the_recipe_size():
    img = np.zeros((300, 400, 3), np.uint8)
    img[100:200, 150:250] = 255  # the "face"
    crop, box = crop_face(img, (150, 100, 100, 100), CropRecipe(margin=2.0, size=64))
    assert crop.shape == (64, 64, 3) and box == (100, 50, 300, 250)
    assert crop[32, 32].min() == 255 and crop[2, 2].max() == 0  # face in the middle, border around


def test_whole_image_crop_is_the_image_resized_with_its_full_box():
    img = np.zeros((300, 400, 3), np.uint8)
    img[:, 200:] = 255  # right half white
    crop, box = whole_image_crop(img, CropRecipe(margin=2.0, size=64))
    assert crop.shape == (64, 64, 3) and box == (0, 0, 400, 300)
    assert crop[:, :31].max() == 0 and crop[:, 33:].min() == 255


def test_only_faces_at_least_half_the_largest_are_kept():
    faces = [Face((0, 0, 40, 40), 0.9), Face((100, 0, 100, 100), 0.9), Face((300, 0, 50, 50), 0.9),
             Face((400, 0, 49, 30), 0.9)]
    kept = keep_large_faces(faces)
    assert [f.box[2] for f in kept] == [100, 50]


def test_tight_face_crops_are_detected(astronaut):
    """Users upload face crops too (as dfdc_faces are): detection retries on a padded copy."""
    tight = cv2.resize(astronaut[55:185, 165:285], (224, 224))
    faces = haar_detector().detect(tight)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert x >= 0 and y >= 0 and x + w <= 224 and y + h <= 224 and w > 100


def test_no_face_in_noise_or_flat_images():
    rng = np.random.default_rng(0)
    fd = haar_detector()
    assert fd.detect(np.full((200, 200, 3), 128, np.uint8)) == []
    assert fd.detect(rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)) == []


def test_tiny_images_have_no_face_whatever_the_detector_state(yunet_onnx, astronaut):
    """YuNet keeps its input size between calls; a 1x1 or 5x5 image after a real one must give no face."""
    from deepfake.faces import yunet_from_file

    fd = yunet_from_file(yunet_onnx, "test")
    assert len(fd.detect(astronaut)) == 1
    for side in (1, 2, 5, 7):
        assert fd.detect(np.full((side, side, 3), 200, np.uint8)) == []
    assert len(fd.detect(astronaut)) == 1


def test_the_bundled_yunet_is_the_hubs_file_with_its_licence():
    assert hashlib.sha256(BUNDLED_YUNET.read_bytes()).hexdigest() == YUNET_SHA256
    licence = (BUNDLED_YUNET.parent / "LICENSE-YUNET").read_text()
    assert licence.startswith("MIT License") and "Shiqi Yu" in licence
    assert YUNET_SHA256 in (BUNDLED_YUNET.parent / "NOTICE.md").read_text()


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


def _frame_4k(astronaut, k=2.0, at=(1400, 400)):
    """A 3840x2160 frame: scikit-image's coffee photo as background, the astronaut upscaled k times on it.
    Returns the frame and her face box (YuNet's box on the 512 px photo, scaled and moved)."""
    from skimage import data

    frame = cv2.resize(data.coffee(), (3840, 2160), interpolation=cv2.INTER_CUBIC)
    up = cv2.resize(astronaut, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    x0, y0 = at
    h = min(up.shape[0], frame.shape[0] - y0)
    frame[y0:y0 + h, x0:x0 + up.shape[1]] = up[:h]
    fx, fy, fw, fh = yunet_from_file(BUNDLED_YUNET, "test").detect(astronaut)[0].box
    return frame, (x0 + fx * k, y0 + fy * k, fw * k, fh * k)


@pytest.mark.parametrize("detector", ["haar", "yunet"])
def test_the_face_in_a_4k_frame_is_found(astronaut, detector):
    """Her face is 220 px wide in the 4K frame: 37 px on the 640 px copy YuNet sees, too few for the Haar cascade,
    which therefore looks at a 1280 px copy. Boxes come back in full-frame pixels."""
    frame, true_box = _frame_4k(astronaut)
    fd = haar_detector() if detector == "haar" else yunet_from_file(BUNDLED_YUNET, "test")
    faces = fd.detect(frame)
    assert len(faces) >= 1
    assert max(_iou(f.box, true_box) for f in faces) > 0.5
