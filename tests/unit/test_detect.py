"""Thresholds and events on tiny hand-made arrays."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.detect.events import events_table, postprocess, runs
from anomaly.detect.pipeline import flight_relative, trailing_mean
from anomaly.detect.thresholds import Threshold


def test_quantile_threshold_fits_on_validation_scores():
    t = Threshold("quantile:0.5").fit(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert t.threshold_ == 3.0
    assert t.apply(np.array([2.9, 3.0, 3.1])).tolist() == [False, False, True]


def test_other_rules_and_round_trip():
    s = np.array([1.0, 2.0, 3.0])
    assert Threshold("max:2").fit(s).threshold_ == 6.0
    assert Threshold("zscore:1").fit(s).threshold_ == pytest.approx(2 + np.std(s))
    t = Threshold.from_dict(Threshold("quantile:0.9").fit(s).to_dict())
    assert t.threshold_ == pytest.approx(np.quantile(s, 0.9))


@pytest.mark.parametrize("rule", ["quantile", "bogus:1", "quantile:1.5", "zscore:x"])
def test_bad_rule_is_named(rule):
    with pytest.raises(ValueError, match="threshold rule"):
        Threshold(rule)


def test_unfitted_threshold_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        Threshold().apply(np.zeros(3))


def test_runs_and_postprocess():
    m = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert runs(m) == [(1, 2), (5, 5), (7, 9)]
    assert runs(postprocess(m, min_rows=2)) == [(1, 2), (7, 9)]
    assert runs(postprocess(m, merge_gap_rows=1)) == [(1, 2), (5, 9)]
    assert runs(postprocess(m, min_rows=4, merge_gap_rows=2)) == [(1, 9)]


def test_events_table_blames_top_channel():
    t = np.arange(6) * 0.5
    mask = np.array([0, 1, 1, 0, 0, 0], dtype=bool)
    scores = np.array([0, 5, 7, 0, 0, 0.0])
    contrib = np.tile([0.1, 0.7, 0.2], (6, 1))
    ev = events_table("f1", t, mask, scores, contrib, ["a", "b", "c"], top_k=2)
    assert ev.to_dict("records") == [
        {
            "flight_id": "f1",
            "start": 0.5,
            "end": 1.0,
            "duration_s": 0.5,
            "peak_score": 7.0,
            "top_channels": "b;c",
        }
    ]
    uniform = events_table("f1", t, mask, scores, np.full((6, 3), 1 / 3), ["a", "b", "c"])
    assert uniform["top_channels"].tolist() == [""]


def test_trailing_mean_is_causal():
    x = np.array([0, 0, 9, 0, 0.0])
    np.testing.assert_allclose(trailing_mean(x, 3), [0, 0, 3, 3, 3])
    np.testing.assert_allclose(trailing_mean(x, 1), x)


def test_flight_relative_divides_by_lagged_median():
    x = np.array([1.0, 1, 1, 1, 4, 4, 4, 4])
    rel = flight_relative(x, baseline_rows=3, lag_rows=1)
    # row 4 is judged against rows 1-3 (median 1); by row 6 the baseline has caught up (median 4)
    np.testing.assert_allclose(rel, [1, 1, 1, 1, 4, 4, 1, 1])
    np.testing.assert_allclose(flight_relative(x, 0, 1), x)


def test_flight_relative_is_causal_and_neutral_without_baseline():
    rng = np.random.default_rng(0)
    x = rng.random(50)
    y = x.copy()
    y[30:] *= 100
    np.testing.assert_array_equal(flight_relative(x, 10, 2)[:30], flight_relative(y, 10, 2)[:30])
    zeros_first = np.array([0.0, 0, 0, 2, 2])
    np.testing.assert_allclose(flight_relative(zeros_first, 2, 1), [1, 1, 1, 1, 2 / 1])
