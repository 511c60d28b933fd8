"""The decision band: a fake probability becomes FAKE, REAL or UNCERTAIN (NO_FACE without a face).

FAKE from `fake_from`, REAL below `real_below`, UNCERTAIN in between. `choose_band` sets both bounds on
validation scores by two error budgets, each a mean over sources (every source weighted equally, as the
threshold rule of training does): real faces called FAKE (max_fpr) and fakes called REAL (max_fnr).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError, ModelLoadError
from .files import CONFIG_FILE

FAKE, REAL, UNCERTAIN, NO_FACE = "FAKE", "REAL", "UNCERTAIN", "NO_FACE"
BANDS = (FAKE, UNCERTAIN, REAL)  # the labels a face with a probability can get, from high to low
# Shares are compared with the budgets with this slack, so that a mean like (1/8 + 0) / 2 is "at most 1/16".
_EPS = 1e-12


def _bound(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"Band {name} must be a number between 0 and 1, got {value!r}.")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise InputError(f"Band {name} must be between 0 and 1, got {value}.")
    return value


@dataclass(frozen=True)
class Band:
    """REAL below real_below, FAKE from fake_from, UNCERTAIN in [real_below, fake_from)."""
    real_below: float
    fake_from: float

    def __post_init__(self):
        real_below, fake_from = _bound("real_below", self.real_below), _bound("fake_from", self.fake_from)
        if real_below > fake_from:
            raise InputError(f"Band real_below ({real_below:g}) must not be above fake_from ({fake_from:g}).")
        object.__setattr__(self, "real_below", real_below)  # plain floats, whatever number type came in
        object.__setattr__(self, "fake_from", fake_from)

    @classmethod
    def single(cls, threshold: float) -> "Band":
        """The single cut of a config without a band: FAKE from threshold, REAL below it, no UNCERTAIN."""
        return cls(threshold, threshold)

    @property
    def is_single(self) -> bool:
        return self.real_below == self.fake_from

    def label(self, p: float | None) -> str:
        """FAKE, REAL or UNCERTAIN for a fake probability; NO_FACE for None (nothing was scored)."""
        if p is None:
            return NO_FACE
        p = float(p)
        if math.isnan(p):
            raise InputError("A fake probability is NaN: it cannot be given a label.")
        if p >= self.fake_from:
            return FAKE
        return REAL if p < self.real_below else UNCERTAIN

    def labels(self, probs) -> np.ndarray:
        """label() of each probability of an array (no None), as an array of strings."""
        p = np.asarray(probs, dtype=np.float64)
        if np.isnan(p).any():
            raise InputError("A fake probability is NaN: it cannot be given a label.")
        return np.where(p >= self.fake_from, FAKE, np.where(p < self.real_below, REAL, UNCERTAIN))

    def to_dict(self) -> dict:
        return {"real_below": self.real_below, "fake_from": self.fake_from}

    @classmethod
    def from_dict(cls, d, where: str = CONFIG_FILE) -> "Band":
        """The band of a config's `deepfake.band` (other keys, e.g. its rule and counts, are ignored)."""
        if not isinstance(d, dict):
            raise ModelLoadError(f"{where}: field 'band' must be an object with real_below and fake_from")
        for key in ("real_below", "fake_from"):
            if key not in d:
                raise ModelLoadError(f"{where}: field 'band' is missing '{key}'")
        try:
            return cls(d["real_below"], d["fake_from"])
        except InputError as exc:
            raise ModelLoadError(f"{where}: field 'band' is invalid: {exc}") from None


def _checked(labels, scores, sources) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel()
    s = np.asarray(sources).astype(str).ravel()
    if not (len(y) == len(p) == len(s)):
        raise InputError(f"labels, scores and sources differ in length ({len(y)}, {len(p)}, {len(s)}).")
    if not np.isin(y, (0, 1)).all():
        raise InputError("Labels must be 0 (real) or 1 (fake).")
    if np.isnan(p).any():
        raise InputError("Scores contain NaN.")
    if len(p) and (p.min() < 0.0 or p.max() > 1.0):
        raise InputError("Scores must be probabilities, between 0 and 1.")
    return y, p, s


def _candidates(p: np.ndarray) -> np.ndarray:
    """0, 1 and the midpoints between consecutive distinct scores: every distinct cut of these scores, each
    as far from the scores on both sides as it can be (as choose_threshold's candidates)."""
    u = np.unique(p)
    return np.unique(np.concatenate([[0.0, 1.0], (u[:-1] + u[1:]) / 2]))


def _mean_share(y, p, s, cls: int, cands: np.ndarray, below: bool) -> np.ndarray:
    """Per candidate cut t: the mean over sources having class `cls` of the share of that class with p < t
    (below) or p >= t (not below). One searchsorted per source, vectorised over all candidates."""
    shares = []
    for src in np.unique(s):
        v = np.sort(p[(s == src) & (y == cls)])
        if len(v):
            n_below = np.searchsorted(v, cands, side="left")  # how many scores are < t
            shares.append((n_below if below else len(v) - n_below) / len(v))
    return np.mean(shares, axis=0) if shares else np.full(len(cands), np.nan)


