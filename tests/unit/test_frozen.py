"""The frozen-signal check on hand-made rows: run lengths, limits, chunking, forced alarms."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.detect.alarms import AlarmRule
from anomaly.detect.frozen import FrozenCheck, FrozenStream

ROWS = np.array([[1, 5], [1, 5], [2, 5], [2, 5], [2, 6], [3, np.nan], [3, np.nan]], float)


def test_runs_by_hand_and_in_any_chunking():
    expected = np.array([[0, 1, 0, 1, 2, 0, 1], [0, 1, 2, 3, 0, 0, 0]]).T  # NaN breaks a run
    np.testing.assert_array_equal(FrozenStream(np.ones(2)).runs(ROWS), expected)
    for cuts in ([1, 6], [3, 1, 3], [1] * 7):
        stream, edges = FrozenStream(np.ones(2)), np.cumsum([0, *cuts])
        parts = [stream.runs(ROWS[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        np.testing.assert_array_equal(np.vstack(parts), expected)


def test_limit_is_twice_the_longest_normal_run_and_at_least_a_second():
    check = FrozenCheck(rate_hz=2.0).fit([ROWS, ROWS[3:6]])
    np.testing.assert_array_equal(check.limit_rows_, [4.0, 6.0])  # max(2 rows, 2 x (2, 3))
    gaps = FrozenCheck(rate_hz=2.0, gap_rows=10).fit([ROWS])  # a filled gap is no frozen sensor
    np.testing.assert_array_equal(gaps.limit_rows_, [11.0, 11.0])
    again = FrozenCheck.from_dict(check.to_dict())
    np.testing.assert_array_equal(again.limit_rows_, check.limit_rows_)
    flags = check.stream().feed(np.array([[0, 0]] * 8, float))
    assert flags[:, 0].tolist() == [False] * 4 + [True] * 4  # 4 equal to their predecessor
    assert flags[:, 1].tolist() == [False] * 6 + [True] * 2


@pytest.mark.parametrize("confirm_s", [0.0, 3.0])
def test_forced_rows_alarm_through_the_rules_confirmation(confirm_s):
    rule = AlarmRule(["a"], rate_hz=1.0, threshold="fixed:100", confirm_s=confirm_s)
    rule.center_, rule.spread_ = np.zeros(1), np.ones(1)
    rule.scale_, rule.arm_level_ = np.ones((1, 1)), np.ones(len(rule.arms))
    rule.threshold.fit([], 1.0)
    forced = np.zeros(10, bool)
    forced[4:] = True
    block = rule.stream().feed(np.zeros((10, 1)), np.ones(10, bool), forced)
    first = 4 + max(1, int(confirm_s)) - 1
    assert np.flatnonzero(block.flags).tolist() == list(range(first, 10))
    assert not rule.stream().feed(np.zeros((10, 1)), np.ones(10, bool)).flags.any()


def test_a_channel_constant_over_a_whole_normal_flight_is_never_judged():
    rows = np.column_stack([np.arange(50.0), np.full(50, 3.0)])  # a status column
    check = FrozenCheck(rate_hz=10.0).fit([rows[:20], rows])
    assert check.limit_rows_[1] == np.inf and check.limit_rows_[0] == 10
    assert not check.stream().feed(np.column_stack([np.arange(500.0), np.full(500, 3.0)])).any()


def test_no_forced_alarm_in_the_warm_up():
    rule = AlarmRule(["a"], rate_hz=1.0, threshold="fixed:100", warmup_s=6.0)
    rule.center_, rule.spread_ = np.zeros(1), np.ones(1)
    rule.scale_, rule.arm_level_ = np.ones((1, 1)), np.ones(len(rule.arms))
    rule.threshold.fit([], 1.0)
    block = rule.stream().feed(np.zeros((10, 1)), np.ones(10, bool), np.ones(10, bool))
    assert np.flatnonzero(block.flags).tolist() == [6, 7, 8, 9]
