"""Calibrate a trained detector on its validation split: temperature scaling, then the FAKE/UNCERTAIN/REAL band.

`calibrate` rebuilds the validation split the model was trained with (as `threshold` does), scores its face
crops with the raw network (temperature 1), fits one temperature T (probabilities become softmax(logits / T);
each source and class weighs the same in the fit),
chooses the band (deepfake/band.py) on the calibrated probabilities, and writes T, the band and the threshold
(= the band's FAKE bound) into config.json, with reliability.png and calibration.json beside it.
Also runnable alone: python -m deepfake.train.calibrate DIR ... --model MODEL_DIR [--dry-run].
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..band import Band, band_counts, band_rule, choose_band
from ..errors import InputError, clear_errors
from ..faces import load_face_detector
from ..files import CONFIG_FILE
from ..model import Network
from . import data
from .train import per_source_auc, threshold_rule

# Probabilities are clipped to this distance from 0 and 1 before taking their logit (a saturated float32
# softmax gives exactly 0 or 1).
CLIP = 1e-6
# Temperatures searched: log T in these bounds (T from about 0.007 to 148).
LOG_T_BOUNDS = (-5.0, 5.0)
BATCH = 64  # crops per forward pass while scoring the validation split (as `threshold`)
PLOT_SIZE = (6.0, 7.0)  # inches; at PLOT_DPI: 600 x 700 pixels
PLOT_DPI = 100
RELIABILITY_FILE = "reliability.png"
CALIBRATION_FILE = "calibration.json"


# ------------------------------------------------------------------------------------ temperature scaling
def _logits(probs) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), CLIP, 1 - CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warning for large |z|


def temper(logits, temperature: float) -> np.ndarray:
    """Fake probabilities from logit differences z = logit_fake - logit_real at temperature T: sigmoid(z / T),
    which for two classes is softmax(logits / T)[fake]. A 2-D input (n, views) holds each view's z (test-time
    flip: the crop and its mirror); the result is the mean over views of their tempered probabilities, as
    inference averages them."""
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise InputError(f"The temperature must be a positive number, got {temperature}.")
    q = _sigmoid(np.asarray(logits, dtype=np.float64) / t)
    return q.mean(axis=1) if q.ndim == 2 else q


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """Each probability as the network would give it with its logits divided by `temperature`:
    sigmoid(logit(p) / T) (2-D (n, views): averaged over views, as temper). p is clipped to [1e-6, 1 - 1e-6]
    first, so a saturated float32 probability loses its logit beyond +-13.8: the command scores logits."""
    return temper(_logits(probs), temperature)


def _nll(y: np.ndarray, z: np.ndarray, t: float, w: np.ndarray | None = None) -> float:
    """Mean (weighted by w) binary cross-entropy of sigmoid(z / t) (z (n,) or (n, views), views averaged in
    probability)."""
    if z.ndim == 1:  # closed form, exact for large |z|: softplus(a) - y * a
        a = z / t
        return float(np.average(np.logaddexp(0.0, a) - y * a, weights=w))
    q = np.clip(_sigmoid(z / t).mean(axis=1), 1e-15, 1 - 1e-15)
    return float(-np.average(y * np.log(q) + (1 - y) * np.log1p(-q), weights=w))


def balanced_weights(labels, sources) -> np.ndarray:
    """One weight per crop such that every (source, class) present weighs the same in total: the validation
    crops are mostly video frames of fakes, and a fit weighted per crop would calibrate to that mix."""
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(sources).astype(str).ravel()
    keys = np.char.add(np.char.add(s, "|"), y.astype(str))
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def fit_temperature_to_logits(labels, logits, weights=None) -> float:
    """The temperature T > 0 minimising the binary negative log-likelihood of temper(logits, T) on these
    labels (1 = fake); logits: logit differences, (n,) or (n, views). A bounded search over log T
    (LOG_T_BOUNDS): T stays positive and the search is as fine for T = 0.5 as for T = 2. weights: per sample
    (default equal)."""
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels, dtype=np.float64).ravel()
    z = np.asarray(logits, dtype=np.float64)
    if z.shape[0] != len(y) or z.ndim not in (1, 2):
        raise InputError(f"labels ({len(y)}) and scores {z.shape} do not match.")
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise InputError("Fitting a temperature needs labels 0 (real) and 1 (fake), both present.")
    if not np.isfinite(z).all():
        raise InputError("Scores for a temperature fit must be finite.")
    w = None if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    res = minimize_scalar(lambda u: _nll(y, z, float(np.exp(u)), w), bounds=LOG_T_BOUNDS, method="bounded",
                          options={"xatol": 1e-7})
    return float(np.exp(res.x))


def fit_temperature(labels, probs) -> float:
    """fit_temperature_to_logits on the logits of fake probabilities at temperature 1 ((n,) or (n, views);
    clipped to [1e-6, 1 - 1e-6])."""
    return fit_temperature_to_logits(labels, _logits(probs))


def expected_calibration_error(labels, probs, bins: int = 10) -> float:
    """ECE over `bins` equal-width bins of [0, 1]: sum over bins of (share of samples) x |observed share of
    fakes - mean predicted probability|. p = 1 falls into the last bin."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if len(y) != len(p) or not len(p):
        raise InputError(f"labels ({len(y)}) and probabilities ({len(p)}) must be as many, and not none.")
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.bincount(b, weights=y, minlength=bins) - np.bincount(b, weights=p, minlength=bins)
    return float(np.abs(gap).sum() / len(p))  # sum_b n_b/N * |mean y_b - mean p_b| = sum_b |sum(y - p)_b| / N


