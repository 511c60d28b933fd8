"""The FAKE / UNCERTAIN / REAL band: labels at its bounds, its validation, and the rule on constructed scores."""
import numpy as np
import pytest

from deepfake.band import (FAKE, NO_FACE, REAL, UNCERTAIN, Band, band_counts, band_rule, choose_band)
from deepfake.errors import InputError, ModelLoadError


def test_labels_at_and_around_the_bounds():
    band = Band(0.3, 0.7)
    cases = {0.0: REAL, 0.2999999: REAL, 0.3: UNCERTAIN, 0.5: UNCERTAIN, 0.6999999: UNCERTAIN, 0.7: FAKE,
             0.7000001: FAKE, 1.0: FAKE}
    assert {p: band.label(p) for p in cases} == cases
    assert band.label(None) == NO_FACE
    assert band.labels(list(cases)).tolist() == list(cases.values())
    assert band.label(np.float32(0.7)) == UNCERTAIN  # float32(0.7) is 0.69999999 as a double: no rounding up
    with pytest.raises(InputError, match="NaN"):
        band.label(float("nan"))
    with pytest.raises(InputError, match="NaN"):
        band.labels([0.5, float("nan")])


@pytest.mark.parametrize("real_below, fake_from, message", [
    (0.8, 0.2, r"real_below \(0.8\) must not be above fake_from \(0.2\)"),
    (-0.1, 0.5, "real_below must be between 0 and 1, got -0.1"),
    (0.5, 1.5, "fake_from must be between 0 and 1, got 1.5"),
    (float("nan"), 0.5, "real_below must be between 0 and 1, got nan"),
    (True, 0.5, "real_below must be a number"),
    ("0.2", 0.5, "real_below must be a number"),
])
def test_a_band_out_of_order_or_range_is_refused(real_below, fake_from, message):
    with pytest.raises(InputError, match=message):
        Band(real_below, fake_from)


def test_band_round_trips_through_its_dict_and_refuses_bad_config_values():
    band = Band(np.float32(0.25), 1)
    assert band.to_dict() == {"real_below": 0.25, "fake_from": 1.0}
    assert type(band.real_below) is float and type(band.fake_from) is float
    stored = dict(band.to_dict(), rule="...", max_fpr=0.05, at_validation={})  # the config's extra keys
    assert Band.from_dict(stored) == band
    bad = [([0.2, 0.5], "field 'band' must be an object"),
           ({"fake_from": 0.5}, "field 'band' is missing 'real_below'"),
           ({"real_below": 0.6, "fake_from": 0.5}, "field 'band' is invalid: .*must not be above"),
           ({"real_below": "low", "fake_from": 0.5}, "field 'band' is invalid: .*must be a number")]
    for value, message in bad:
        with pytest.raises(ModelLoadError, match="^config.json: " + message):
            Band.from_dict(value)
    with pytest.raises(ModelLoadError, match="^other.json: "):
        Band.from_dict(None, where="other.json")


def test_single_band_is_the_old_hard_cut():
    t = 0.558603
    band = Band.single(t)
    assert band.real_below == band.fake_from == t and band.is_single and not Band(0.2, 0.5).is_single
    p = np.concatenate([np.linspace(0, 1, 1001), [t, np.nextafter(t, 0), np.nextafter(t, 1)]])
    old = np.where(p >= t, FAKE, REAL)  # the rule before the band: FAKE when p >= threshold
    assert band.labels(p).tolist() == old.tolist() == [band.label(v) for v in p]
    assert UNCERTAIN not in band.labels(p)


def _two_sources():
    """Source a: 10 real, 10 fake; source b: 40 real, 5 fake (sizes differ, so per-source means and pooled
    shares disagree)."""
    a_real = [0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.90]
    a_fake = [0.30, 0.52, 0.56, 0.62, 0.66, 0.72, 0.76, 0.84, 0.94, 0.98]
    b_real = [round(0.01 * k, 2) for k in range(1, 39)] + [0.60, 0.80]
    b_fake = [0.42, 0.86, 0.92, 0.96, 0.99]
    labels = np.array([0] * 10 + [1] * 10 + [0] * 40 + [1] * 5)
    sources = np.array(["a"] * 20 + ["b"] * 45)
    return labels, np.array(a_real + a_fake + b_real + b_fake), sources


