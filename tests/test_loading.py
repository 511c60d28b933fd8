"""Loading detectors and the face detector: folders, the Hub (through a real offline cache), bad files."""
import json
import shutil
import time

import numpy as np
import pytest
import torch

from deepfake import hub, load_detector
from deepfake.errors import ModelLoadError
from deepfake.faces import YUNET_FILE, YUNET_REPO, load_face_detector
from deepfake.model import Network
from hubcache import detector_files, write_hub_repo

COMMIT = "c0ffee" + "0" * 34


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as c

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 224, 224, generator=g) * 2 - 1


def test_detector_from_hub_cache_matches_folder_and_timm(hub_cache, random_model_dir):
    write_hub_repo(hub_cache, "acme/detector", detector_files(random_model_dir), COMMIT)
    det = load_detector("acme/detector", face_detector="haar")
    assert det.model_id == "acme/detector" and det.revision == COMMIT
    assert any("offline" in w for w in det.warnings)
    local = Network.from_folder(random_model_dir)
    x = _batch()
    np.testing.assert_allclose(det.network.probabilities(x), local.probabilities(x), atol=1e-6)
    # Plain timm loads the same network from the same repo.
    import timm

    net = timm.create_model("hf-hub:acme/detector", pretrained=True).eval()
    with torch.inference_mode():
        p = torch.softmax(net(x), 1)[:, 1].numpy()
    np.testing.assert_allclose(p, local.probabilities(x), atol=1e-5)
    assert net.pretrained_cfg["crop_pct"] == 1.0


def test_revision_pin(hub_cache, random_model_dir, tmp_path):
    from conftest import write_random_detector

    other = write_random_detector(tmp_path / "other", seed=1)
    write_hub_repo(hub_cache, "acme/detector", detector_files(random_model_dir), COMMIT)
    old = "b" * 40
    write_hub_repo(hub_cache, "acme/detector", detector_files(other), old, ref=None)
    new_det = load_detector("acme/detector", face_detector="haar")
    old_det = load_detector(f"acme/detector@{old}", face_detector="haar")
    assert old_det.revision == old and new_det.revision == COMMIT
    x = _batch(1)
    assert not np.allclose(new_det.network.probabilities(x), old_det.network.probabilities(x))


def test_unreachable_repo_falls_back_to_bundled_fast(hub_cache, random_model_dir, monkeypatch):
    monkeypatch.setattr(hub, "BUNDLED_MODEL", random_model_dir)
    t0 = time.perf_counter()
    det = load_detector("acme/not-cached", face_detector="haar")
    assert time.perf_counter() - t0 < 2 + 3  # model build itself is ~1 s; no retry loop
    assert det.model_id == f"bundled:{random_model_dir.name}"
    assert any("not in the local cache" in w and "bundled" in w for w in det.warnings)


