"""The Detector end to end on real networks: verdicts, faces, explanations, thread safety, golden value."""
import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import BUNDLED, YUNET_ONNX
from deepfake import InputError, load_detector
from deepfake.faces import crop_face, haar_detector

GOLDEN = Path(__file__).with_name("golden.json")


@pytest.fixture(scope="module")
def det(random_model_dir):
    return load_detector(random_model_dir, face_detector="haar")


def test_image_verdict_is_the_network_score_of_the_face_crop(det, astronaut):
    res = det.analyze_image(astronaut)
    assert len(res.faces) == 1 and res.label in ("FAKE", "REAL")
    face = res.faces[0]
    crop, box = crop_face(astronaut, face.box, det.config.crop)
    assert tuple(box) == face.crop_box
    assert res.fake_probability == pytest.approx(float(det.network.predict([crop])[0]), abs=1e-9)
    assert res.label == ("FAKE" if res.fake_probability >= det.threshold else "REAL")
    low = det.analyze_image(astronaut, threshold=0.0)
    high = det.analyze_image(astronaut, threshold=1.0)
    assert low.label == "FAKE" and (high.label == "REAL" or res.fake_probability == 1.0)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["faces"][0]["box"] == list(face.box) and d["model_id"] == "local:random-lite0"
    assert set(d["timings_ms"]) == {"face_detection", "classification", "total"}