def test_choose_band_takes_each_budget_as_a_mean_over_sources():
    labels, scores, sources = _two_sources()
    band, at = choose_band(labels, scores, sources, max_fpr=0.05, max_fnr=0.10)
    # FAKE bound: mean over a and b of the share of real faces >= t at most 0.05. Just above 0.80 only a's
    # 0.90 is left: (1/10 + 0/40) / 2 = 0.05. Just below 0.80, b's 0.80 adds 1/40: 0.0625. The cut is the
    # midpoint of 0.80 and the next score up (a fake at 0.84). Pooled, 2 of 50 reals (0.04) would have been
    # within budget from just above 0.60 already (0.61).
    assert band.fake_from == pytest.approx(0.82, abs=1e-12)
    assert choose_band(labels, scores, np.zeros(len(scores)))[0].fake_from == pytest.approx(0.61, abs=1e-12)
    # REAL bound: mean share of fakes < t at most 0.10. Up to 0.42 only a's fake at 0.30 is below:
    # (1/10 + 0/5) / 2 = 0.05; from above 0.42, b's fake adds 1/5: 0.15. Midpoint of 0.40 and 0.42.
    assert band.real_below == pytest.approx(0.41, abs=1e-12)
    assert at["fpr"] == pytest.approx(0.05) and at["fnr"] == pytest.approx(0.05)
    assert at["collapsed"] is False and at["fpr_met"] and at["fnr_met"]
    assert at["fake_from_found"] == band.fake_from and at["real_below_found"] == band.real_below
    assert (at["max_fpr"], at["max_fnr"]) == (0.05, 0.10)
    # a looser FAKE budget lets b's 0.80 through too: (1/10 + 1/40) / 2 = 0.0625 <= 0.07 at every cut down
    # to just above b's 0.60, i.e. (0.60 + 0.62) / 2
    assert choose_band(labels, scores, sources, max_fpr=0.07)[0].fake_from == pytest.approx(0.61, abs=1e-12)
    assert choose_band(labels, scores, sources, max_fpr=0.06)[0].fake_from == pytest.approx(0.82, abs=1e-12)


def test_band_collapses_to_one_cut_when_the_bounds_cross():
    # one source, reals 0.05..0.50, fakes 0.55..1.00 (steps of 0.05); budgets of one face in ten each
    labels = np.array([0] * 10 + [1] * 10)
    scores = np.arange(1, 21) * 0.05
    band, at = choose_band(labels, scores, ["s"] * 20, max_fpr=0.1, max_fnr=0.1)
    # FAKE is allowed from 0.475 (real 0.50 called FAKE: 1/10), REAL up to 0.575 (fake 0.55 called REAL):
    # they cross, so every cut in [0.475, 0.575] meets both budgets; the band is the one cut midway.
    assert at["collapsed"] is True
    assert at["fake_from_found"] == pytest.approx(0.475) and at["real_below_found"] == pytest.approx(0.575)
    assert band == Band.single(band.fake_from) and band.fake_from == pytest.approx(0.525)
    assert at["fpr"] == 0.0 and at["fnr"] == 0.0  # measured at the cut used, not at the bounds found
    assert UNCERTAIN not in band.labels(scores)


def test_band_counts_per_source_overall_and_mean():
    labels, scores, sources = _two_sources()
    counts = band_counts(labels, scores, sources, Band(0.41, 0.82))

    def entry(fake, uncertain, real):
        n = fake + uncertain + real
        return {"n": n, "counts": {FAKE: fake, UNCERTAIN: uncertain, REAL: real},
                "shares": {FAKE: fake / n, UNCERTAIN: uncertain / n, REAL: real / n}}

    assert counts["per_source"] == {"a": {"real": entry(1, 1, 8), "fake": entry(3, 6, 1)},
                                    "b": {"real": entry(0, 2, 38), "fake": entry(4, 1, 0)}}
    assert counts["overall"] == {"real": entry(1, 3, 46), "fake": entry(7, 7, 1)}
    assert counts["mean_over_sources"]["real"] == pytest.approx({FAKE: 0.05, UNCERTAIN: 0.075, REAL: 0.875})
    assert counts["mean_over_sources"]["fake"] == pytest.approx({FAKE: 0.55, UNCERTAIN: 0.4, REAL: 0.05})


