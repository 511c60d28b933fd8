"""A detector folder with several networks (config.json deepfake.networks): each face gets a probability and a
label per network, and the combined label and kind follow verdict.combine; each further network loads from its
own folder or, through the Hub cache, from its own repo (which plain timm loads too)."""
import json

import numpy as np
import pytest
import torch

from conftest import BUNDLED, ROOT
from deepfake import load_detector
from deepfake.band import Band
from deepfake.crop import crop_face
from deepfake.errors import ModelLoadError
from deepfake.verdict import combine
from hubcache import detector_files, write_hub_repo
from support.detectors import write_generated_network, write_two_network_detector

COMMIT = "d00d" + "0" * 36
GEN_T = 0.7  # the second network: the bundled weights at another temperature, so its probability is known


@pytest.fixture(autouse=True)
def torch_backend(monkeypatch):
    monkeypatch.setenv("DEEPFAKE_BACKEND", "torch")  # no ONNX export of each copy


def _two_networks(tmp_path, band: Band | None, ref: dict | None = None):
    return write_two_network_detector(tmp_path / "two", band, GEN_T, ref)


def _p(det, crop, temperature):
    with torch.inference_mode():
        logits = det.network.net(det.network.preprocess([crop])).double()[0]
    return float(torch.softmax(logits / temperature, 0)[1])


def test_combine_rule_on_known_probabilities():
    swap, gen = Band(0.3, 0.6), Band(0.2, 0.9)
    kinds = ("face_swap", "generated")
    assert combine(["REAL", "REAL"], [0.1, 0.1], [swap, gen], kinds) == ("REAL", None)
    assert combine(["REAL", "FAKE"], [0.1, 0.95], [swap, gen], kinds) == ("FAKE", "generated")
    assert combine(["REAL", "UNCERTAIN"], [0.1, 0.5], [swap, gen], kinds) == ("UNCERTAIN", None)
    # both FAKE: the kind of the network furthest into its FAKE range (0.8 is 50 % of swap's; 0.95 is 50 % of gen's)
    assert combine(["FAKE", "FAKE"], [0.84, 0.95], [swap, gen], kinds) == ("FAKE", "face_swap")
    assert combine(["FAKE", "FAKE"], [0.76, 0.95], [swap, gen], kinds) == ("FAKE", "generated")
    assert combine(["NO_FACE", "NO_FACE"], [None, None], [swap, gen], kinds) == ("NO_FACE", None)
    assert combine(["UNCERTAIN", "UNCERTAIN"], [0.9, 0.9], [swap, gen], kinds) == ("UNCERTAIN", None)


def test_each_face_gets_a_score_per_network_and_the_rule_combines_them(tmp_path, astronaut):
    one = load_detector(BUNDLED, face_detector="haar")
    crop, _ = crop_face(astronaut, one.analyze_image(astronaut).faces[0].box, one.config.crop)
    p1, p2 = _p(one, crop, one.config.temperature), _p(one, crop, GEN_T)
    assert abs(p1 - p2) > 0.01  # the two networks disagree, so which one is reported matters

    below, above = p2 - 1e-4, p2 + 1e-4  # the generated network's FAKE bound just under, then just over, p2
    det = load_detector(_two_networks(tmp_path, Band(p2 / 2, below)), face_detector="haar")
    assert [m.name for m in det.members] == ["face_swap", "generated"] and det.extra[0].model_id == "networks/generated"
    res = det.analyze_image(astronaut, threshold=1.0, real_below=1.0)  # the face-swap network says REAL
    face = res.faces[0]
    assert [s.network for s in face.scores] == ["face_swap", "generated"]
    assert face.scores[0].fake_probability == pytest.approx(p1, abs=1e-6) == face.fake_probability
    assert face.scores[1].fake_probability == pytest.approx(p2, abs=1e-6)
    assert [s.label for s in face.scores] == ["REAL", "FAKE"]
    assert (face.label, face.manipulation) == ("FAKE", "generated") == (res.label, res.manipulation)
    assert res.fake_probability == pytest.approx(p1, abs=1e-6)  # the top-level score stays the first network's
    assert (res.scores[1].threshold, res.scores[1].real_below) == pytest.approx((below, p2 / 2), abs=1e-6)
    d = json.loads(res.to_json())
    assert d["manipulation"] == "generated" and d["faces"][0]["scores"][1]["kind"] == "generated"

    det = load_detector(_two_networks(tmp_path / "b", Band(p2 / 2, above)), face_detector="haar")
    res = det.analyze_image(astronaut, threshold=1.0, real_below=1.0)
    assert [s.label for s in res.scores] == ["REAL", "UNCERTAIN"] and (res.label, res.manipulation) == ("UNCERTAIN", None)
    res = det.analyze_image(astronaut, threshold=0.0)  # the face-swap network now says FAKE
    assert (res.label, res.manipulation) == ("FAKE", "face_swap")

    det = load_detector(_two_networks(tmp_path / "c", Band(above, min(above * 1.01, 0.999))), face_detector="haar")
    res = det.analyze_image(astronaut, threshold=1.0, real_below=1.0)
    assert [s.label for s in res.scores] == ["REAL", "REAL"] and res.label == "REAL"