def reliability_plot(labels, before, after, path: Path, bins: int = 10, title: str = "") -> Path:
    """Reliability diagram (observed share of fakes against predicted probability, equal-width bins, by
    sklearn's calibration_curve) before and after calibration, with the diagonal and each ECE in the legend;
    below it, how many crops fall in each probability bin. A PNG of PLOT_SIZE at PLOT_DPI.
    Drawn on an Agg canvas of its own: pyplot's figure registry and backend are left untouched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.calibration import calibration_curve

    y = np.asarray(labels).ravel()
    fig = Figure(figsize=PLOT_SIZE, dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    edges = np.linspace(0, 1, bins + 1)
    for name, p, style in (("before", before, "o--"), ("after", after, "s-")):
        p = np.asarray(p, dtype=np.float64).ravel()
        frac, conf = calibration_curve(y, p, n_bins=bins, strategy="uniform")
        ece = expected_calibration_error(y, p, bins)
        top.plot(conf, frac, style, label=f"{name} calibration (ECE {ece:.3f})")
        bottom.hist(p, bins=edges, histtype="step", lw=1.5, label=name)
    top.plot([0, 1], [0, 1], "k:", lw=1, label="perfectly calibrated")
    top.set(ylabel="observed share of fakes", xlim=(0, 1), ylim=(0, 1),
            title=title or f"Reliability on validation face crops (n={len(y)})")
    top.legend(fontsize=8, loc="upper left")
    bottom.set(xlabel="predicted fake probability", ylabel="crops", yscale="log")
    bottom.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=PLOT_DPI)
    return path


# ------------------------------------------------------------------------------------ the command
def view_logits(net, crops, flip: bool) -> np.ndarray:
    """(n, views) logit differences z = logit_fake - logit_real of the network itself (no temperature, no
    softmax: exact where a float32 probability would be 0 or 1). One view, or the crop and its mirror image
    when the model uses test-time flip; temper(z, T) is then what Network.predict gives at temperature T.
    The crops are preprocessed by the Network, as at inference."""
    if net.config.num_classes != 2:
        raise InputError(f"Temperature scaling needs a two-class detector, not {net.config.num_classes} classes.")
    fake = net.config.fake_index
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), BATCH):
            x = net.preprocess(crops[i:i + BATCH])
            views = [x, x.flip(-1)] if flip else [x]  # the mirror of Network.probabilities (mirror_mean)
            logits = [net.net(v.to(net.device, memory_format=torch.channels_last)).float().cpu() for v in views]
            out.append(torch.stack([lg[:, fake] - lg[:, 1 - fake] for lg in logits], dim=1).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 2 if flip else 1))


def _rounded(value, digits: int = 4):
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, digits)
    return value


def _ece_by_source(labels, probs, sources) -> dict:
    out = {str(s): expected_calibration_error(labels[sources == s], probs[sources == s]) for s in np.unique(sources)}
    out["overall"] = expected_calibration_error(labels, probs)
    return out


def _share(entry: dict, band: str) -> str:
    return "    -" if entry["shares"] is None else f"{entry['shares'][band]:5.3f}"


def band_table(counts: dict) -> str:
    """The band counts as a text table: per source, pooled and mean over sources; counts (shares)."""
    head = (f"{'source':12} {'real':>6} {'FAKE':>12} {'UNCERTAIN':>12} {'REAL':>12}   {'fake':>6} {'FAKE':>12} "
            f"{'UNCERTAIN':>12} {'REAL':>12}")
    rows = [head]

    def cells(e):
        return "".join(f" {e['counts'][b]:5d} ({_share(e, b)})" for b in ("FAKE", "UNCERTAIN", "REAL"))

    for name, v in list(counts["per_source"].items()) + [("overall", counts["overall"])]:
        rows.append(f"{name:12} {v['real']['n']:6d}{cells(v['real'])}   {v['fake']['n']:6d}{cells(v['fake'])}")
    mean = counts["mean_over_sources"]

    def means(m):
        return "".join(f" {'':5} ({'    -' if m is None else format(m[b], '5.3f')})"
                       for b in ("FAKE", "UNCERTAIN", "REAL"))

    rows.append(f"{'mean/source':12} {'':6}{means(mean['real'])}   {'':6}{means(mean['fake'])}")
    return "\n".join(rows)


def _validation_split(args, net) -> tuple[data.Dataset, dict]:
    """The validation crops of the model's own split (data.validation_dataset), and how they were found."""
    fd = load_face_detector(data.face_detector_spec(args.face_detector))
    ds, info = data.validation_dataset(args, net.config, fd)
    if not len(ds.labels):
        raise InputError("The validation split has no face crops: nothing to calibrate on.")
    return ds, info


