"""The Detector end to end on the bundled model, whose probabilities move with the input (random weights
saturate at p = 1, so every comparison of scores would hold whatever the code did): verdicts, faces,
explanations, thread safety, and the golden values (record new ones after retraining:
`PYTHONPATH=. .venv/bin/python tests/test_detector.py`)."""
import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import BUNDLED
from deepfake import InputError, load_detector
from deepfake.crop import crop_face, whole_image_crop
from deepfake.faces import BUNDLED_YUNET

GOLDEN = Path(__file__).with_name("golden.json")
RECORD = "PYTHONPATH=. .venv/bin/python tests/test_detector.py"


@pytest.fixture(scope="module")
def det():
    return load_detector(BUNDLED, face_detector="haar")


@pytest.fixture(scope="module")
def det_torch():
    """The same on the torch backend, where predictions and CAMs both run torch modules."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPFAKE_BACKEND", "torch")
        return load_detector(BUNDLED, face_detector="haar")


def _unsaturated(p: float) -> float:
    """A probability a wrong crop, resize or class index would move (not pinned at 0 or 1)."""
    assert 1e-3 < p < 1 - 1e-3, f"p = {p}: the model saturates on this input, so comparing scores tests nothing"
    return p


def test_image_verdict_is_the_network_score_of_the_face_crop(det, astronaut):
    res = det.analyze_image(astronaut)
    assert len(res.faces) == 1 and res.faces[0].reasons == ()
    face = res.faces[0]
    crop, box = crop_face(astronaut, face.box, det.config.crop)
    assert tuple(box) == face.crop_box
    p = _unsaturated(res.fake_probability)
    assert p == pytest.approx(float(det.network.predict([crop])[0]), abs=1e-9)
    assert p != pytest.approx(float(det.network.predict([crop[:, ::-1].copy()])[0]), abs=1e-4)  # input matters
    assert res.label == det.band.label(p) and (res.threshold, res.real_below) == (det.threshold, det.band.real_below)
    # the calibrated probability: the network's logits divided by the config's temperature
    with torch.inference_mode():
        logits = det.network.net(det.network.preprocess([crop])).double()[0]
    assert det.config.temperature != 1.0
    assert p == pytest.approx(float(torch.softmax(logits / det.config.temperature, 0)[1]), abs=1e-6)
    low = det.analyze_image(astronaut, threshold=0.0)
    high = det.analyze_image(astronaut, threshold=1.0, real_below=1.0)
    assert low.label == "FAKE" and high.label == "REAL"
    # FAKE from exactly the probability up (score >= threshold), UNCERTAIN just above it, REAL below the REAL bound
    assert det.analyze_image(astronaut, threshold=p).label == "FAKE"
    above = float(np.nextafter(p, 1.0))
    assert det.analyze_image(astronaut, threshold=above, real_below=min(p, det.band.real_below)).label == "UNCERTAIN"
    assert det.analyze_image(astronaut, threshold=above, real_below=above).label == "REAL"
    d = json.loads(json.dumps(res.to_dict()))
    assert d["faces"][0]["box"] == list(face.box) and d["model_id"] == "bundled:deepfake-lite0-sbi"
    assert d["face_detector"] == "haar" and d["model_revision"] == det.revision and d["warnings"] == []
    assert set(d["timings_ms"]) == {"face_detection", "classification", "total"}


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
    low, high = sorted(f.fake_probability for f in res.faces)
    assert high - low > 1e-3  # the mirror image scores differently: the max is a real choice
    assert res.fake_probability == high and res.label == det.band.label(high)


def test_no_face_is_never_a_guess(det):
    flat = np.full((300, 300, 3), 120, np.uint8)
    res = det.analyze_image(flat)
    assert res.label == "NO_FACE" and res.fake_probability is None and res.faces == ()
    whole = det.analyze_image(flat, whole_image=True)
    assert whole.scored_whole_image and whole.fake_probability is not None
    crop, _ = whole_image_crop(flat, det.config.crop)
    assert whole.fake_probability == pytest.approx(float(det.network.predict([crop])[0]), abs=1e-9)
    assert any("whole image" in w for w in whole.warnings)
    cam = det.grad_cam(flat)
    assert cam.faces == () and cam.result.label == "NO_FACE" and cam.heatmap.max() == 0
    with pytest.raises(InputError, match="No face detected"):
        det.occlusion_map(flat)


def test_grad_cam_is_pasted_onto_the_face(det, astronaut):
    # The self-blended example (FAKE): on the plain photo nothing pushes the bundled network toward FAKE, and the
    # gradient CAMs (ReLU of positive evidence) are all zero there.
    from PIL import Image

    from support.paths import EXAMPLE_FAKE

    astronaut = np.asarray(Image.open(EXAMPLE_FAKE).convert("RGB"))
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
    assert occ.changes.shape == (4, 4) and occ.crop.shape == (det.config.crop.size,) * 2 + (3,)
    assert occ.fake_probability == pytest.approx(det.analyze_image(astronaut).fake_probability, abs=1e-6)
    assert json.loads(occ.to_json())["changes"][0][0] == pytest.approx(occ.changes[0, 0], abs=1e-6)
    for bad in (1, 33):
        with pytest.raises(InputError, match="Grid size"):
            det.occlusion_map(astronaut, grid=bad)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_predictions_stay_exact_while_cams_run_concurrently(backend, det, det_torch, astronaut):
    det = det if backend == "onnxruntime" else det_torch
    assert det.network.backend == backend
    expected = _unsaturated(det.analyze_image(astronaut).fake_probability)
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
    assert det.network.cam_network()[0] is not det.network.net  # CAM hooks go on a private copy only


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


def _golden_values() -> dict:
    """The bundled model on the golden input, with the bundled YuNet copy and with the Haar cascade."""
    det = load_detector(BUNDLED, face_detector=str(BUNDLED_YUNET))
    res = det.analyze_image(_golden_input())
    haar = load_detector(BUNDLED, face_detector="haar").analyze_image(_golden_input())
    return {"model_revision": res.model_revision, "boxes": [list(f.box) for f in res.faces],
            "fake_probability": res.fake_probability, "boxes_haar": [list(f.box) for f in haar.faces],
            "fake_probability_haar": haar.fake_probability}


def test_golden_probability_of_the_bundled_model():
    """Any change to preprocessing, cropping, face detection or weight loading moves these numbers. They are
    recorded to full precision; 1e-6 allows only for float rounding between CPUs."""
    golden = json.loads(GOLDEN.read_text())
    now = _golden_values()
    assert now["model_revision"] == golden["model_revision"], f"the bundled model changed: record it with {RECORD}"
    assert now["boxes"] == golden["boxes"] and now["boxes_haar"] == golden["boxes_haar"]
    assert now["fake_probability"] == pytest.approx(golden["fake_probability"], abs=1e-6)
    assert now["fake_probability_haar"] == pytest.approx(golden["fake_probability_haar"], abs=1e-6)
    _unsaturated(now["fake_probability"])


def write_golden() -> dict:
    """Record the golden values after retraining the bundled model (the command in RECORD)."""
    golden = _golden_values()
    GOLDEN.write_text(json.dumps(golden, indent=2) + "\n")
    return golden


if __name__ == "__main__":
    print(write_golden())