def test_a_video_scores_each_network_over_its_judged_frames(tmp_path):
    det = load_detector(_two_networks(tmp_path, None), face_detector="haar")
    res = det.analyze_video(ROOT / "examples" / "astronaut_sbi.mp4", frames=6)
    judged = [f for f in res.frames if f.fake_probability is not None and not f.reasons]
    assert len(judged) >= 3
    for n in (0, 1):
        mean = np.mean([f.scores[n].fake_probability for f in judged])
        assert res.scores[n].fake_probability == pytest.approx(mean, abs=1e-9)
    assert res.scores[0].fake_probability == res.fake_probability
    assert res.scores[1].fake_probability != pytest.approx(res.fake_probability, abs=1e-3)
    for f in judged:  # each frame's label is the rule over its networks' labels
        assert (f.label, f.manipulation) == combine([s.label for s in f.scores],
                                                    [s.fake_probability for s in f.scores],
                                                    [Band(s.real_below, s.threshold) for s in f.scores],
                                                    [s.kind for s in f.scores])


def test_a_further_network_loads_from_its_own_hub_repo_also_with_timm(tmp_path, monkeypatch, astronaut):
    import huggingface_hub.constants as c
    import timm

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    gen = write_generated_network(tmp_path / "gen", None, GEN_T)
    root = _two_networks(tmp_path, None, {"name": "generated", "kind": "generated", "repo": "acme/generated"})
    write_hub_repo(cache, "acme/generated", detector_files(gen), COMMIT)
    write_hub_repo(cache, "acme/detector", detector_files(root))
    det = load_detector("acme/detector", face_detector="haar")
    m = det.extra[0]
    assert (m.name, m.kind, m.model_id, m.revision) == ("generated", "generated", "acme/generated", COMMIT)
    x = det.network.preprocess([astronaut[100:300, 150:350]])
    net = timm.create_model("hf-hub:acme/generated", pretrained=True).eval()
    with torch.inference_mode():
        p = torch.softmax(net(x).double() / GEN_T, 1)[:, 1].numpy()
    np.testing.assert_allclose(m.network.probabilities(x), p, atol=1e-5)


@pytest.mark.parametrize("ref, message", [
    ({"name": "g", "kind": "diffusion", "path": "networks/g"}, "has kind 'diffusion'; choose one of"),
    ({"name": "g", "kind": "generated"}, "needs a 'path'"),
    ({"name": "g", "kind": "generated", "path": "../elsewhere"}, "must be a folder inside"),
    ({"name": "face_swap", "kind": "generated", "path": "networks/g"}, "network names must differ"),
    ({"name": "g", "kind": "generated", "path": "networks/missing"}, "its folder 'networks/missing' is missing"),
])
def test_bad_network_entries_are_clear_load_errors(tmp_path, ref, message):
    with pytest.raises(ModelLoadError, match=message):
        load_detector(_two_networks(tmp_path, None, ref), face_detector="haar")
