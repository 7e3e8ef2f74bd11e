"""The frozen-signal check on hand-made rows: run lengths, limits, chunking, forced alarms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly.detect.alarms import AlarmRule
from anomaly.detect.frozen import FrozenCheck, FrozenStream

FITTED = ("limit_rows_", "low_", "high_")
ROWS = np.array([[1, 5], [1, 5], [2, 5], [2, 5], [2, 6], [3, np.nan], [3, np.nan]], float)


def test_runs_by_hand_and_in_any_chunking():
    expected = np.array([[0, 1, 0, 1, 2, 0, 1], [0, 1, 2, 3, 0, 0, 0]]).T  # NaN breaks a run
    np.testing.assert_array_equal(FrozenStream(np.ones(2)).runs(ROWS), expected)
    for cuts in ([1, 6], [3, 1, 3], [1] * 7):
        stream, edges = FrozenStream(np.ones(2)), np.cumsum([0, *cuts])
        parts = [stream.runs(ROWS[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        np.testing.assert_array_equal(np.vstack(parts), expected)


def test_limit_is_twice_the_longest_normal_run_and_at_least_a_second():
    extremes = np.array([[0, 0], [9, 9]], float)  # the runs of ROWS are not at an extreme
    check = FrozenCheck(rate_hz=2.0).fit([np.vstack([ROWS, extremes]), ROWS[3:6]])
    np.testing.assert_array_equal(check.limit_rows_, [4.0, 6.0])  # max(2 rows, 2 x (2, 3))
    gaps = FrozenCheck(rate_hz=2.0, gap_rows=10).fit([ROWS])  # a filled gap is no frozen sensor
    np.testing.assert_array_equal(gaps.limit_rows_, [11.0, 11.0])
    again = FrozenCheck.from_dict(check.to_dict())
    for k in ("limit_rows_", "low_", "high_"):
        np.testing.assert_array_equal(getattr(again, k), getattr(check, k))
    flags = check.stream().feed(np.array([[4, 4]] * 8, float))
    assert flags[:, 0].tolist() == [False] * 4 + [True] * 4  # 4 equal to their predecessor
    assert flags[:, 1].tolist() == [False] * 6 + [True] * 2


def test_a_saturated_channel_is_not_frozen():
    # a throttle at full power through a 3 s climb in one flight, idle in another: its runs at
    # 1.0 and 0.0 set no limit, and the extremes are those of both flights together
    climb = np.r_[np.linspace(0.2, 0.9, 20), np.ones(30), np.linspace(0.9, 0.3, 20)]
    glide = np.r_[np.linspace(0.5, 0.1, 20), np.zeros(40), np.linspace(0.1, 0.5, 20)]
    check = FrozenCheck(rate_hz=10.0).fit([climb[:, None], glide[:, None]])
    assert check.limit_rows_[0] == 10 and (check.low_[0], check.high_[0]) == (0.0, 1.0)
    # longer climbs and glides are no alarm, fed in one pass or in chunks
    for rest in (1.0, 0.0):
        longer = np.r_[np.linspace(0.2, 0.9, 20), np.full(300, rest)][:, None]
        assert not check.stream().feed(longer).any()
        stream = check.stream()
        assert not np.vstack([stream.feed(longer[a : a + 7]) for a in range(0, 320, 7)]).any()
    # a value held as long anywhere else alarms 1 s in
    stuck = check.stream().feed(np.r_[np.linspace(0.2, 0.9, 20), np.full(300, 0.9)][:, None])
    assert np.flatnonzero(stuck[:, 0])[0] == 19 + 10
    # a check saved before saturation was told apart loads and judges every value
    old = {k: v for k, v in check.to_dict().items() if k not in ("low_", "high_")}
    assert FrozenCheck.from_dict(old).stream().feed(np.ones((20, 1)))[-1, 0]


def test_an_extreme_touched_only_briefly_is_judged_like_any_value():
    # a surface command at its clip for 8 rows in a sharp turn (its other values never repeat)
    # does not rest there: the clip's run sets the limit, and held there longer (a stuck
    # surface the autopilot fights) it alarms
    turn = np.r_[np.linspace(-5.0, 20.0, 30), np.full(8, 22.9), np.linspace(20.0, -22.9, 30)]
    check = FrozenCheck(rate_hz=10.0).fit([turn[:, None]])
    assert np.isnan(check.high_[0]) and np.isnan(check.low_[0])  # -22.9 is touched once
    assert check.limit_rows_[0] == 14  # twice the 7 rows the clip repeated
    fight = check.stream().feed(np.r_[np.linspace(-5.0, 20.0, 30), np.full(100, 22.9)][:, None])
    assert np.flatnonzero(fight[:, 0])[0] == 30 + 14  # 14 rows equal to their predecessor


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
    # but a normal prefix shorter than a second that happens to hold still is no such column
    moving = np.column_stack([np.arange(50.0), np.arange(50.0) % 7])
    check = FrozenCheck(rate_hz=10.0).fit([moving, np.full((5, 2), 3.0)])
    assert check.limit_rows_.tolist() == [10, 10]


def test_a_saved_check_is_strict_json_and_loads_back():
    # "never" (a status column's limit) and "no rest" are null, not Infinity or NaN, which strict
    # JSON readers (jq, a browser, the MLflow UI) reject; files written with them still load
    rows = np.column_stack([np.arange(50.0), np.full(50, 3.0)])
    check = FrozenCheck(rate_hz=10.0).fit([rows])
    assert check.limit_rows_.tolist() == [10, np.inf] and np.isnan(check.low_[0])
    saved = json.dumps(check.to_dict(), allow_nan=False)
    older = json.dumps({**check.to_dict(), **{k: getattr(check, k).tolist() for k in FITTED}})
    assert "Infinity" in older and "NaN" in older
    for text in (saved, older):
        again = FrozenCheck.from_dict(json.loads(text))
        for k in FITTED:
            np.testing.assert_array_equal(getattr(again, k), getattr(check, k))


def test_no_forced_alarm_in_the_warm_up():
    rule = AlarmRule(["a"], rate_hz=1.0, threshold="fixed:100", warmup_s=6.0)
    rule.center_, rule.spread_ = np.zeros(1), np.ones(1)
    rule.scale_, rule.arm_level_ = np.ones((1, 1)), np.ones(len(rule.arms))
    rule.threshold.fit([], 1.0)
    block = rule.stream().feed(np.zeros((10, 1)), np.ones(10, bool), np.ones(10, bool))
    assert np.flatnonzero(block.flags).tolist() == [6, 7, 8, 9]