@pytest.mark.skipif(not BUNDLED.is_dir(), reason="bundled model not present")
def test_test_time_flip_from_the_config_drives_verdict_and_grad_cam(tmp_path, astronaut, monkeypatch):
    """A folder whose config switches test_time_flip on: the image score is the mean over the face crop and
    its mirror image, and Grad-CAM explains both views (the mirror view's map mirrored back). On the trained
    model: random weights saturate at p = 1 on both views."""
    import shutil

    from deepfake import explain

    monkeypatch.setenv("DEEPFAKE_BACKEND", "torch")  # no ONNX export of the copy
    folder = tmp_path / "flip-lite0"
    shutil.copytree(BUNDLED, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["deepfake"]["test_time_flip"] = True
    (folder / "config.json").write_text(json.dumps(cfg))
    det, flip = load_detector(BUNDLED, face_detector="haar"), load_detector(folder, face_detector="haar")
    res = flip.analyze_image(astronaut)
    crop, _ = crop_face(astronaut, res.faces[0].box, det.config.crop)
    both = det.network.predict([crop, np.ascontiguousarray(crop[:, ::-1])])
    assert res.fake_probability == pytest.approx(both.mean(), abs=1e-6)
    assert abs(both[0] - both[1]) > 1e-4  # the two views differ, so the mean is a real test
    net, _ = det.network.cam_network()
    layer = explain.get_module(net, det.network.cam_layer_name())
    views = explain.cam_maps(net, layer, det.network.preprocess([crop, np.ascontiguousarray(crop[:, ::-1])]), 1)
    cam = flip.grad_cam(astronaut)
    np.testing.assert_allclose(cam.faces[0].cam, (views[0] + views[1][:, ::-1]) / 2, atol=1e-4)


def test_image_probability_is_the_max_over_faces(det, astronaut):
    flipped = astronaut[:, ::-1].copy()
    two = np.concatenate([astronaut, flipped], axis=1)
    res = det.analyze_image(two)
    assert len(res.faces) == 2
    assert res.fake_probability == max(f.fake_probability for f in res.faces)


def test_no_face_is_never_a_guess(det):
    flat = np.full((300, 300, 3), 120, np.uint8)
    res = det.analyze_image(flat)
    assert res.label == "NO_FACE" and res.fake_probability is None and res.faces == ()
    whole = det.analyze_image(flat, whole_image=True)
    assert whole.scored_whole_image and whole.fake_probability is not None
    assert any("whole image" in w for w in whole.warnings)
    cam = det.grad_cam(flat)
    assert cam.faces == () and cam.result.label == "NO_FACE" and cam.heatmap.max() == 0
    with pytest.raises(InputError, match="No face detected"):
        det.occlusion_map(flat)


def test_grad_cam_is_pasted_onto_the_face(det, astronaut):
    cam = det.grad_cam(astronaut, "gradcam++")
    assert cam.method == "gradcam++" and cam.target == "fake" and cam.heatmap.shape == astronaut.shape[:2]
    x0, y0, x1, y1 = cam.faces[0].crop_box
    outside = cam.heatmap.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0 and cam.heatmap[y0:y1, x0:x1].max() > 0
    px, py = cam.faces[0].peak_xy
    assert x0 <= px < x1 and y0 <= py < y1
    assert cam.faces[0].fake_probability == pytest.approx(cam.result.fake_probability)
    json.dumps(cam.to_dict())
    with pytest.raises(InputError, match="Unknown CAM method"):
        det.grad_cam(astronaut, "magic")


def test_occlusion_map_through_the_detector(det, astronaut):
    occ = det.occlusion_map(astronaut, grid=4, baseline="blur")
    assert occ.changes.shape == (4, 4) and occ.crop.shape == (224, 224, 3)
    assert occ.fake_probability == pytest.approx(det.analyze_image(astronaut).fake_probability, abs=1e-6)
    assert json.loads(occ.to_json())["changes"][0][0] == pytest.approx(occ.changes[0, 0], abs=1e-6)
    for bad in (1, 33):
        with pytest.raises(InputError, match="Grid size"):
            det.occlusion_map(astronaut, grid=bad)


def test_predictions_stay_exact_while_cams_run_concurrently(det, astronaut):
    expected = det.analyze_image(astronaut).fake_probability
    cam_expected = det.grad_cam(astronaut).heatmap
    errors, probs, cams = [], [], []

    def predict():
        try:
            for _ in range(4):
                probs.append(det.analyze_image(astronaut).fake_probability)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def explain():
        try:
            for _ in range(2):
                cams.append(det.grad_cam(astronaut).heatmap)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=predict) for _ in range(3)] + [threading.Thread(target=explain) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(probs) == 12 and all(p == pytest.approx(expected, abs=1e-6) for p in probs)
    assert len(cams) == 4 and all(np.allclose(c, cam_expected, atol=1e-5) for c in cams)
    assert not any(m._forward_hooks or m._backward_hooks for m in det.network.net.modules())


def test_bad_inputs_get_input_errors(det, tmp_path):
    (tmp_path / "a.jpg").write_text("no image here")
    with pytest.raises(InputError, match="not an image"):
        det.analyze_image(tmp_path / "a.jpg")
    with pytest.raises(InputError, match="Threshold"):
        det.analyze_image(np.zeros((10, 10, 3), np.uint8), threshold=2)
    with pytest.raises(InputError, match="unsupported file type"):
        det.analyze(tmp_path / "notes.txt")


def test_cam_peak_of_each_face_is_read_from_its_own_map_when_faces_overlap():
    """Two overlapping faces, a toy network that only looks at one square of each crop: each face's peak_xy lies
    in its own square, even where the other face's map is the higher one in the merged heatmap."""
    from toy import SIZE, FixedFaces, textured, toy_network

    from deepfake.detector import Detector

    region = (8, 24, 8, 24)  # (y0, y1, x0, x1) in crop pixels: the only texture the network scores
    big, small = (0, 0, 128, 128), (56, 56, 64, 64)  # face boxes (x, y, w, h); margin 1: crop box = face box
    det = Detector(toy_network(region, margin=1.0), FixedFaces([big, small]), "toy", "test")
    image = textured(size=192, region=(0, 192, 0, 192), seed=4)  # texture everywhere: each map peaks in its square
    cam = det.grad_cam(image)
    assert [f.crop_box for f in cam.faces] == [(0, 0, 128, 128), (56, 56, 120, 120)]
    for face in cam.faces:
        x0, y0, x1, _ = face.crop_box
        s = (x1 - x0) / SIZE  # crop pixels -> image pixels
        px, py = face.peak_xy
        assert x0 + region[2] * s <= px < x0 + region[3] * s and y0 + region[0] * s <= py < y0 + region[1] * s
    # The small face's square lies inside the big face's crop box and peaks higher in the merged map there
    # (its map is pasted 1:1, the big face's is upsampled), so the merged map alone would point at the wrong face.
    x0, y0, x1, y1 = cam.faces[0].crop_box
    my, mx = np.unravel_index(int(np.argmax(cam.heatmap[y0:y1, x0:x1])), (y1 - y0, x1 - x0))
    assert 56 + 8 <= mx < 56 + 24 and 56 + 8 <= my < 56 + 24


def _golden_input() -> np.ndarray:
    """A fixed input the test makes itself: the astronaut at 384 px, re-encoded as JPEG quality 90."""
    from skimage import data

    img = cv2.resize(data.astronaut(), (384, 384), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.mark.skipif(not (BUNDLED / "model.safetensors").exists(), reason="bundled model not trained yet")
def test_golden_probability_of_the_bundled_model(yunet_onnx):
    """Any change to preprocessing, cropping or weight loading moves this number."""
    golden = json.loads(GOLDEN.read_text())
    det = load_detector(face_detector=str(yunet_onnx))
    res = det.analyze_image(_golden_input())
    assert res.model_revision == golden["model_revision"]
    assert [list(f.box) for f in res.faces] == golden["boxes"]
    assert res.fake_probability == pytest.approx(golden["fake_probability"], abs=1e-4)
    haar = load_detector(face_detector="haar").analyze_image(_golden_input())
    assert haar.fake_probability == pytest.approx(golden["fake_probability_haar"], abs=1e-4)


def write_golden(yunet_onnx=YUNET_ONNX) -> dict:
    """Record the golden values after retraining the bundled model: PYTHONPATH=. python tests/test_detector.py"""
    det = load_detector(face_detector=str(yunet_onnx))
    res = det.analyze_image(_golden_input())
    haar = load_detector(face_detector="haar").analyze_image(_golden_input())
    golden = {"model_revision": res.model_revision, "boxes": [list(f.box) for f in res.faces],
              "fake_probability": res.fake_probability, "fake_probability_haar": haar.fake_probability}
    GOLDEN.write_text(json.dumps(golden, indent=2) + "\n")
    return golden


if __name__ == "__main__":
    print(write_golden())