def calibrate_scores(labels, logits, sources, max_fpr: float, max_fnr: float) -> dict:
    """Everything the command reports, from validation logits (n, views): temperature (rounded to 6 places,
    as written), probabilities before and after, the band (bounds rounded to 6 places; its counts are of the
    rounded band), AUC and ECE per source."""
    y, z, s = np.asarray(labels), np.asarray(logits, dtype=np.float64), np.asarray(sources).astype(str)
    w = balanced_weights(y, s)
    t = round(fit_temperature_to_logits(y, z, w), 6)
    before, after = temper(z, 1.0), temper(z, t)  # before: Network.predict's score at temperature 1
    band, found = choose_band(y, after, s, max_fpr, max_fnr)
    band = Band(round(band.real_below, 6), round(band.fake_from, 6))
    return {"temperature": t, "before": before, "after": after, "band": band, "band_search": found,
            "counts": band_counts(y, after, s, band), "rule": band_rule(max_fpr, max_fnr),
            "nll": {"before": _nll(y, z, 1.0, w), "after": _nll(y, z, t, w)},  # balanced, as fitted
            "auc": per_source_auc(y, before, s),  # a temperature keeps the order: the same AUC after
            "ece": {"before": _ece_by_source(y, before, s), "after": _ece_by_source(y, after, s)}}


