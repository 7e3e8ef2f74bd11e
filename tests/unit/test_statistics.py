"""The study's statistics against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from anomaly.evaluate.statistics import (
    Interval,
    bootstrap_p,
    compare,
    compare_over_sizes,
    holm,
    interaction_model,
    mean_interval,
    sign_test,
    tost_p,
    two_way_bootstrap,
    verdict,
)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04, 0.30 -> x4, x3, x2, x1 with running maximum
    assert holm([0.04, 0.01, 0.30, 0.02]) == pytest.approx([0.08, 0.04, 0.30, 0.06])
    assert holm([0.5, 0.5]) == pytest.approx([1.0, 1.0])
    assert holm([0.01, 0.011]) == pytest.approx([0.02, 0.02])  # monotone: max(0.02, 0.011)


def test_tost_and_bootstrap_p_by_hand():
    boot = np.array([-0.05, -0.01, 0.0, 0.01, 0.02, 0.02, 0.03, 0.04, 0.06, 0.10])
    # each tail as (1 + count) / (B + 1), B = 10 draws
    # margin 0.05: 1 of 10 at or below -0.05, 2 of 10 at or above 0.05 -> max = 3 / 11
    assert tost_p(boot, 0.05) == pytest.approx(3 / 11)
    assert tost_p(boot, 0.2) == pytest.approx(1 / 11)  # never 0: 10 draws cannot say less
    # 3 of 10 at or below 0, 8 of 10 at or above 0 -> 2 * 4 / 11
    assert bootstrap_p(boot) == pytest.approx(8 / 11)
    assert bootstrap_p(np.full(4000, 0.1)) == pytest.approx(2 / 4001)


def test_two_way_bootstrap_matches_the_enumerated_distribution():
    """Two seeds x two flights: all 16 resamples are equally likely, so the bootstrap's
    quantiles converge to those of the enumeration, worked out by hand here."""
    D = np.array([[1.0, 3.0], [5.0, 7.0]])
    exact = [
        D[np.ix_(s, f)].mean()
        for s in itertools.product(range(2), repeat=2)
        for f in itertools.product(range(2), repeat=2)
    ]
    # seeds add 0, 2 or 4 to the mean, flights 1, 2 or 3: every mean from 1 to 7
    assert sorted(set(exact)) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    boot = two_way_bootstrap(D, n_boot=20000, seed=1)
    assert boot.mean() == pytest.approx(np.mean(exact), abs=0.05)
    for q in (0.1, 0.5, 0.9):
        assert np.quantile(boot, q) == pytest.approx(np.quantile(exact, q), abs=1.0)
    assert np.mean(boot == 1.0) == pytest.approx(1 / 16, abs=0.01)  # both seeds 0, flights 0


def test_compare_reads_interval_and_p_values_off_the_enumerated_distribution():
    """D[s, f] = -2 + 4 s + 2 f: the resampled mean is -2 + 4 mean(s) + 2 mean(f), every value
    from -2 to 4 with probabilities 1, 2, 3, 4, 3, 2, 1 in 16 (worked out by hand). Resampling
    seeds alone would give only -1, 1 and 3, and an interval of [-1, 3]."""
    D = np.array([[-2.0, 0.0], [2.0, 4.0]])
    c = compare(D, margin=3.0, n_boot=20000, seed=1)
    assert (c.diff.mean, c.diff.low, c.diff.high) == (1.0, -2.0, 4.0)
    assert c.p_value == pytest.approx(2 * 6 / 16, abs=0.02)  # P(mean <= 0) = (1 + 2 + 3) / 16
    assert c.p_equivalent == pytest.approx(3 / 16, abs=0.02)  # P(mean >= 3) = (2 + 1) / 16
    # an 80 % interval cuts 10 % from each tail: P(mean <= -2) = 1/16 < 0.1 <= P(mean <= -1) =
    # 3/16, and P(mean <= 2) = 13/16 < 0.9 <= P(mean <= 3) = 15/16
    c = compare(D, margin=3.0, level=0.8, n_boot=20000, seed=1)
    assert (c.diff.low, c.diff.high) == (-1.0, 3.0)


def test_mean_interval_reads_its_interval_off_the_resampled_means():
    """Two seeds, 0 and 1: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so
    a 40 % interval (quantiles 0.3 and 0.7) is [0.5, 0.5] and a 95 % one [0, 1]; the bootstrap
    (seed 0, 4,000 draws) lands on these, far from the edges where 1/4 and 3/4 sit."""
    narrow, wide = mean_interval([0.0, 1.0], level=0.4), mean_interval([0.0, 1.0], level=0.95)
    assert (narrow.mean, narrow.low, narrow.high) == (0.5, 0.5, 0.5)
    assert (wide.mean, wide.low, wide.high) == (0.5, 0.0, 1.0)
    assert mean_interval([0.0, np.nan, 1.0], level=0.95).n == 2  # NaNs dropped


def test_compare_calls_sides_and_equivalence():
    rng = np.random.default_rng(0)
    better = 0.2 + rng.normal(0, 0.01, (10, 40))
    c = compare(better, margin=0.03)
    assert c.diff.low > 0.15 and c.p_value < 0.01 and c.p_equivalent > 0.5
    same = rng.normal(0, 0.01, (10, 40))
    c = compare(same, margin=0.03)
    assert c.diff.low < 0 < c.diff.high and c.p_equivalent < 0.01
    assert verdict(c.diff, 0.9, 0.001, 0.03, "lstm", "transformer") == "equivalent within ±0.03"
    up = Interval(0.1, 0.05, 0.15, 10)
    assert verdict(up, 0.001, 0.9, 0.03, "lstm", "transformer") == "lstm better"
    down = Interval(-0.1, -0.15, -0.05, 10)
    assert verdict(down, 0.001, 0.9, 0.03, "lstm", "transformer") == "transformer better"
    assert verdict(up, 0.2, 0.2, 0.03, "lstm", "transformer") == "inconclusive"


def test_interaction_model_recovers_a_known_interaction():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(8):
        offset = rng.normal(0, 0.05)
        for size in (1, 2, 4, 8, 16):
            for arm in ("lstm", "transformer"):
                # LSTM ahead by 0.1 at one flight, the gap closing by 0.02 per doubling
                gap = (0.1 - 0.02 * np.log2(size)) if arm == "lstm" else 0.0
                y = 0.5 + 0.03 * np.log2(size) + gap + offset + rng.normal(0, 0.005)
                rows.append({"arm": arm, "train_flights": size, "seed": seed, "vus_pr": y})
    fit = interaction_model(pd.DataFrame(rows), "vus_pr", "lstm", "transformer")
    assert fit["arch"] == pytest.approx(0.1, abs=0.01) and fit["arch_p"] < 1e-6
    assert fit["interaction"] == pytest.approx(-0.02, abs=0.004) and fit["interaction_p"] < 1e-6


def test_interaction_model_says_why_it_is_not_fitted_on_one_size():
    rows = [
        {"arm": arm, "train_flights": 8, "seed": seed, "vus_pr": 0.5 + 0.01 * seed}
        for seed in range(3)
        for arm in ("lstm", "transformer")
    ]
    fit = interaction_model(pd.DataFrame(rows), "vus_pr", "lstm", "transformer")
    assert fit["error"] == "needs both arms at two sizes" and fit["cells"] == 6
    assert np.isnan(fit["arch"]) and np.isnan(fit["interaction_p"])


def test_the_overall_effect_is_the_mean_gap_over_the_sizes_in_a_balanced_design():
    rng = np.random.default_rng(1)
    rows = []
    for seed in range(6):
        for size in (1, 2, 4, 8):
            for arm in ("lstm", "transformer"):
                gap = (0.08 - 0.02 * np.log2(size)) if arm == "lstm" else 0.0
                y = 0.5 + gap + rng.normal(0, 0.01)
                rows.append({"arm": arm, "train_flights": size, "seed": seed, "vus_pr": y})
    frame = pd.DataFrame(rows)
    fit = interaction_model(frame, "vus_pr", "lstm", "transformer")
    by_arm = frame.groupby("arm")["vus_pr"].mean()
    # each arm's fitted line passes through its mean at the mean log2 size (1.5)
    assert fit["mean_effect"] == pytest.approx(by_arm["lstm"] - by_arm["transformer"], abs=1e-9)
    assert fit["mean_effect"] == pytest.approx(0.05, abs=0.01) and fit["mean_effect_p"] < 1e-6


def test_sign_test_by_hand():
    # 9 wins of 10: P(X >= 9) = 11/1024, two-sided 22/1024
    assert sign_test(9, 1) == pytest.approx(22 / 1024)
    assert sign_test(10, 0) == pytest.approx(2 / 1024)
    assert sign_test(3, 3) == pytest.approx(1.0)
    assert sign_test(0, 0) == 1.0


def test_a_stack_of_sizes_is_compared_on_its_mean_over_sizes_with_shared_draws():
    """Two sizes sharing seeds and flights: the stack's mean is the mean of the sizes' means,
    and a draw takes the same seeds and flights at both sizes, so a seed that is high at both
    moves both together (with independent draws 9 and 1 would mix, giving means 3 and 7)."""
    D = np.array([[[9.0], [1.0]], [[9.0], [1.0]]])  # sizes x seeds x one flight
    c = compare(D, margin=0.5, seed=3)
    assert c.diff.mean == 5.0 and (c.seeds, c.flights) == (2, 1)
    boot = two_way_bootstrap(D, n_boot=2000, seed=3)
    assert set(np.unique(boot)) == {1.0, 5.0, 9.0}
    ragged = np.array([[[0.2, np.nan]], [[0.4, 0.6]]])  # a flight missing at the first size
    assert compare(ragged, margin=0.5).diff.mean == pytest.approx((0.2 + 0.5) / 2)


def test_the_trend_over_sizes_is_the_slope_per_doubling_by_hand():
    # per-size means -0.04, 0, +0.04 at 1, 2, 4 flights: +0.04 a doubling in every draw
    D = np.stack([np.full((3, 5), m) for m in (-0.04, 0.0, 0.04)])
    average, slope, p = compare_over_sizes(D, [1, 2, 4], 0.03, n_boot=200)
    # every draw agrees: the least p 200 draws support, 2 / 201 two-sided and 1 / 201 for TOST
    assert slope.mean == pytest.approx(0.04) and slope.low == pytest.approx(0.04)
    assert p == pytest.approx(2 / 201)
    assert average.diff.mean == pytest.approx(0.0, abs=1e-12)
    assert average.p_equivalent == pytest.approx(1 / 201)
    _, flat, p_flat = compare_over_sizes(np.zeros((3, 3, 5)) + 0.1, [1, 2, 4], 0.03, n_boot=200)
    assert flat.mean == pytest.approx(0.0) and p_flat == 1.0


def test_a_draw_that_leaves_a_size_empty_is_dropped_not_averaged_over_fewer_sizes():
    D = np.array([[[1.0], [1.0]], [[3.0], [np.nan]]])  # size 1 has seed 0 only
    boot = two_way_bootstrap(D, n_boot=4000, seed=0)
    assert set(np.unique(boot[np.isfinite(boot)])) == {2.0}  # never the 1.0 of size 0 alone
    assert np.mean(np.isnan(boot)) == pytest.approx(0.25, abs=0.03)  # both draws seed 1


def test_the_overall_verdict_holm_corrects_its_two_tests():
    from anomaly.evaluate.statistics import Comparison, Interval, overall_call

    trend = Interval(0.001, -0.01, 0.012, 10)
    every = Comparison(Interval(0.03, 0.004, 0.057, 10), 0.03, 0.4, 10, 20, 0.03)
    # alone, p = 0.03 would call the average; beside the trend's p = 0.5 it is 0.06
    text, h_trend, h_average, _ = overall_call(trend, 0.5, every, 0.03, "lstm", "transformer")
    assert (h_trend, h_average) == (0.5, 0.06)
    assert text == "inconclusive on average over the sizes"
    every.p_value = 0.01
    text, *_ = overall_call(trend, 0.5, every, 0.03, "lstm", "transformer")
    assert text == "lstm better on average over the sizes"
    text, *_ = overall_call(Interval(0.02, 0.01, 0.03, 10), 0.001, every, 0.03, "lstm", "t")
    assert text == "differs by size (lstm - t changes by +0.020 a doubling)"
    # equivalence too: TOST p = 0.03 alone would call it; beside the trend's 0.6 it is 0.06
    tight = Comparison(Interval(0.0, -0.01, 0.01, 10), 0.9, 0.03, 10, 20, 0.03)
    text, *_ = overall_call(trend, 0.6, tight, 0.03, "lstm", "transformer")
    assert text == "inconclusive on average over the sizes"
    tight.p_equivalent = 0.01
    text, *_ = overall_call(trend, 0.6, tight, 0.03, "lstm", "transformer")
    assert text == "equivalent within ±0.03 on average over the sizes"