def test_default_source_env_and_bundled(random_model_dir, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_MODEL", str(random_model_dir))
    src = hub.resolve_source(None)
    assert src.folder == random_model_dir and src.model_id == "local:random-lite0"
    assert src.revision.startswith("sha256:")
    monkeypatch.delenv("DEEPFAKE_MODEL")
    monkeypatch.setattr(hub, "BUNDLED_MODEL", random_model_dir)
    assert hub.resolve_source(None).model_id == "bundled:random-lite0"


def _broken(tmp_path, random_model_dir, change):
    folder = tmp_path / "broken"
    shutil.copytree(random_model_dir, folder)
    change(folder)
    return folder


def _edit_config(fn):
    def change(folder):
        cfg = json.loads((folder / "config.json").read_text())
        fn(cfg)
        (folder / "config.json").write_text(json.dumps(cfg))
    return change


BAD = {
    "no config": (lambda f: (f / "config.json").unlink(), r"config.json is missing"),
    "bad json": (lambda f: (f / "config.json").write_text("{not json"), r"config.json is not valid JSON"),
    "no own section": (_edit_config(lambda c: c.pop("deepfake")), r"missing field 'deepfake'"),
    "no threshold": (_edit_config(lambda c: c["deepfake"].pop("threshold")), r"missing field 'threshold'"),
    "bad threshold": (_edit_config(lambda c: c["deepfake"].update(threshold=1.5)), r"threshold must be between"),
    "unknown arch": (_edit_config(lambda c: c.update(architecture="resnet_9000")), r"unknown architecture 'resnet_9000'"),
    "labels disagree": (_edit_config(lambda c: c.update(num_classes=3)), r"label_names, num_classes and fake_index disagree"),
    "wrong shapes": (_edit_config(lambda c: c.update(architecture="tf_efficientnet_lite1")),
                     r"model.safetensors does not match architecture"),
    "corrupt weights": (lambda f: (f / "model.safetensors").write_bytes(b"\x00garbage" * 100),
                        r"model.safetensors is corrupt"),
    "truncated weights": (lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:5000]),
                          r"model.safetensors is corrupt"),
    "pickle only": (lambda f: ((f / "model.safetensors").rename(f / "pytorch_model.bin")),
                    r"model.safetensors is missing.*pytorch_model.bin.*pickle checkpoints are refused"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_detector_files_raise_one_clear_error(tmp_path, random_model_dir, case):
    change, message = BAD[case]
    folder = _broken(tmp_path, random_model_dir, change)
    with pytest.raises(ModelLoadError, match=message):
        load_detector(folder, face_detector="haar")


def test_not_a_source():
    with pytest.raises(ModelLoadError, match="neither a detector folder nor a Hub repo id"):
        load_detector("/no/such/folder", face_detector="haar")


# ---------------------------------------------------------------------------------------- face detector

def test_yunet_from_hub_cache_finds_the_astronaut(hub_cache, yunet_onnx, astronaut, monkeypatch):
    write_hub_repo(hub_cache, YUNET_REPO, {YUNET_FILE: yunet_onnx}, COMMIT)
    fd = load_face_detector()
    assert fd.name == "yunet" and fd.warning is None and YUNET_REPO in fd.source
    faces = fd.detect(astronaut)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 160 < x + w / 2 < 250 and 80 < y + h / 2 < 150 and 70 < w < 130  # her face, not the flag
    assert len(faces[0].landmarks) == 5
    monkeypatch.setenv("DEEPFAKE_YUNET_REVISION", COMMIT)
    assert load_face_detector().source.endswith(f"@{COMMIT}")


@pytest.mark.parametrize("state", ["missing", "corrupt"])
def test_face_detector_falls_back_to_haar_with_a_warning(hub_cache, astronaut, state):
    if state == "corrupt":
        write_hub_repo(hub_cache, YUNET_REPO, {YUNET_FILE: b"not an onnx model" * 50}, COMMIT)
    fd = load_face_detector()
    assert fd.name == "haar" and "Haar cascade fallback" in fd.warning
    assert "/" + "tmp" not in fd.warning  # no server paths in user-visible text
    faces = fd.detect(astronaut)
    assert len(faces) == 1 and 160 < faces[0].box[0] + faces[0].box[2] / 2 < 250


def test_fallback_warning_reaches_results(hub_cache, random_model_dir, astronaut):
    det = load_detector(random_model_dir)  # YuNet not cached: Haar
    res = det.analyze_image(astronaut)
    assert res.face_detector == "haar" and any("Haar" in w for w in res.warnings)


@pytest.fixture
def unreachable_hub(monkeypatch):
    """Online mode, but the endpoint is a closed loopback port: as when the Hub is down."""
    import huggingface_hub.constants as c

    from conftest import free_port

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(c, "ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(hub, "_reachable", None)
    yield
    hub._reachable = None


def test_unreachable_hub_falls_back_within_two_seconds(hub_cache, unreachable_hub, random_model_dir, monkeypatch):
    monkeypatch.setattr(hub, "BUNDLED_MODEL", random_model_dir)
    t0 = time.perf_counter()
    src = hub.resolve_source("acme/detector")
    fd = load_face_detector()
    assert time.perf_counter() - t0 < 2.0  # no retry loop
    assert src.model_id == "bundled:random-lite0" and "the Hub is unreachable" in src.warnings[0]
    assert fd.name == "haar" and "fallback" in fd.warning


def test_unreachable_hub_still_uses_the_cache(hub_cache, unreachable_hub, random_model_dir, yunet_onnx):
    write_hub_repo(hub_cache, "acme/detector", detector_files(random_model_dir), COMMIT)
    write_hub_repo(hub_cache, YUNET_REPO, {YUNET_FILE: yunet_onnx}, COMMIT)
    src = hub.resolve_source("acme/detector")
    assert src.model_id == "acme/detector" and src.revision == COMMIT and "unreachable" in src.warnings[0]
    assert load_face_detector().name == "yunet"
