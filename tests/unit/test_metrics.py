"""Metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.evaluate import metrics as M


def test_point_metrics_leave_an_undefined_ratio_undefined():
    # a fault-free flight has no recall, so no F1 (as for events and flights); precision needs
    # a flagged row
    quiet = M.point_metrics(np.zeros(5), np.zeros(5))
    assert all(np.isnan(v) for v in quiet.values())
    alarmed = M.point_metrics(np.zeros(5), np.array([0, 1, 0, 0, 0]))
    assert alarmed["precision_point"] == 0
    assert np.isnan(alarmed["recall_point"]) and np.isnan(alarmed["f1_point"])
    missed = M.point_metrics(np.array([0, 1, 1, 0, 0]), np.zeros(5))
    assert np.isnan(missed["precision_point"]) and missed["recall_point"] == missed["f1_point"] == 0


def test_point_metrics_hand_computed():
    labels = np.array([0, 0, 1, 1, 1, 0])
    flagged = np.array([0, 1, 1, 1, 0, 0])
    m = M.point_metrics(labels, flagged)
    assert m["precision_point"] == pytest.approx(2 / 3)
    assert m["recall_point"] == pytest.approx(2 / 3)
    assert m["f1_point"] == pytest.approx(2 / 3)


def test_ranking_metrics_perfect_and_single_class():
    labels = np.array([0, 0, 1, 1])
    m = M.ranking_metrics(labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert m == {"auc_pr": 1.0, "auc_roc": 1.0}
    assert np.isnan(M.ranking_metrics(np.zeros(4), np.arange(4.0))["auc_roc"])


def test_point_adjust_inflates():
    labels = np.array([0, 1, 1, 1, 1, 0])
    flagged = np.array([0, 0, 1, 0, 0, 0])
    adjusted = M.point_adjust(labels, flagged)
    assert adjusted.astype(int).tolist() == [0, 1, 1, 1, 1, 0]
    # one flagged row earns the whole segment: F1 0.4 becomes 1.0
    assert M.point_metrics(labels, flagged)["f1_point"] == pytest.approx(0.4)
    assert M.point_metrics(labels, adjusted)["f1_point"] == pytest.approx(1.0)
    # a segment with no flagged row stays missed, a false alarm stays a false alarm
    two = np.array([1, 1, 0, 0, 1, 1, 0])
    flag = np.array([0, 1, 1, 0, 0, 0, 0])
    assert M.point_adjust(two, flag).astype(int).tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_event_metrics_hand_computed():
    labels = np.array([0, 1, 1, 0, 0, 1, 1, 0, 0, 0])
    flagged = np.array([1, 0, 1, 0, 0, 0, 0, 0, 1, 1])
    m = M.event_metrics(labels, flagged)
    # segment 1 found, segment 2 missed; alarm runs at 0 and 8-9 touch no fault
    assert m["recall_event"] == pytest.approx(0.5)
    assert m["precision_event"] == pytest.approx(1 / 3)
    assert m["f1_event"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))


def test_flight_outcomes_follow_the_projects_rule():
    t = np.arange(100) * 0.1  # 10 s at 10 Hz
    lab = (t >= 5).astype(int)
    alarm = np.zeros(100, dtype=bool)
    alarm[62:] = True  # 1.2 s after onset
    o = M.flight_outcome("a", "engine", t, lab, alarm)
    assert o.outcome == "TP" and o.delay_s == pytest.approx(1.2)
    early = alarm.copy()
    early[10] = True
    assert M.flight_outcome("b", "engine", t, lab, early).outcome == "FP"
    assert M.flight_outcome("c", "engine", t, lab, np.zeros(100, bool)).outcome == "FN"
    assert M.flight_outcome("d", "engine", t, lab, alarm, timeout_s=1.0).outcome == "FN"
    assert M.flight_outcome("e", "none", t, np.zeros(100), np.zeros(100, bool)).outcome == "TN"
    assert M.flight_outcome("f", "none", t, None, alarm).outcome == "FP"


def test_an_alarm_exactly_at_the_timeout_is_in_time_whatever_the_rounding():
    """Times built as rows / rate: 8.3 - 3.3 is 5.000000000000001, which judged an alarm 5 s
    after an onset at row 33 late and one after an onset at row 34 in time."""
    t = np.arange(200) / 10.0
    for onset_row in range(0, 140):
        lab = (np.arange(200) >= onset_row).astype(int)
        alarm = np.zeros(200, dtype=bool)
        alarm[onset_row + 50] = True
        o = M.flight_outcome("a", "engine", t, lab, alarm, timeout_s=5.0)
        assert o.outcome == "TP", onset_row
        assert M.evaluator_counts(t, lab, alarm, timeout_s=5.0).tp == 1, onset_row
        alarm[onset_row + 50], alarm[onset_row + 51] = False, True  # 5.1 s: late
        assert M.flight_outcome("a", "engine", t, lab, alarm, timeout_s=5.0).outcome == "FN"


def test_flight_metrics_hand_computed():
    Outcome = M.FlightOutcome
    outs = [
        Outcome("a", "engine", "TP", 1.0, 6.0, 5.0),
        Outcome("b", "engine", "TP", 3.0, 8.0, 5.0),
        Outcome("c", "engine", "FP", None, 1.0, 5.0),
        Outcome("d", "engine", "FN", None, None, 5.0),
        Outcome("e", "none", "TN", None, None, None),
    ]
    m = M.flight_metrics(outs)
    assert m["flight_precision"] == pytest.approx(2 / 3)
    assert m["flight_recall"] == pytest.approx(2 / 4)
    assert m["flight_accuracy"] == pytest.approx(3 / 5)
    assert m["detection_delay_seconds"] == pytest.approx(2.0)
    assert m["detection_delay_max_seconds"] == pytest.approx(3.0)


def test_false_alarms_per_hour():
    rate = 10.0
    lab = np.zeros(36000, dtype=int)  # one hour at 10 Hz
    flg = np.zeros(36000, dtype=bool)
    flg[100:105] = True
    flg[2000:2001] = True
    lab[30000:] = 1
    flg[30000:30010] = True  # inside the fault: not a false alarm
    assert M.false_alarms_per_hour([lab], [flg], rate) == pytest.approx(2 / (30000 / rate / 3600))


def test_evaluator_counts_each_raised_alarm_as_alfa_evaluate_does():
    """1 row a second, onset at row 10 (labels from there): hand-counted as the ALFA authors'
    evaluator counts detection messages, beside the project's one-verdict-a-flight rule."""
    time = np.arange(30.0)
    labels = (time >= 10).astype(int)

    def alarms(*spans):
        flagged = np.zeros(30, bool)
        for a, b in spans:
            flagged[a:b] = True
        return flagged

    early_then_found = alarms((3, 5), (12, 14))  # a false alarm, then the fault 2 s after onset
    c = M.evaluator_counts(time, labels, early_then_found)
    assert (c.tp, c.fp, c.fn, c.delay_s) == (1, 1, 0, 2.0)
    assert M.flight_outcome("f", "engine", time, labels, early_then_found).outcome == "FP"
    # spanning the onset: raised before it, so a false positive, and no message after it
    assert M.evaluator_counts(time, labels, alarms((8, 20))) == M.EvaluatorCounts(0, 1, 1, None)
    late = alarms((17, 19))  # 7 s after onset: missed, and the late alarm a false positive
    assert M.evaluator_counts(time, labels, late) == M.EvaluatorCounts(0, 1, 1, None)
    assert M.evaluator_counts(time, labels, late, timeout_s=8.0).tp == 1
    found_then_more = alarms((15, 16), (20, 22), (25, 26))  # at 5 s (within), then two more
    assert M.evaluator_counts(time, labels, found_then_more) == M.EvaluatorCounts(1, 2, 0, 5.0)
    assert M.evaluator_counts(time, None, alarms((1, 2), (4, 9))) == M.EvaluatorCounts(
        0, 2, 0, None
    )
    assert M.evaluator_counts(time, labels, alarms()) == M.EvaluatorCounts(0, 0, 1, None)
    # raised on the onset row itself, then again within the timeout: found at 0 s, one false
    on_onset = alarms((10, 11), (12, 13))
    assert M.evaluator_counts(time, labels, on_onset) == M.EvaluatorCounts(1, 1, 0, 0.0)
    m = M.evaluator_metrics(
        [
            M.EvaluatorCounts(1, 1, 0, 2.0),
            M.EvaluatorCounts(1, 2, 0, 5.0),
            M.EvaluatorCounts(0, 1, 1, None),
        ]
    )
    assert m == {
        "evaluator_precision": 2 / 6,
        "evaluator_recall": 2 / 3,
        "evaluator_delay_seconds": 3.5,
    }


