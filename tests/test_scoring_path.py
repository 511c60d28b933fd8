"""One preprocessing path: training validation and threshold selection score face crops with the code
inference runs (model.Network: the config's resize, mean, std and fake class index)."""
import argparse
import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import BUNDLED
from deepfake.faces import load_face_detector
from deepfake.model import Network
from deepfake.train import data
from deepfake.train.threshold import run_threshold
from deepfake.train.train import choose_threshold, predict, to_tensor


def _variants(rgb: np.ndarray, n: int) -> list[np.ndarray]:
    """n different pictures of the same face: scaled, shifted, mirrored, re-encoded."""
    out = []
    for i in range(n):
        side = 512 - 40 * i
        img = cv2.resize(np.roll(rgb, 6 * i, axis=1), (side, side), interpolation=cv2.INTER_AREA)
        img = img[:, ::-1] if i % 2 else img
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 60 + 5 * i])
        out.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    return out


@pytest.fixture
def odd_model(tmp_path):
    """The bundled weights under a config whose crops (256 px) are not the network's input size (260), with the
    classes listed fake first: scoring that skips the resize or reads class 1 gets other numbers."""
    folder = tmp_path / "odd-lite0"
    shutil.copytree(BUNDLED, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["label_names"] = ["fake", "real"]
    cfg["deepfake"]["fake_index"] = 0
    cfg["deepfake"]["face_crop"]["size"] = 256
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_threshold_command_scores_crops_as_inference_does(tmp_path, odd_model, astronaut):
    fake = np.asarray(Image.open(BUNDLED.parent.parent / "examples" / "astronaut_sbi_fake.png").convert("RGB"))
    train, held = tmp_path / "src", tmp_path / "held"
    for root in (train, held):
        for label, rgb in (("real", astronaut), ("fake", fake)):
            (root / label).mkdir(parents=True)
            for i, img in enumerate(_variants(rgb, 4 if root is train else 8)):
                Image.fromarray(img).save(root / label / f"{label}{chr(97 + i)}.png")
    args = argparse.Namespace(model=odd_model, threads=1, seed=None, heldout_fraction=None, dirs=[train],
                              holdout=[held], face_detector="haar", cache=None, test_time_flip=None, max_fpr=0.0,
                              dry_run=False)
    assert run_threshold(args) == 0
    written = json.loads((odd_model / "config.json").read_text())["deepfake"]["threshold"]

    net = Network.from_folder(odd_model, backend="torch")
    seed, fraction = data.model_split(net.config.raw, None, None)
    items = data.make_splits([train], [held], fraction, seed)["val"]
    ds, _ = data.build_dataset(items, load_face_detector("haar"), net.config.crop, None, 8, log=None)
    assert ds.crops.shape[1:] == (256, 256, 3) and len(set(ds.labels)) == 2
    scores = net.predict(ds.crops)
    assert len(np.unique(np.round(scores, 4))) == len(scores)  # every crop scores differently
    expected, _ = choose_threshold(ds.labels, scores, ds.sources, None)
    assert written == pytest.approx(expected, abs=1e-6)


def test_training_scores_are_network_predict(astronaut):
    """Training's predict and to_tensor are the inference code on the config training saves."""
    net = Network.from_folder(BUNDLED, backend="torch")
    # Training validates the raw network (temperature 1); calibrate fits the temperature afterwards.
    assert net.config.temperature != 1.0
    net = dataclasses.replace(net, config=dataclasses.replace(net.config, temperature=1.0))
    size = net.input_size  # crops as training caches them: the network's input size
    crops = np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) for img in _variants(astronaut, 3)])
    mean, std = net.config.pretrained_cfg["mean"], net.config.pretrained_cfg["std"]
    assert np.array_equal(to_tensor(crops, mean, std).numpy(), net.preprocess(crops).numpy())
    np.testing.assert_allclose(predict(net.net, crops, mean, std), net.predict(crops), atol=1e-6)
    flipped = net.predict(crops[:, :, ::-1].copy())
    np.testing.assert_allclose(predict(net.net, crops, mean, std, flip=True), (net.predict(crops) + flipped) / 2,
                               atol=1e-6)
