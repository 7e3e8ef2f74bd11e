"""`evaluate_flights` on hand-built flights whose every metric is known."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.data.schema import Flight
from anomaly.evaluate.protocol import FlightResult, evaluate_flights

RATE = 10.0


def _result(flight_id, labels, score, flagged, fault_type):
    n = len(labels)
    flight = Flight(
        flight_id,
        np.arange(n) / RATE,
        np.zeros((n, 2), np.float32),
        ["a", "b"],
        np.asarray(labels, np.int8),
        fault_type,
    )
    contrib = np.full((n, 2), 0.5)
    return FlightResult(flight, np.asarray(score, float), contrib, np.asarray(flagged, bool))


@pytest.fixture
def two_flights():
    # A: fault from row 60 to its last row, scored perfectly, alarm raised from row 65 (0.5 s late)
    lab_a = (np.arange(100) >= 60).astype(int)
    flag_a = np.arange(100) >= 65
    a = _result("A", lab_a, lab_a * 1.0, flag_a, "engine")
    # B: fault-free; its first rows score high (they would borrow A's VUS buffer if the flights
    # were joined) and rows 10-12 raise one false alarm
    score_b = np.zeros(50)
    score_b[:5] = 1.0
    flag_b = np.zeros(50, bool)
    flag_b[10:13] = True
    b = _result("B", np.zeros(50), score_b, flag_b, "none")
    return [a, b]


def test_hand_built_flights_give_the_known_metrics(two_flights):
    m, outcomes, per_fault = evaluate_flights(two_flights, RATE, timeout_s=5.0, vus_window_s=2.0)
    assert m["precision_point"] == pytest.approx(35 / 38)
    assert m["recall_point"] == pytest.approx(35 / 40)
    assert [o.outcome for o in outcomes] == ["TP", "FP"]
    assert outcomes[0].delay_s == pytest.approx(0.5)
    assert m["flight_precision"] == pytest.approx(0.5) and m["flight_recall"] == 1.0
    assert m["detection_delay_seconds"] == pytest.approx(0.5)
    # one alarm run over 60 + 50 normal rows at 10 Hz
    assert m["false_alarms_per_hour"] == pytest.approx(1 / (110 / RATE / 3600))
    # on fault-free flights alone: one alarm in B's 50 rows
    assert m["false_alarms_per_hour_fault_free"] == pytest.approx(1 / (50 / RATE / 3600))
    assert m["recall_event"] == 1.0 and m["precision_event"] == pytest.approx(0.5)
    # per flight, then averaged over fault flights: A is perfect, B (no fault) does not count
    assert m["vus_pr"] == pytest.approx(1.0) and m["vus_roc"] == pytest.approx(1.0)
    assert set(per_fault["fault_type"]) == {"engine", "none"}
    engine = per_fault.set_index("fault_type").loc["engine"]
    assert engine["detected"] == 1 and engine["delay_s"] == pytest.approx(0.5)
    # B's alarm is on a flight with no fault: a false alarm, not an early one
    none = per_fault.set_index("fault_type").loc["none"]
    assert (none["false_alarm"], none["early_alarm"]) == (1, 0)


def test_a_miss_says_whether_an_alarm_came_late_or_never():
    labels = (np.arange(100) >= 20).astype(int)  # onset at 2 s, 10 Hz
    late = np.arange(100) >= 80  # 6 s after onset: past the 5 s timeout
    rows = []
    for flagged in (late, np.zeros(100, bool)):
        flight = _result("L", labels, labels * 1.0, flagged, "engine")
        _, _, per_fault = evaluate_flights([flight], RATE, timeout_s=5.0)
        rows.append(per_fault.set_index("fault_type").loc["engine"])
    assert (rows[0]["late_alarm"], rows[0]["no_alarm"]) == (1, 0)
    assert (rows[1]["late_alarm"], rows[1]["no_alarm"]) == (0, 1)


def test_an_early_alarm_is_a_false_positive_flight(two_flights):
    a = two_flights[0]
    a.flagged[20] = True  # before onset
    m, outcomes, _ = evaluate_flights([a], RATE, timeout_s=5.0)
    assert outcomes[0].outcome == "FP" and m["flight_recall"] == 0.0


def test_without_a_labelled_flight_every_metric_is_named_undefined(two_flights):
    from anomaly.evaluate.protocol import JUDGED_METRICS

    labelled, _, _ = evaluate_flights(two_flights, RATE, timeout_s=5.0)
    assert set(labelled) == set(JUDGED_METRICS)  # the list says what an evaluation computes
    for r in two_flights:
        r.flight.labels = None
    m, outcomes, per_fault = evaluate_flights(two_flights, RATE, timeout_s=5.0)
    assert set(m) == set(JUDGED_METRICS) and all(np.isnan(v) for v in m.values())
    assert outcomes == [] and per_fault.empty


def test_the_per_flight_table_holds_verdict_alarm_and_vus(two_flights):
    from anomaly.evaluate.protocol import per_flight_table

    _, outcomes, _ = evaluate_flights(two_flights, RATE, timeout_s=5.0)
    table = per_flight_table(two_flights, outcomes, RATE, 2.0).set_index("flight_id")
    assert table.loc["A", "outcome"] == "TP" and table.loc["A", "first_alarm_s"] == 6.5
    assert table.loc["A", "vus_pr"] == pytest.approx(1.0)  # scored perfectly
    assert (
        table.loc["B", "outcome"] == "FP" and table.loc["B", "onset_s"] != table.loc["B", "onset_s"]
    )
