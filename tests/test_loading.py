"""Loading detectors and the face detector: folders, the Hub (through a real offline cache), bad files."""
import json
import shutil

import numpy as np
import pytest
import torch

from deepfake import faces, hub, load_detector
from deepfake.errors import ModelLoadError
from deepfake.faces import BUNDLED_YUNET, YUNET_FILE, YUNET_REPO, load_face_detector
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


def test_a_named_repo_not_in_the_cache_offline_is_an_error_not_the_bundled_model(hub_cache, random_model_dir,
                                                                                    monkeypatch):
    monkeypatch.setattr(hub, "BUNDLED_MODEL", random_model_dir)
    with pytest.raises(ModelLoadError, match=r"Cannot load detector 'acme/not-cached': Hub repo 'acme/not-cached' "
                                             r"is not in the local cache and offline mode is on"):
        load_detector("acme/not-cached", face_detector="haar")
    monkeypatch.setenv("DEEPFAKE_MODEL", "acme/not-cached")  # named through the environment: the same
    with pytest.raises(ModelLoadError, match="not in the local cache"):
        hub.resolve_source(None)


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
    assert fd.name == "yunet" and fd.warning is None and fd.source == f"{YUNET_REPO}/{YUNET_FILE}"
    faces = fd.detect(astronaut)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 160 < x + w / 2 < 250 and 80 < y + h / 2 < 150 and 70 < w < 130  # her face, not the flag
    assert len(faces[0].landmarks) == 5
    monkeypatch.setenv("DEEPFAKE_YUNET_REVISION", COMMIT)
    assert load_face_detector().source.endswith(f"@{COMMIT}")


CORRUPT_ONNX = b"not an onnx model" * 50
WHY = {"missing": f"Hub repo '{YUNET_REPO}' is not in the local cache and offline mode is on",
       "corrupt": f"the Hub's {YUNET_FILE} is not a valid YuNet ONNX model"}


@pytest.mark.parametrize("state", ["missing", "corrupt"])
def test_offline_without_the_hubs_file_yunet_comes_from_the_bundled_copy(hub_cache, astronaut, state):
    """A fresh offline install (empty Hub cache) detects faces with the same YuNet file as the Space."""
    if state == "corrupt":
        write_hub_repo(hub_cache, YUNET_REPO, {YUNET_FILE: CORRUPT_ONNX}, COMMIT)
    fd = load_face_detector()
    assert fd.name == "yunet" and fd.source == f"bundled:{YUNET_FILE}"
    assert fd.warning == f"YuNet face detector: the copy bundled with the package ({WHY[state]})."
    assert "/" + "tmp" not in fd.warning  # no server paths in user-visible text
    found = fd.detect(astronaut)
    assert len(found) == 1 and len(found[0].landmarks) == 5 and 160 < found[0].box[0] + found[0].box[2] / 2 < 250


@pytest.mark.parametrize("state", ["missing", "corrupt"])
def test_haar_is_the_last_resort_with_a_warning(hub_cache, astronaut, tmp_path, monkeypatch, state):
    write_hub_repo(hub_cache, YUNET_REPO, {YUNET_FILE: CORRUPT_ONNX}, COMMIT)
    bundled = tmp_path / YUNET_FILE
    if state == "corrupt":
        bundled.write_bytes(CORRUPT_ONNX)
    monkeypatch.setattr(faces, "BUNDLED_YUNET", bundled)
    fd = load_face_detector()
    assert fd.name == "haar" and fd.warning.endswith("using the Haar cascade fallback.")
    assert WHY["corrupt"] in fd.warning and f"bundled copy: {YUNET_FILE}" in fd.warning
    assert "/" + "tmp" not in fd.warning
    found = fd.detect(astronaut)
    assert len(found) == 1 and 160 < found[0].box[0] + found[0].box[2] / 2 < 250


def test_a_named_face_detector_file_that_does_not_load_is_an_error(tmp_path, monkeypatch):
    bad = tmp_path / "mine.onnx"
    bad.write_bytes(CORRUPT_ONNX)
    with pytest.raises(ModelLoadError, match=r"Face detector: mine.onnx is not a valid YuNet ONNX model"):
        load_face_detector(str(bad))
    monkeypatch.setenv("DEEPFAKE_FACE_DETECTOR", str(tmp_path / "absent.onnx"))
    with pytest.raises(ModelLoadError, match=r"Face detector: absent.onnx does not exist"):
        load_face_detector()
    assert load_face_detector(str(BUNDLED_YUNET)).name == "yunet"


def test_the_face_detector_used_reaches_results(hub_cache, random_model_dir, astronaut):
    det = load_detector(random_model_dir)  # YuNet not in the Hub cache: the bundled copy
    res = det.analyze_image(astronaut)
    assert res.face_detector == "yunet" and len(res.faces) == 1
    assert any(w.startswith("YuNet face detector: the copy bundled with the package") for w in res.warnings)


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