def test_sources_without_a_class_are_left_out_of_that_class_mean():
    # source c has fakes only: it cannot say how often real faces are called FAKE
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.9, 0.2, 0.95, 0.99])
    sources = np.array(["a", "a", "a", "c", "c"])
    band, at = choose_band(labels, scores, sources, max_fpr=0.5, max_fnr=0.5)
    # FAKE: only a's reals count, 1 of 2 at or above every cut in (0.1, 0.9]: the lowest is (0.1 + 0.2) / 2.
    # REAL: the mean over a (1 fake, 0.2) and c (0.95, 0.99): 0.5 once a's fake is below the cut, 0.75 once
    # c's 0.95 is too: the highest cut is (0.9 + 0.95) / 2. Pooled, 2 of 3 fakes would be 0.67 there.
    assert at["fake_from_found"] == pytest.approx(0.15) and at["real_below_found"] == pytest.approx(0.925)
    assert at["collapsed"] is True and band.real_below == band.fake_from == pytest.approx(0.5375)
    counts = band_counts(labels, scores, sources, Band(0.15, 0.5))
    assert counts["per_source"]["c"]["real"] == {"n": 0, "counts": {FAKE: 0, UNCERTAIN: 0, REAL: 0}, "shares": None}
    assert counts["mean_over_sources"]["real"] == {FAKE: 0.5, UNCERTAIN: 0.0, REAL: 0.5}  # a alone
    # a's fake (0.2) is UNCERTAIN, c's two are FAKE: each source weighs one half
    assert counts["mean_over_sources"]["fake"] == {FAKE: 0.5, UNCERTAIN: 0.5, REAL: 0.0}


def test_choose_band_refuses_what_it_cannot_measure():
    with pytest.raises(InputError, match="both real faces and fakes"):
        choose_band([1, 1], [0.2, 0.8], ["a", "a"])
    with pytest.raises(InputError, match="differ in length"):
        choose_band([0, 1], [0.2], ["a", "a"])
    with pytest.raises(InputError, match="NaN"):
        choose_band([0, 1], [0.2, float("nan")], ["a", "a"])
    with pytest.raises(InputError, match="between 0 and 1"):
        choose_band([0, 1], [0.2, 1.5], ["a", "a"])
    with pytest.raises(InputError, match="0 \\(real\\) or 1 \\(fake\\)"):
        choose_band([0, 2], [0.2, 0.3], ["a", "a"])
    with pytest.raises(InputError, match="max_fpr and max_fnr"):
        choose_band([0, 1], [0.2, 0.3], ["a", "a"], max_fpr=1.5)


def test_choose_band_is_vectorised_over_many_distinct_scores():
    """Tens of thousands of distinct scores (every one a candidate cut) give the exact quantile bounds."""
    rng = np.random.default_rng(0)
    n = 20_000
    real, fake = rng.permutation(n) / n, rng.permutation(n) / n  # each uniform on a grid of n values
    band, at = choose_band(np.r_[np.zeros(n), np.ones(n)], np.r_[real, fake], ["s"] * (2 * n), 0.05, 0.10)
    # scores k/n (k < n): 5 % of reals (1000) are >= 0.95, 10 % of fakes (2000) are < 0.1; cuts are midpoints
    assert band.fake_from == pytest.approx(0.95 - 0.5 / n) and at["fpr"] == pytest.approx(0.05)
    assert band.real_below == pytest.approx(0.1 - 0.5 / n) and at["fnr"] == pytest.approx(0.10)


def test_band_rule_is_one_sentence_with_both_budgets():
    rule = band_rule(0.05, 0.1)
    assert rule.endswith(".") and rule.count(". ") == 0
    assert "at most 0.05" in rule and "at most 0.1," in rule
    assert all(word in rule for word in (FAKE, REAL, UNCERTAIN, NO_FACE, "each weighted equally", "calibrated"))
    assert "at most 0.02" in band_rule(0.02, 0.2) and "at most 0.2," in band_rule(0.02, 0.2)