def _print_report(r: dict, labels, sources, old_t: float, max_fpr: float, max_fnr: float) -> None:
    y, s = np.asarray(labels), np.asarray(sources).astype(str)
    band, found, ece = r["band"], r["band_search"], r["ece"]
    print(f"temperature {r['temperature']:.4f} (was {old_t:g}); validation NLL {r['nll']['before']:.4f} -> "
          f"{r['nll']['after']:.4f}")
    print(f"{'source':12} {'crops':>6} {'real':>6} {'fake':>6} {'AUC':>6} {'ECE before':>11} {'ECE after':>10}")
    for name in sorted(k for k in ece["before"] if k != "overall"):
        m = s == name
        auc = f"{r['auc'][name]:6.3f}" if name in r["auc"] else "     -"
        print(f"{name:12} {int(m.sum()):6d} {int((y[m] == 0).sum()):6d} {int((y[m] == 1).sum()):6d} {auc} "
              f"{ece['before'][name]:11.4f} {ece['after'][name]:10.4f}")
    print(f"{'overall':12} {len(y):6d} {int((y == 0).sum()):6d} {int((y == 1).sum()):6d} {'':6} "
          f"{ece['before']['overall']:11.4f} {ece['after']['overall']:10.4f}")
    print(f"band: REAL below {band.real_below:.4f}, UNCERTAIN between, FAKE from {band.fake_from:.4f}"
          + (" (collapsed: the budgets' bounds crossed, one cut midway)" if found["collapsed"] else ""))
    print(f"  found: FAKE from {found['fake_from_found']:.4f} (mean real called FAKE {found['fpr']:.3f}, budget "
          f"{max_fpr:g}), REAL below {found['real_below_found']:.4f} (mean fake called REAL {found['fnr']:.3f}, "
          f"budget {max_fnr:g})")
    print("validation face crops per band, count (share of the class):")
    print(band_table(r["counts"]))
    print(f"rule: {r['rule']}")


def _write_config(folder: Path, raw: dict, r: dict, band_entry: dict, max_fpr: float) -> None:
    """temperature, band and threshold (= the band's FAKE bound, so code that still reads `threshold` calls
    FAKE exactly where the band does) into config.json, with the threshold's rule and rates restated."""
    band = r["band"]
    if not 0.0 < band.fake_from < 1.0:  # DetectorConfig refuses such a threshold: say why here instead
        raise InputError(f"The band's FAKE bound is {band.fake_from:g}: the validation split cannot support the "
                         f"rule (max-fpr {max_fpr:g}); config.json unchanged.")
    own = raw["deepfake"]
    own["temperature"] = r["temperature"]
    own["band"] = band_entry
    own["threshold"] = band.fake_from
    own["threshold_rule"] = threshold_rule(max_fpr) + ", after temperature scaling"
    real, fake = r["counts"]["mean_over_sources"]["real"]["FAKE"], r["counts"]["mean_over_sources"]["fake"]["FAKE"]
    own["threshold_at_validation"] = {"balanced_accuracy": round((fake + 1 - real) / 2, 4), "fpr": round(real, 4),
                                      "tpr": round(fake, 4)}
    (folder / CONFIG_FILE).write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")


