"""The alarm rule, decision levels and events on tiny hand-made arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly.detect.alarms import AlarmRule
from anomaly.detect.events import EventBuilder, runs
from anomaly.detect.residuals import residual_stream
from anomaly.detect.thresholds import Threshold, cluster_peaks, rate_level
from anomaly.errors import UserError


def _rule(level: float = 1.0, **kw) -> AlarmRule:
    """A one-channel rule with a given normalisation (centre 0, scale 1) and decision level."""
    rule = AlarmRule(["a"], rate_hz=1.0, threshold=f"fixed:{level}", **kw)
    rule.center_, rule.spread_ = np.zeros(1), np.ones(1)
    rule.scale_ = np.ones((len(rule.smooth_rows), 1))
    rule.arm_level_ = np.ones(len(rule.arms))
    rule.threshold.fit([], 1.0)
    return rule


def _feed(rule: AlarmRule, z, chunks=None):
    z = np.asarray(z, dtype=float)[:, None]
    stream = rule.stream()
    cuts = chunks or [len(z)]
    out, start = [], 0
    for n in cuts:
        out.append(stream.feed(z[start : start + n], np.ones(n, bool)))
        start += n
    return (
        np.concatenate([b.statistic for b in out]),
        np.concatenate([b.flags for b in out]),
    )


def test_cusum_statistic_by_hand():
    # drift 0.5: S+ = max(0, S+ + z - 0.5), S- = max(0, S- - z - 0.5)
    z = [0, 1, 2, 0, -1, 3]
    stat, flags = _feed(_rule(drift=0.5), z)
    s_up = [0, 0.5, 2.0, 1.5, 0, 2.5]
    s_down = [0, 0, 0, 0, 0.5, 0]
    np.testing.assert_allclose(stat, np.maximum(s_up, s_down))
    assert flags.tolist() == [False, False, True, True, False, True]


def test_one_sided_tests_only_its_side():
    z = [0, -3, -3, 0, 2]
    up, _ = _feed(_rule(drift=0.5, sides="up"), z)
    down, _ = _feed(_rule(drift=0.5, sides="down"), z)
    np.testing.assert_allclose(up, [0, 0, 0, 0, 1.5])
    np.testing.assert_allclose(down, [0, 2.5, 5.0, 4.5, 2.0])


def test_confirmation_and_hold():
    z = [0, 1, 2, 0, -1, 3]  # statistic 0, 0.5, 2, 1.5, 0.5, 2.5 (above 1 on rows 2, 3, 5)
    _, confirmed = _feed(_rule(drift=0.5, confirm_s=2.0), z)
    assert confirmed.tolist() == [False, False, False, True, False, False]  # raised on row 3
    _, held = _feed(_rule(drift=0.5, merge_gap_s=1.0), z)
    assert held.tolist() == [False, False, True, True, True, True]  # row 4 held


def test_warmup_accumulates_nothing():
    stat, flags = _feed(_rule(drift=0.5, warmup_s=3.0), [5, 5, 5, 0, 2])
    np.testing.assert_allclose(stat, [0, 0, 0, 0, 1.5])
    assert not flags[:3].any() and flags[4]


@pytest.mark.parametrize("chunks", [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [3, 7], [9, 1]])
def test_chunked_feed_equals_one_pass(chunks):
    rng = np.random.default_rng(0)
    z = rng.normal(size=10) * 2
    rule = _rule(drift=0.3, smooth_s=[0.0, 3.0], merge_gap_s=2.0, baseline_s=4.0, baseline_lag_s=1)
    one = _feed(rule, z)
    many = _feed(rule, z, chunks)
    np.testing.assert_allclose(many[0], one[0], rtol=1e-12)
    np.testing.assert_array_equal(many[1], one[1])


def test_a_row_never_depends_on_later_rows():
    rng = np.random.default_rng(1)
    z = rng.normal(size=60)
    later = z.copy()
    later[30:] += 50.0
    rule = _rule(drift=0.5, smooth_s=[0.0, 5.0], baseline_s=10.0, merge_gap_s=3.0, confirm_s=2.0)
    a, b = _feed(rule, z), _feed(rule, later)
    np.testing.assert_array_equal(a[0][:30], b[0][:30])
    np.testing.assert_array_equal(a[1][:30], b[1][:30])
    assert b[1][30:].any()


def test_a_channel_is_judged_by_its_own_level():
    # channel b holds large normal surprises, channel a none: a shift in a must still show
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=4000), rng.normal(size=4000)
    b[::200] += 40.0
    val = [(np.column_stack([a, b]), np.ones(4000, bool))]
    rule = AlarmRule(["a", "b"], 10.0, "fa_per_hour:1", drift=0.5).fit(val)
    shifted = np.column_stack([rng.normal(size=300) + 3.0, rng.normal(size=300)])
    block = rule.stream().feed(shifted, np.ones(300, bool))
    assert block.flags.any() and block.channel[np.argmax(block.flags)] == 0


def test_channels_sides_and_time_scales_by_hand():
    # three channels: 'b' tested upwards only, 'a' and 'c' both ways; two time scales (the row,
    # a 2-row trailing mean); each CUSUM with its own level. Row by row, as Page wrote it
    z = np.array([[0, 0, 0], [-3, 1, 0], [2, -2, 1], [2, 0, -4], [0, 3, 0], [-1, 0, 0]], float)
    rule = AlarmRule(
        ["a", "b", "c"], 1.0, "fixed:1", drift=0.5, sides={"b": "up"}, smooth_s=[0.0, 2.0]
    )
    rule.center_, rule.spread_ = np.zeros(3), np.ones(3)
    rule.scale_ = np.ones((2, 3))
    # the smoothed CUSUMs get the low levels, so that they hold the statistic on some rows
    rule.arm_level_ = np.array([1.0 if j else 9.0 for _, _, j in rule.arms])
    rule.arm_level_ += np.arange(len(rule.arms)) / 10
    rule.threshold.fit([], 1.0)
    block = rule.stream().feed(z, np.ones(len(z), bool))
    smooth = [z, np.vstack([z[:1], (z[1:] + z[:-1]) / 2])]
    expected = np.zeros((len(z), 3))
    for a, (c, kind, j) in enumerate(rule.arms):
        s, sign = 0.0, 1.0 if kind == "up" else -1.0
        for t in range(len(z)):
            s = max(0.0, s + sign * smooth[j][t, c] - 0.5)
            expected[t, c] = max(expected[t, c], s / rule.arm_level_[a])
    assert [c for c, _, _ in rule.arms] == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    np.testing.assert_allclose(block.statistic, expected.max(axis=1))
    np.testing.assert_array_equal(block.channel, expected.argmax(axis=1))
    total = expected.sum(axis=1, keepdims=True)
    shares = np.divide(expected, total, out=np.full_like(expected, 1 / 3), where=total > 0)
    np.testing.assert_allclose(block.contributions, shares)


def test_rate_rule_keeps_its_false_alarm_rate_on_fresh_data():
    """Fitted on one hour of normal CUSUM traces, the level gives about the target rate on
    twenty fresh hours (within a factor of 3)."""
    rng = np.random.default_rng(3)
    rate_hz, per_hour = 10.0, 4.0

    def traces(hours):
        rule = _rule(drift=0.5)
        z = rng.normal(size=int(hours * 3600 * rate_hz))
        return [_feed(rule, z)[0]]

    level = rate_level(traces(1.0), 1.0, per_hour, merge_rows=0)
    fresh = traces(20.0)
    alarms = len(cluster_peaks(fresh, level, merge_rows=0))
    assert per_hour * 20 / 3 <= alarms <= per_hour * 20 * 3


def test_threshold_rules_and_round_trip():
    s = [np.array([1.0, 2.0, 3.0, 4.0, 100.0])]
    assert Threshold("quantile:0.5").fit(s, 1.0).threshold_ == 3.0
    assert Threshold("max:2").fit(s, 1.0).threshold_ == 200.0
    assert Threshold("zscore:1").fit(s, 1.0).threshold_ == pytest.approx(s[0].mean() + s[0].std())
    t = Threshold.from_dict(Threshold("quantile:0.9").fit(s, 1.0).to_dict())
    assert t.threshold_ == pytest.approx(np.quantile(s[0], 0.9))
    assert t.apply(np.array([0.0, 1000.0])).tolist() == [False, True]
    t.threshold_ = np.inf  # a rule made mute (tests do so to hear the frozen check alone)
    mute = json.loads(json.dumps(t.to_dict(), allow_nan=False))
    assert Threshold.from_dict(mute).threshold_ == np.inf  # strict JSON, read back as infinite


def test_a_statistic_that_never_rose_gets_level_0_and_a_warning(caplog):
    # drift 6 on white noise: the CUSUMs stay at 0 on validation; the level that data allows
    # is 0, and the user is told that no rate could be fitted
    rng = np.random.default_rng(0)
    val = [(rng.normal(size=(3000, 2)), np.ones(3000, bool)) for _ in range(3)]
    rule = AlarmRule(["a", "b"], 20.0, "fa_per_hour:0.5", drift=6.0).fit(val)
    assert rule.threshold.threshold_ == 0.0
    assert "never rose above 0" in caplog.text and "detect.drift" in caplog.text
    caplog.clear()
    AlarmRule(["a", "b"], 20.0, "fa_per_hour:0.5", drift=2.0).fit(val)
    assert "never rose" not in caplog.text


@pytest.mark.parametrize(
    "rule",
    ["quantile", "bogus:1", "quantile:1.5", "zscore:x", "fa_per_hour:0", "fixed:nan", "fixed:-1"],
)
def test_bad_rule_is_named(rule):
    with pytest.raises(UserError, match="threshold rule"):
        Threshold(rule)


@pytest.mark.parametrize("channels, smooth_s", [([], 0.0), (["a"], [])])
def test_a_rule_without_channels_or_time_scales_is_refused(channels, smooth_s):
    with pytest.raises(UserError, match="at least one residual channel and time scale"):
        AlarmRule(channels, 1.0, smooth_s=smooth_s)


def test_alarm_rule_round_trips_through_its_dict():
    rng = np.random.default_rng(4)
    val = [(rng.normal(size=(500, 2)), np.ones(500, bool))]
    rule = AlarmRule(["a", "b"], 10.0, smooth_s=[0.0, 1.0], sides={"a": "up"}).fit(val)
    again = AlarmRule.from_dict(rule.to_dict())
    x = rng.normal(size=(200, 2)) + 2
    fresh = np.ones(200, bool)
    np.testing.assert_array_equal(
        rule.stream().feed(x, fresh).statistic, again.stream().feed(x, fresh).statistic
    )


def test_a_rule_with_a_flight_baseline_round_trips_bit_for_bit_from_float32_residuals():
    # residuals come as float32; a spread fitted in float32 and loaded as float64 moved the
    # statistic by 5e-8
    rng = np.random.default_rng(5)
    val = [(rng.normal(size=(3000, 2)).astype(np.float32), np.ones(3000, bool))]
    rule = AlarmRule(["a", "b"], 10.0, "fa_per_hour:1", baseline_s=20.0).fit(val)
    again = AlarmRule.from_dict(json.loads(json.dumps(rule.to_dict())))
    x = (rng.normal(size=(600, 2)) * 0.05).astype(np.float32)  # a quiet flight: the floor
    x[400:] += 3
    fresh = np.ones(600, bool)
    np.testing.assert_array_equal(
        rule.stream().feed(x, fresh).statistic, again.stream().feed(x, fresh).statistic
    )


def test_a_residual_that_is_not_finite_is_refused_when_fitting():
    # one NaN made the centre NaN, the level 0 and every later statistic 0: no alarm at all
    rng = np.random.default_rng(6)
    r = rng.normal(size=(500, 2))
    r[123, 1] = np.nan
    with pytest.raises(ValueError, match="validation flight 2 of 2, row 123: a residual is not"):
        AlarmRule(["a", "b"], 10.0).fit([(r[:100], np.ones(100, bool)), (r, np.ones(500, bool))])
    stale = np.ones(500, bool)
    stale[123] = False  # a row without a fresh residual holds none to judge
    AlarmRule(["a", "b"], 10.0).fit(
        [(np.nan_to_num(r) + np.where(stale, 0, np.nan)[:, None], stale)]
    )


@pytest.mark.parametrize("seconds, rows", [(0.05, 0), (0.15, 2), (0.25, 2), (0.35, 4), (0.45, 4)])
def test_seconds_become_rows_to_the_nearest_a_half_to_even(seconds, rows):
    # saved rules keep seconds: another rounding would run an old model on other row counts
    # than its level was fitted with (README says this rule)
    rule = AlarmRule(["a"], 10.0, merge_gap_s=seconds, warmup_s=seconds)
    assert rule.merge_rows == rule.warmup_rows == rows


def test_runs():
    m = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert runs(m) == [(1, 2), (5, 5), (7, 9)]


def test_events_span_blocks_and_name_the_channel():
    b = EventBuilder("f1", ["a", "b", "c"])
    contrib = np.tile([0.1, 0.7, 0.2], (4, 1))
    t = np.arange(8) * 0.5
    started = b.add(
        t[:4],
        np.array([0, 0, 1, 1], bool),
        np.array([0, 0, 5, 6.0]),
        np.array([0, 0, 2, 1]),
        contrib,
    )
    assert [e["start"] for e in started] == [1.0]
    started = b.add(
        t[4:],
        np.array([1, 0, 1, 0], bool),
        np.array([7.0, 0, 2, 0]),
        np.array([1, 0, 0, 0]),
        contrib,
    )
    assert [e["start"] for e in started] == [3.0]
    events = b.finish()
    assert [(e["start"], e["end"], e["peak_score"], e["channel"]) for e in events] == [
        (1.0, 2.0, 7.0, "c"),
        (3.0, 3.0, 2.0, "a"),
    ]
    assert events[0]["top_channels"] == "b;c;a" and events[0]["duration_s"] == 1.0
    anonymous = EventBuilder("f2", ["score"], attribution=False)
    anonymous.add(t[:2], np.array([1, 1], bool), np.ones(2), np.zeros(2, int), np.ones((2, 1)))
    assert anonymous.finish()[0]["channel"] == "" and anonymous.finish()[0]["top_channels"] == ""


@pytest.mark.parametrize("size", [1, 3, 10])
def test_an_alarm_is_reported_as_it_stood_when_raised_whatever_the_read_size(size):
    # `anomaly watch` prints and appends what add() returns: the statistic on the alarm row, not
    # the largest one of whatever later rows the same read happened to bring
    t = np.arange(10) / 10
    flags = np.array([0, 0, 1, 1, 1, 1, 0, 0, 0, 0], bool)
    score = np.array([0, 0, 2, 5, 9, 3, 0, 0, 0, 0.0])
    b, raised = EventBuilder("f", ["a", "b"]), []
    for i in range(0, 10, size):
        j = slice(i, i + size)
        raised += b.add(t[j], flags[j], score[j], np.ones(10, int)[j], np.ones((10, 2))[j])
    assert raised == [{"flight_id": "f", "start": 0.2, "channel": "b", "peak_score": 2.0}]
    assert b.finish()[0]["peak_score"] == 9.0


def test_an_empty_block_leaves_an_open_alarm_open():
    b = EventBuilder("f1", ["a"])
    one, none = np.ones(2, bool), np.zeros(0, bool)
    b.add(np.array([0.0, 0.5]), one, np.ones(2), np.zeros(2, int), np.ones((2, 1)))
    b.add(np.zeros(0), none, np.zeros(0), np.zeros(0, int), np.zeros((0, 1)))
    b.add(np.array([1.0, 1.5]), one, np.ones(2), np.zeros(2, int), np.ones((2, 1)))
    assert [(e["start"], e["end"]) for e in b.finish()] == [(0.0, 1.5)]


@pytest.mark.parametrize("stride", [1, 4, 5, 8])
def test_flight_baseline_holds_at_any_score_stride(stride):
    # a flight flying 3 spreads off the fleet, noisier than it: judged against its own past,
    # it is centred whatever share of its rows gets a residual
    rng = np.random.default_rng(4)
    fresh = np.arange(4000) % stride == 0
    val = [(rng.normal(size=(4000, 1)), fresh)]
    rule = AlarmRule(["a"], 10.0, "fa_per_hour:1", baseline_s=20.0).fit(val)
    assert rule.fresh_every_ == stride
    flight = 3.0 + 5.0 * rng.normal(size=(3000, 1))
    z = rule.stream(decide=False).normalised(flight, fresh[:3000])[0]
    assert abs(np.nanmean(z[1000:])) < 0.3


def test_the_fresh_stride_is_saved_and_old_rules_load_as_stride_one():
    rng = np.random.default_rng(5)
    fresh = np.arange(4000) % 4 == 0
    rule = AlarmRule(["a"], 10.0, "fa_per_hour:1", baseline_s=20.0)
    rule.fit([(rng.normal(size=(4000, 1)), fresh)])
    d = json.loads(json.dumps(rule.to_dict()))
    assert AlarmRule.from_dict(d).fresh_every_ == 4
    d.pop("fresh_every")  # a model saved before the field
    assert AlarmRule.from_dict(d).fresh_every_ == 1


class _LastRow:
    """A stand-in detector whose residual for a window is its last row, so each residual shows
    which window scored it."""

    def last_residuals(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -1]

    def recurrent_stream(self, min_context: int) -> None:
        return None


@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("chunk", [1, 4, 7, 1000])
def test_row_t_is_scored_by_the_window_that_ends_on_t(stride, chunk):
    T, n = 5, 40
    rows = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    stream = residual_stream(_LastRow(), T, stride, 2)
    parts = [stream.feed(rows[i : i + chunk]) for i in range(0, n, chunk)]
    out = np.concatenate([p[0] for p in parts])
    fresh = np.concatenate([p[1] for p in parts])
    expected = (np.arange(n) >= T - 1) & ((np.arange(n) - (T - 1)) % stride == 0)
    np.testing.assert_array_equal(fresh, expected)
    np.testing.assert_array_equal(out[fresh], rows[fresh])  # the window ending on t, not t - 1
    assert np.isnan(out[~fresh]).all()
