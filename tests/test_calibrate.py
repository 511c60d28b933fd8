"""Temperature scaling, ECE, the reliability plot, and the calibrate command on a synthetic validation split."""
import argparse
import json
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deepfake.band import Band, band_counts, choose_band
from deepfake.train import calibrate, data
from deepfake.train.calibrate import (apply_temperature, expected_calibration_error, fit_temperature,
                                      reliability_plot)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _sample(t0: float, n: int = 100_000, seed: int = 0):
    """Logits z ~ N(0, 3) and labels drawn with P(fake) = sigmoid(z / t0): a network over-confident by t0."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, n)
    return (rng.random(n) < _sigmoid(z / t0)).astype(np.int64), _sigmoid(z)


@pytest.mark.parametrize("t0", [2.5, 0.5])
def test_fit_temperature_recovers_a_known_temperature(t0):
    labels, probs = _sample(t0)
    assert fit_temperature(labels, probs) == pytest.approx(t0, rel=0.05)


def test_fit_temperature_is_one_when_already_calibrated_and_minimises_the_nll():
    labels, probs = _sample(1.0, seed=1)
    t = fit_temperature(labels, probs)
    assert t == pytest.approx(1.0, rel=0.05)
    # the fitted T is the minimum of the NLL over a fine grid (to the grid's resolution)
    z = np.log(probs / (1 - probs))
    grid = np.exp(np.arange(np.log(0.9), np.log(1.1), 0.001))  # T within 5 % of 1 (asserted above)
    nll = [np.mean(np.logaddexp(0, z / g) - labels * z / g) for g in grid]
    assert np.log(t) == pytest.approx(np.log(grid[int(np.argmin(nll))]), abs=0.001)


def test_fit_temperature_with_two_views_averages_tempered_probabilities():
    # test-time flip: inference tempers each view, then averages; the fit must model exactly that
    rng = np.random.default_rng(2)
    z1 = rng.normal(0, 3, 100_000)
    z2 = z1 + rng.normal(0, 1, len(z1))
    p_fake = (_sigmoid(z1 / 2.0) + _sigmoid(z2 / 2.0)) / 2
    labels = (rng.random(len(z1)) < p_fake).astype(int)
    views = np.stack([_sigmoid(z1), _sigmoid(z2)], axis=1)
    t = fit_temperature(labels, views)
    assert t == pytest.approx(2.0, rel=0.05)
    inside = (np.abs(z1) < 13) & (np.abs(z2) < 13)  # beyond, probabilities are clipped to 1e-6 from 0 and 1
    np.testing.assert_allclose(apply_temperature(views, t)[inside],
                               ((_sigmoid(z1 / t) + _sigmoid(z2 / t)) / 2)[inside], atol=1e-12)


def test_fit_temperature_needs_both_classes():
    with pytest.raises(calibrate.InputError, match="both present"):
        fit_temperature([1, 1, 1], [0.2, 0.6, 0.9])
    with pytest.raises(calibrate.InputError, match="do not match"):
        fit_temperature([0, 1], [0.2, 0.6, 0.9])


def test_apply_temperature_divides_the_logit():
    p = _sigmoid(np.array([-4.0, -1.0, 0.0, 2.0, 6.0]))
    np.testing.assert_allclose(apply_temperature(p, 2.0), _sigmoid(np.array([-2.0, -0.5, 0.0, 1.0, 3.0])), atol=1e-12)
    np.testing.assert_allclose(apply_temperature(p, 1.0), p, atol=1e-12)
    # undoing a temperature: T then 1/T gives the probabilities back
    np.testing.assert_allclose(apply_temperature(apply_temperature(p, 3.0), 1 / 3.0), p, atol=1e-12)
    # saturated probabilities are clipped to 1e-6 from 0 and 1 before the logit
    np.testing.assert_allclose(apply_temperature([0.0, 1.0], 1.0), [1e-6, 1 - 1e-6], atol=1e-15)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(calibrate.InputError, match="positive"):
            apply_temperature(p, bad)


def test_ece_on_known_bins():
    # one sample per bin: |0 - 0.05| + |0 - 0.15| + |1 - 0.85| + |1 - 0.95| over 4
    assert expected_calibration_error([0, 0, 1, 1], [0.05, 0.15, 0.85, 0.95]) == pytest.approx(0.1)
    # three in bin 3 (2 fakes at 0.3: |2 - 0.9|), p = 1.0 in the last bin (|1 - 1|): 1.1 / 4
    assert expected_calibration_error([0, 1, 1, 1], [0.3, 0.3, 0.3, 1.0]) == pytest.approx(0.275)
    # two bins: 0.3 and 0.35 share bin 0 of [0, 0.5): |1 - 0.65| / 3 plus bin 1: |0 - 0.9| / 3
    assert expected_calibration_error([1, 0, 0], [0.3, 0.35, 0.9], bins=2) == pytest.approx((0.35 + 0.9) / 3)


def test_ece_drops_after_fitting_on_over_confident_data():
    labels, probs = _sample(3.0, seed=3)
    before = expected_calibration_error(labels, probs)
    after = expected_calibration_error(labels, apply_temperature(probs, fit_temperature(labels, probs)))
    assert before > 0.1 and after < 0.01


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_reliability_plot_writes_a_png_and_leaves_pyplot_alone(tmp_path):
    import matplotlib
    import matplotlib.pyplot as plt

    labels, probs = _sample(3.0, n=5000, seed=4)
    after = apply_temperature(probs, 3.0)
    figures, backend = plt.get_fignums(), matplotlib.get_backend()
    path = reliability_plot(labels, probs, after, tmp_path / "sub" / "reliability.png")
    assert path == tmp_path / "sub" / "reliability.png"
    assert _png_size(path) == (600, 700)  # PLOT_SIZE (6 x 7 inches) at 100 dpi
    img = cv2.imread(str(path))
    assert img.shape == (700, 600, 3) and img.std() > 10  # drawn, not blank
    assert plt.get_fignums() == figures and matplotlib.get_backend() == backend


# ------------------------------------------------------------------------------------ the command
def _crops(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, 3))
    return np.clip(base + rng.normal(0, 40, (n, 224, 224, 3)), 0, 255).astype(np.uint8)


def _tamed_detector(random_model_dir: Path, folder: Path, crops: np.ndarray) -> Path:
    """A copy of the random detector whose classifier is scaled and shifted so that on `crops` its logit
    differences have median 0 and standard deviation 3 (random weights give differences of about 60, which
    saturate float32 probabilities)."""
    from safetensors.torch import load_file, save_file

    from deepfake.model import Network

    folder = shutil.copytree(random_model_dir, folder)
    z = calibrate.view_logits(Network.from_folder(folder, backend="torch"), crops, flip=False)[:, 0]
    state = load_file(str(folder / "model.safetensors"))
    c = 3.0 / z.std()
    state["classifier.weight"] = state["classifier.weight"] * c
    state["classifier.bias"] = state["classifier.bias"] * c - torch.tensor([0.0, c * float(np.median(z))])
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    return folder


def _synthetic_split(crops: np.ndarray, raw: np.ndarray, seed: int = 0):
    """The crops as a validation Dataset of two sources of different sizes, labelled by the network's own
    score as a network over-confident by a factor 2 would be (so there is a temperature to find)."""
    n = len(crops)
    rng = np.random.default_rng(seed)
    z = np.log(raw / (1 - raw))
    labels = (rng.random(n) < _sigmoid(z / 2.0)).astype(np.int64)
    sources = ["a" if i % 4 else "b" for i in range(n)]
    items = [data.Item(Path(f"x{i}.jpg"), int(labels[i]), sources[i], f"g{i}", "image") for i in range(n)]
    return data.Dataset(crops, np.full((n, 5, 2), np.nan, np.float32), np.zeros((n, 4), np.float32), labels,
                        np.arange(n), items)


def _patch_split(monkeypatch, ds, calls):
    def make_splits(dirs, holdout, fraction, seed):
        calls.append((list(dirs), list(holdout), fraction, seed))
        return {"train": [], "val": ds.items, "test": []}

    monkeypatch.setattr(data, "make_splits", make_splits)
    monkeypatch.setattr(data, "build_dataset", lambda items, fd, recipe, cache, frames, log=None: (ds, {}))
    monkeypatch.setattr(calibrate, "load_face_detector", lambda spec: None)


def test_calibrate_command_writes_temperature_band_and_threshold(tmp_path, monkeypatch, random_model_dir, capsys):
    from deepfake.model import Network, read_config

    torch.set_num_threads(1)  # two training runs may share this CPU

    crops = _crops(32, seed=0)
    folder = _tamed_detector(random_model_dir, tmp_path / "model", crops)
    net = Network.from_folder(folder, backend="torch")
    raw = net.predict(crops)
    assert 1e-5 < raw.min() and raw.max() < 1 - 1e-5  # not saturated: the test may work from probabilities
    ds = _synthetic_split(crops, raw)
    assert set(ds.labels[ds.sources == "b"]) == {0, 1}
    calls = []
    _patch_split(monkeypatch, ds, calls)
    argv = ["train_dir", "--holdout", "held", "--model", str(folder), "--threads", "1"]

    # dry run: the model folder is left as it is; the report goes to --out-dir
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert calibrate.main(argv + ["--dry-run", "--out-dir", str(tmp_path / "out")]) == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert calls[0] == ([Path("train_dir")], [Path("held")], 0.25, 0)  # the split make_config_dict records
    report = json.loads((tmp_path / "out" / "calibration.json").read_text())
    assert _png_size(tmp_path / "out" / "reliability.png") == (600, 700)

    # what the command must find, from the network's logits (test_view_logits_... checks they are its scores)
    z = calibrate.view_logits(net, crops, flip=False)
    w = calibrate.balanced_weights(ds.labels, ds.sources)  # the command weighs each source and class alike
    t = round(calibrate.fit_temperature_to_logits(ds.labels, z, w), 6)
    assert 1.0 < t < 10  # labels drawn as from a network over-confident by 2: T above 1, not a search bound
    unweighted = calibrate.fit_temperature_to_logits(ds.labels, z)
    assert fit_temperature(ds.labels, raw) == pytest.approx(unweighted, rel=1e-4)  # the same fit from probabilities
    calibrated = calibrate.temper(z, t)
    band, _ = choose_band(ds.labels, calibrated, ds.sources)
    band = Band(round(band.real_below, 6), round(band.fake_from, 6))
    assert report["temperature"] == t and report["previous_temperature"] == 1.0
    assert report["band"]["real_below"] == band.real_below and report["band"]["fake_from"] == band.fake_from
    # "before" from the same logits the command tempers (at T = 1), not from net.predict: the two float paths'
    # last bits differ by CPU (an AMX Xeon moved the ECE by 2e-6); 1e-6 is the report's rounding
    assert np.abs(calibrate.temper(z, 1.0) - raw).max() < 1e-4  # ... and they are the network's scores (float32)
    assert report["ece"]["before"]["overall"] == pytest.approx(
        expected_calibration_error(ds.labels, calibrate.temper(z, 1.0)), abs=1e-6)
    assert report["ece"]["after"]["overall"] == pytest.approx(
        expected_calibration_error(ds.labels, calibrated), abs=1e-6)
    out = capsys.readouterr().out
    assert f"temperature {t:.4f}" in out and "dry run: config.json unchanged" in out

    # for real: temperature, band and threshold in config.json; no report unless asked elsewhere
    assert calibrate.main(argv) == 0
    own = json.loads((folder / "config.json").read_text())["deepfake"]
    assert own["temperature"] == t and own["threshold"] == band.fake_from
    assert {k: own["band"][k] for k in ("real_below", "fake_from", "max_fpr", "max_fnr")} == {
        "real_below": band.real_below, "fake_from": band.fake_from, "max_fpr": 0.05, "max_fnr": 0.1}
    counts = band_counts(ds.labels, calibrated, ds.sources, band)
    assert own["band"]["at_validation"]["per_source"]["b"]["fake"]["counts"] == counts["per_source"]["b"]["fake"]["counts"]
    assert own["band"]["at_validation"]["overall"]["real"]["counts"] == counts["overall"]["real"]["counts"]
    assert "UNCERTAIN" in own["band"]["rule"] and "at most 0.05" in own["threshold_rule"]
    assert own["threshold_at_validation"]["fpr"] == round(counts["mean_over_sources"]["real"]["FAKE"], 4)
    assert own["threshold_at_validation"]["tpr"] == round(counts["mean_over_sources"]["fake"]["FAKE"], 4)
    assert (folder / "reliability.png").is_file() and (folder / "calibration.json").is_file()

    # the loaded detector gives the calibrated probabilities and the band the command chose
    cfg = read_config(folder)
    assert cfg.band == band and cfg.temperature == t
    reloaded = Network.from_folder(folder, backend="torch").predict(ds.crops)
    np.testing.assert_allclose(reloaded, calibrated, atol=1e-4)  # float32 forward passes in other batch sizes
    assert np.abs(reloaded - raw).max() > 0.05  # ... and not the uncalibrated scores

    # calibrating a calibrated model scores it at temperature 1 again: the same T, not T squared
    assert calibrate.main(argv + ["--dry-run", "--out-dir", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "calibration.json").read_text())
    assert again["temperature"] == pytest.approx(t, rel=1e-4) and again["previous_temperature"] == t


def test_view_logits_give_the_inference_scores_with_and_without_flip(tmp_path, random_model_dir):
    from deepfake.model import Network

    torch.set_num_threads(1)  # two training runs may share this CPU

    crops = _crops(6, seed=5)
    folder = _tamed_detector(random_model_dir, tmp_path / "model", crops)
    net = Network.from_folder(folder, backend="torch")
    one = calibrate.view_logits(net, crops, flip=False)
    two = calibrate.view_logits(net, crops, flip=True)
    assert one.shape == (6, 1) and two.shape == (6, 2)
    assert one.std() == pytest.approx(3.0, rel=1e-3)  # the tamed classifier: differences of a few units
    np.testing.assert_allclose(calibrate.temper(one, 1.0), net.predict(crops, flip=False), atol=1e-6)
    np.testing.assert_allclose(calibrate.temper(two, 1.0), net.predict(crops, flip=True), atol=1e-6)
    assert np.abs(two[:, 0] - two[:, 1]).max() > 1e-2  # the mirror is a different view
    # the other way round: probabilities from the logits, tempered, are what a config's temperature gives
    if hasattr(net.config, "temperature"):
        import dataclasses

        net.config = dataclasses.replace(net.config, temperature=2.5)
        np.testing.assert_allclose(calibrate.temper(two, 2.5), net.predict(crops, flip=True), atol=1e-6)
        np.testing.assert_allclose(calibrate.view_logits(net, crops, flip=True), two, atol=1e-5)  # T not in z


def test_calibrate_subcommand_arguments_and_a_bad_folder(tmp_path, random_model_dir, capsys):
    parser = argparse.ArgumentParser()
    calibrate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["calibrate", "d1", "d2", "--model", "m"])
    assert (args.dirs, args.model, args.holdout) == ([Path("d1"), Path("d2")], Path("m"), [])
    assert (args.max_fpr, args.max_fnr, args.seed, args.heldout_fraction) == (0.05, 0.10, None, None)
    assert (args.cache, args.out_dir, args.dry_run, args.func) == (data.DEFAULT_CACHE, None, False, calibrate.cmd_calibrate)
    missing = tmp_path / "missing"
    assert calibrate.main([str(missing), "--model", str(random_model_dir), "--threads", "1",
                           "--face-detector", "haar"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {missing} is not a folder"]


def test_balanced_weights_make_every_source_and_class_weigh_the_same():
    from deepfake.train.calibrate import balanced_weights

    w = balanced_weights([0, 1, 1, 1, 0, 0], ["a", "a", "a", "a", "b", "b"])
    np.testing.assert_allclose(w, [1, 1 / 3, 1 / 3, 1 / 3, 0.5, 0.5])
    # A weighted fit ignores how many copies one (source, class) has: tripling a block leaves T unchanged.
    from deepfake.train.calibrate import fit_temperature_to_logits

    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-z / 2))).astype(int)
    s = np.where(np.arange(400) < 200, "a", "b")
    t1 = fit_temperature_to_logits(y, z, balanced_weights(y, s))
    keep = np.concatenate([np.arange(400), np.flatnonzero((s == "b") & (y == 1)).repeat(2)])
    t3 = fit_temperature_to_logits(y[keep], z[keep], balanced_weights(y[keep], s[keep]))
    assert t3 == pytest.approx(t1, rel=1e-5)