def run_calibrate(args) -> int:
    folder = Path(args.model)
    # A dry run leaves the model folder as it is: its plot and report go to --out-dir, or nowhere.
    out_dir = Path(args.out_dir) if args.out_dir else (None if args.dry_run else folder)
    torch.set_num_threads(max(1, int(args.threads)))
    net = Network.from_folder(folder, backend="torch")
    raw = net.config.raw  # config.json as read by from_folder; updated and written back below
    # The temperature the config holds now (1 before any calibration). Scoring reads the network's logits, so
    # a stored temperature never enters the fit: calibrating twice fits the same T, not its square.
    old_t = float(getattr(net.config, "temperature", 1.0))
    ds, split = _validation_split(args, net)
    flip = bool(net.config.test_time_flip)
    y, sources = ds.labels, ds.sources
    r = calibrate_scores(y, view_logits(net, ds.crops, flip), sources, args.max_fpr, args.max_fnr)
    print(f"validation split: {split['items']} items, {split['crops']} face crops (seed {split['seed']}, held-out "
          f"fraction {split['heldout_fraction']}); test-time flip {'on' if flip else 'off'}")
    _print_report(r, y, sources, old_t, args.max_fpr, args.max_fnr)

    band_entry = {**r["band"].to_dict(), "rule": r["rule"], "max_fpr": float(args.max_fpr),
                  "max_fnr": float(args.max_fnr), "at_validation": _rounded(r["counts"])}
    if out_dir is not None:
        t = r["temperature"]
        reliability_plot(y, r["before"], r["after"], out_dir / RELIABILITY_FILE,
                         title=f"{folder.name}: validation face crops (n={len(y)}), T = {t:.3f}")
        report = {"model": folder.name, "temperature": t, "previous_temperature": old_t, "test_time_flip": flip,
                  "split": split, "nll": _rounded(r["nll"], 6),
                  "ece": {"bins": 10, "before": _rounded(r["ece"]["before"], 6),
                          "after": _rounded(r["ece"]["after"], 6)},
                  "auc": _rounded(r["auc"], 6), "band": band_entry, "band_search": _rounded(r["band_search"], 6)}
        (out_dir / CALIBRATION_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out_dir / RELIABILITY_FILE}, {out_dir / CALIBRATION_FILE}")
    if args.dry_run:
        print("dry run: config.json unchanged")
        return 0
    _write_config(folder, raw, r, band_entry, args.max_fpr)
    print(f"wrote {folder / CONFIG_FILE}")
    return 0


# ------------------------------------------------------------------------------------ command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The calibrate command's arguments (split arguments as the `threshold` command's)."""
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="the training folders (to rebuild the split)")
    p.add_argument("--holdout", nargs="*", type=Path, default=[], metavar="DIR",
                   help="labelled folders held apart entirely (split into validation and test halves)")
    p.add_argument("--heldout-fraction", type=float, default=None,
                   help="share of each source's identity groups held out of training (default: the model's)")
    p.add_argument("--seed", type=int, default=None, help="split seed (default: the model's)")
    p.add_argument("--face-detector", default=None,
                   help="YuNet ONNX path, 'yunet' (Hub) or 'haar' (default: the shared YuNet file if present)")
    p.add_argument("--model", required=True, type=Path, metavar="MODEL_DIR", help="detector folder to update")
    p.add_argument("--cache", type=Path, default=data.DEFAULT_CACHE, help="face-crop cache folder")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--max-fpr", type=float, default=0.05,
                   help="FAKE bound: mean share of real validation faces called FAKE at most this (default 0.05)")
    p.add_argument("--max-fnr", type=float, default=0.10,
                   help="REAL bound: mean share of validation fakes called REAL at most this (default 0.10)")
    p.add_argument("--out-dir", type=Path, default=None,
                   help=f"where {RELIABILITY_FILE} and {CALIBRATION_FILE} go (default: the model folder; with "
                        "--dry-run, not written unless this is given)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the temperature and band; leave the model folder unchanged")


# run_calibrate; bad folders or models end with one 'error:' line and exit code 2 (as the other commands)
cmd_calibrate = clear_errors(lambda args: run_calibrate(args))


DESCRIPTION = ("Fit a temperature on a detector's validation split, choose the FAKE / UNCERTAIN / REAL band on the "
               "calibrated probabilities, and write both into its config.json (with reliability.png and "
               "calibration.json).")


def register(subparsers) -> None:
    c = subparsers.add_parser("calibrate", help="temperature-scale a detector and choose its UNCERTAIN band",
                              description=DESCRIPTION)
    add_arguments(c)
    c.set_defaults(func=cmd_calibrate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepfake.train.calibrate", description=DESCRIPTION)
    add_arguments(parser)
    return cmd_calibrate(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