def choose_band(labels, scores, sources, max_fpr: float = 0.05,
                max_fnr: float = 0.10) -> tuple[Band, dict]:
    """band_rule(max_fpr, max_fnr) on validation scores: (band, what it rests on).

    fake_from: the lowest cut t at which the mean over sources with real faces of the share of real faces
    with p >= t is at most max_fpr. real_below: the highest cut t at which the mean over sources with fakes
    of the share of fakes with p < t is at most max_fnr. Cuts are 0, 1 and the midpoints between distinct
    scores. When the scores separate well enough that real_below > fake_from, every cut between them meets
    both budgets; the band collapses to one cut at their midpoint (the same margin in score from either
    bound) and the dict says so (collapsed True, with both bounds as found).

    The dict: fake_from_found, real_below_found (before any collapse), collapsed, fpr (mean share of real
    faces called FAKE at fake_from), fnr (mean share of fakes called REAL at real_below), fpr_met and fnr_met
    (False when even the extreme cut misses its budget), max_fpr, max_fnr."""
    y, p, s = _checked(labels, scores, sources)
    if not 0.0 <= max_fpr <= 1.0 or not 0.0 <= max_fnr <= 1.0:
        raise InputError(f"max_fpr and max_fnr must be between 0 and 1, got {max_fpr} and {max_fnr}.")
    if not (y == 0).any() or not (y == 1).any():
        raise InputError("Choosing a band needs both real faces and fakes among the validation scores.")
    cands = _candidates(p)  # ascending
    fpr = _mean_share(y, p, s, 0, cands, below=False)  # non-increasing in t
    fnr = _mean_share(y, p, s, 1, cands, below=True)  # non-decreasing in t
    ok_fpr = np.flatnonzero(fpr <= max_fpr + _EPS)
    ok_fnr = np.flatnonzero(fnr <= max_fnr + _EPS)  # never empty: no fake is below the cut 0
    i_fake = int(ok_fpr[0]) if len(ok_fpr) else len(cands) - 1
    i_real = int(ok_fnr[-1])
    fake_from, real_below = float(cands[i_fake]), float(cands[i_real])
    collapsed = real_below > fake_from
    band = Band.single((fake_from + real_below) / 2) if collapsed else Band(real_below, fake_from)
    if collapsed:  # the midpoint is not a candidate: measure the shares there
        one = np.array([band.fake_from])
        fpr_at = float(_mean_share(y, p, s, 0, one, below=False)[0])
        fnr_at = float(_mean_share(y, p, s, 1, one, below=True)[0])
    else:
        fpr_at, fnr_at = float(fpr[i_fake]), float(fnr[i_real])
    return band, {"fake_from_found": fake_from, "real_below_found": real_below, "collapsed": bool(collapsed),
                  "fpr": fpr_at, "fnr": fnr_at, "fpr_met": bool(len(ok_fpr)), "fnr_met": True,
                  "max_fpr": float(max_fpr), "max_fnr": float(max_fnr)}


def _tally(labels_of: np.ndarray) -> dict:
    counts = {b: int(np.sum(labels_of == b)) for b in BANDS}
    n = len(labels_of)
    return {"n": n, "counts": counts, "shares": {b: counts[b] / n for b in BANDS} if n else None}


def band_counts(labels, scores, sources, band: Band) -> dict:
    """How many real faces and fakes land in FAKE, UNCERTAIN and REAL: per source, pooled ('overall'), and
    the mean over sources of each share ('mean_over_sources', sources without that class left out, as in
    the rule). Each entry: {"real": {"n", "counts": {FAKE, UNCERTAIN, REAL}, "shares": {...} or None when
    n is 0}, "fake": {...}}."""
    y, p, s = _checked(labels, scores, sources)
    given = band.labels(p)
    per = {str(src): {"real": _tally(given[(s == src) & (y == 0)]), "fake": _tally(given[(s == src) & (y == 1)])}
           for src in np.unique(s)}
    mean = {}
    for cls in ("real", "fake"):
        shares = [v[cls]["shares"] for v in per.values() if v[cls]["n"]]
        mean[cls] = {b: float(np.mean([sh[b] for sh in shares])) for b in BANDS} if shares else None
    return {"per_source": per, "overall": {"real": _tally(given[y == 0]), "fake": _tally(given[y == 1])},
            "mean_over_sources": mean}


def band_rule(max_fpr: float = 0.05, max_fnr: float = 0.10) -> str:
    """The stated rule behind a band (for config.json, the model card and the Model tab)."""
    return (f"FAKE from the lowest probability at which the mean over validation sources (each weighted "
            f"equally) of the share of real faces called FAKE is at most {max_fpr:g}, REAL below the highest "
            f"probability at which the mean over sources of the share of fakes called REAL is at most "
            f"{max_fnr:g}, UNCERTAIN in between (one cut midway if the two cross), NO_FACE when no face is "
            f"found; on calibrated probabilities of the validation split's face crops.")