@pytest.fixture
def download_calls(monkeypatch):
    """Records the local_files_only argument of every Hub download (and still runs the real ones)."""
    import huggingface_hub

    calls = []
    for name in ("snapshot_download", "hf_hub_download"):
        real = getattr(huggingface_hub, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls.append((_name, kwargs.get("local_files_only")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(huggingface_hub, name, spy)
    return calls


def test_unreachable_hub_asks_the_cache_only_and_says_so(hub_cache, unreachable_hub, random_model_dir,
                                                         download_calls, monkeypatch):
    """One probe decides; the downloads then ask the local cache only, so nothing waits on huggingface_hub's
    retries. A named repo that is not cached is an error; YuNet comes from the bundled copy."""
    monkeypatch.setattr(hub, "BUNDLED_MODEL", random_model_dir)
    with pytest.raises(ModelLoadError, match="Hub repo 'acme/detector' is not in the local cache and the Hub is "
                                             "unreachable"):
        hub.resolve_source("acme/detector")
    fd = load_face_detector()
    assert fd.name == "yunet" and fd.source == f"bundled:{YUNET_FILE}" and "the Hub is unreachable" in fd.warning
    assert download_calls == [("snapshot_download", True), ("hf_hub_download", True)]


def test_unreachable_hub_still_uses_the_cache(hub_cache, unreachable_hub, random_model_dir, yunet_onnx):
    write_hub_repo(hub_cache, "acme/detector", detector_files(random_model_dir), COMMIT)
    write_hub_repo(hub_cache, YUNET_REPO, {YUNET_FILE: yunet_onnx}, COMMIT)
    src = hub.resolve_source("acme/detector")
    assert src.model_id == "acme/detector" and src.revision == COMMIT and "unreachable" in src.warnings[0]
    assert load_face_detector().name == "yunet"


# ---------------------------------------------------------------------------------------- Hub errors

@pytest.fixture
def reachable_hub(monkeypatch):
    """Online mode with the reachability probe answered yes; every test here replaces the download itself."""
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "_reachable", True)
    yield
    hub._reachable = None


def _http_error(cls, status: int, message: str = "boom /srv/secret/path"):
    import httpx2

    response = httpx2.Response(status, request=httpx2.Request("GET", "http://127.0.0.1/acme/detector"))
    return cls(message, response=response)


def _hub_errors():
    from huggingface_hub import errors as e

    return {
        "repo not found": (_http_error(e.RepositoryNotFoundError, 404),
                           "Hub repo 'acme/detector' not found (or private: log in with HF_TOKEN)"),
        "gated": (_http_error(e.GatedRepoError, 403), "Hub repo 'acme/detector' is gated"),
        "revision not found": (_http_error(e.RevisionNotFoundError, 404),
                               "revision 'v9' of Hub repo 'acme/detector' not found"),
        "file missing": (_http_error(e.RemoteEntryNotFoundError, 404), "a file is missing from Hub repo 'acme/detector'"),
        "server error": (_http_error(e.HfHubHTTPError, 500), "the Hub answered HTTP 500 for Hub repo 'acme/detector'"),
        "no answer": (e.LocalEntryNotFoundError("boom /srv/secret/path"),
                      "Hub repo 'acme/detector' is not in the local cache and the Hub did not answer"),
        "incomplete cache": (e.IncompleteSnapshotError("boom /srv/secret/path", snapshot_path="/srv/secret/path"),
                             "the cached copy of Hub repo 'acme/detector' is incomplete"),
        "disk": (OSError(28, "No space left on device", "/srv/secret/path"),
                 "Hub repo 'acme/detector' could not be read from the cache or downloaded (OSError)"),
    }


@pytest.mark.parametrize("case", ["repo not found", "gated", "revision not found", "file missing", "server error",
                                  "no answer", "incomplete cache", "disk"])
def test_a_hub_failure_says_what_failed_and_never_serves_the_bundled_model(reachable_hub, random_model_dir,
                                                                          monkeypatch, case):
    """The Hub is reachable but the download fails: the error names the failure, for a repo named as an argument
    or through DEEPFAKE_MODEL, instead of "Hub unreachable" and an analysis with the bundled model."""
    import huggingface_hub

    error, message = _hub_errors()[case]

    def fail(*args, **kwargs):
        assert kwargs["local_files_only"] is False  # reachable: a real download was asked for
        raise error

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    monkeypatch.setattr(hub, "BUNDLED_MODEL", random_model_dir)
    with pytest.raises(ModelLoadError) as info:
        load_detector("acme/detector@v9", face_detector="haar")
    text = str(info.value)
    assert text.startswith("Cannot load detector 'acme/detector': ") and message in text
    assert "secret" not in text and "bundled" not in text  # library messages (server paths) are not quoted
    monkeypatch.setenv("DEEPFAKE_MODEL", "acme/detector@v9")
    with pytest.raises(ModelLoadError, match=message.split(" (")[0].replace("'", ".")):
        hub.resolve_source(None)


def test_a_hub_failure_for_yunet_says_what_failed_and_uses_the_bundled_copy(reachable_hub, monkeypatch):
    import huggingface_hub

    error, _ = _hub_errors()["revision not found"]
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: (_ for _ in ()).throw(error))
    monkeypatch.setenv("DEEPFAKE_YUNET_REVISION", "v9")
    fd = load_face_detector()
    assert fd.name == "yunet" and fd.source == f"bundled:{YUNET_FILE}"
    assert fd.warning == ("YuNet face detector: the copy bundled with the package "
                          f"(revision 'v9' of Hub repo '{YUNET_REPO}' not found).")


def test_a_failed_onnx_export_leaves_no_partial_file(tmp_path, monkeypatch):
    from toy import toy_network

    from deepfake import model

    def export_fails(net, path, size):
        path.write_bytes(b"half an onnx file")
        raise RuntimeError("exporter crashed")

    monkeypatch.setenv("DEEPFAKE_CACHE", str(tmp_path))
    monkeypatch.setattr(model, "export_onnx", export_fails)
    network = toy_network()
    assert network.use_onnxruntime() is False and network.backend == "torch"  # falls back, says so in the log
    assert list((tmp_path / "onnx").iterdir()) == []