def test_no_alarm_leaves_every_precision_undefined_and_f1_zero():
    # a detector that never alarmed has no precision (NaN, not a 0 that reads as all-false
    # alarms); with a fault to find it found none, so F1 is 0; with none to find, F1 is NaN
    Outcome = M.FlightOutcome
    missed = M.flight_metrics(
        [
            Outcome("a", "engine", "FN", None, None, 5.0),
            Outcome("b", "none", "TN", None, None, None),
        ]
    )
    assert np.isnan(missed["flight_precision"])
    assert missed["flight_recall"] == missed["flight_f1"] == 0
    quiet = M.flight_metrics([Outcome("b", "none", "TN", None, None, None)])
    assert all(np.isnan(quiet[k]) for k in ("flight_precision", "flight_recall", "flight_f1"))
    event = M.event_metrics(np.array([0, 1, 1, 0]), np.zeros(4, bool))
    assert np.isnan(event["precision_event"]) and event["recall_event"] == event["f1_event"] == 0
    assert np.isnan(M.event_metrics(np.zeros(4), np.zeros(4, bool))["f1_event"])
    counts = M.evaluator_metrics([M.EvaluatorCounts(0, 0, 1, None)])
    assert np.isnan(counts["evaluator_precision"]) and counts["evaluator_recall"] == 0
