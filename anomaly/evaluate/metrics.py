"""Detection metrics as pure functions of labels and scores.

Row metrics are secondary: alarms are judged per flight (evaluate/protocol.py) and the study's
verdicts use VUS-PR (evaluate/vus.py), which needs no threshold. Point-adjusted F1 is reported
only as a labelled figure: it credits a whole fault segment for one flagged row, so even random
scores can look strong with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from anomaly.detect.events import runs

# Slack on "within the timeout": times built as rows / rate differ from the exact quotient in the
# last bit (8.3 - 3.3 is 5.000000000000001), which judged an alarm exactly 5 s after onset late
# for some onsets and in time for others. A microsecond is far below any log's period.
TIME_SLACK_S = 1e-6


def point_metrics(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """precision_point, recall_point, f1_point over rows (micro: counts summed over flights).
    A ratio whose denominator is 0 (recall with no anomalous row, precision with no flagged
    one) is undefined: NaN, which the tracker names as missing, never a 0 that reads as a miss;
    F1 is undefined with no anomalous row, and 0 when rows were anomalous but none flagged."""
    p, r, _, _ = precision_recall_fscore_support(
        np.asarray(labels, dtype=int),
        np.asarray(flagged, dtype=int),
        average="binary",
        zero_division=np.nan,
    )
    # F1 from the two, as for events and flights: sklearn's zero_division covers precision and
    # recall but not F1, which it made 0 on a flight with alarms and no fault
    return {"precision_point": float(p), "recall_point": float(r), "f1_point": float(_f1(p, r))}


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """auc_pr (average precision) and auc_roc; NaN when only one class is present."""
    labels = np.asarray(labels, dtype=int)
    if labels.min() == labels.max():
        return {"auc_pr": float("nan"), "auc_roc": float("nan")}
    return {
        "auc_pr": float(average_precision_score(labels, scores)),
        "auc_roc": float(roc_auc_score(labels, scores)),
    }


def point_adjust(labels: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Flag a whole labelled segment when any of its rows is flagged (the inflating convention)."""
    adj = np.asarray(flagged, dtype=bool).copy()
    for s, e in runs(np.asarray(labels) > 0):
        if adj[s : e + 1].any():
            adj[s : e + 1] = True
    return adj


def event_metrics(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """Event-level precision, recall, F1.

    A labelled segment is found when an alarm run overlaps it; an alarm run touching no labelled
    row is a false positive. precision = found / (found + false alarm runs).
    """
    labels = np.asarray(labels) > 0
    segments = runs(labels)
    alarms = runs(flagged)
    found = sum(1 for s, e in segments if np.asarray(flagged)[s : e + 1].any())
    false_runs = sum(1 for s, e in alarms if not labels[s : e + 1].any())
    precision = _ratio(found, found + false_runs)
    recall = _ratio(found, len(segments))
    return {
        "precision_event": precision,
        "recall_event": recall,
        "f1_event": _f1(precision, recall),
    }


def _ratio(hits: int, of: int) -> float:
    """NaN where nothing was there to count (no alarm for a precision, no fault for a recall):
    never a 0 that reads as a miss."""
    return hits / of if of else float("nan")


def _f1(precision: float, recall: float) -> float:
    """F1, undefined without a fault to find; 0 when no alarm was raised, since then none was
    found."""
    if np.isnan(recall):
        return float("nan")
    if np.isnan(precision) or precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


@dataclass
class FlightOutcome:
    """Per-flight verdict of the project's protocol: 'TP', 'FP', 'FN' or 'TN', with delay if
    detected."""

    flight_id: str
    fault_type: str
    outcome: str
    delay_s: float | None
    first_alarm_s: float | None
    onset_s: float | None


def flight_outcome(
    flight_id: str,
    fault_type: str,
    time: np.ndarray,
    labels: np.ndarray,
    flagged: np.ndarray,
    timeout_s: float = 5.0,
) -> FlightOutcome:
    """The project's per-flight rule, one verdict a flight: stricter on recall than
    `evaluator_counts` (an early alarm loses the fault), more lenient on precision (a late or a
    repeated alarm costs nothing).

    An alarm before onset (or anywhere in a fault-free flight) makes the flight a false positive,
    and its fault counts as missed. Otherwise the fault is detected (TP) when the first alarm after
    onset comes within `timeout_s`, and missed (FN) when it does not. Flags mark rows from the one
    on which an alarm was raised (after any confirmation), so the delay is the real latency from
    onset to alarm.
    """
    flagged = np.asarray(flagged, dtype=bool)
    first = float(time[np.argmax(flagged)]) if flagged.any() else None
    if labels is None or not np.asarray(labels).any():
        return FlightOutcome(
            flight_id, fault_type, "FP" if flagged.any() else "TN", None, first, None
        )
    onset_i = int(np.argmax(np.asarray(labels) > 0))
    onset = float(time[onset_i])
    if flagged[:onset_i].any():
        return FlightOutcome(flight_id, fault_type, "FP", None, first, onset)
    after = flagged[onset_i:]
    if after.any():
        t_alarm = float(time[onset_i + int(np.argmax(after))])
        if t_alarm - onset <= timeout_s + TIME_SLACK_S:
            return FlightOutcome(flight_id, fault_type, "TP", t_alarm - onset, t_alarm, onset)
        return FlightOutcome(flight_id, fault_type, "FN", None, t_alarm, onset)
    return FlightOutcome(flight_id, fault_type, "FN", None, None, onset)


@dataclass
class EvaluatorCounts:
    tp: int
    fp: int
    fn: int
    delay_s: float | None


def evaluator_counts(
    time: np.ndarray, labels: np.ndarray | None, flagged: np.ndarray, timeout_s: float = 5.0
) -> EvaluatorCounts:
    """One flight counted as the evaluator the ALFA authors released with the dataset counts it
    (castacks/alfa-dataset-tools, alfa-evaluate)."""
    starts = [float(time[s]) for s, _ in runs(np.asarray(flagged, dtype=bool))]
    onset = None
    if labels is not None and np.asarray(labels).any():
        onset = float(time[int(np.argmax(np.asarray(labels) > 0))])
    return evaluator_counts_of_alarms(starts, onset, timeout_s)


def evaluator_counts_of_alarms(
    starts: list[float], onset: float | None, timeout_s: float = 5.0
) -> EvaluatorCounts:
    """`evaluator_counts` from the times alarms were raised and the fault's onset (None: no fault).

    Each raised alarm is one detection message. Before onset, or on a fault-free flight, each is
    a false positive, and a later detection in time still counts; the first alarm within
    `timeout_s` of onset detects the fault; any alarm after that, or after the timeout (the fault
    then missed), is a false positive. This assumes the fault's status topic publishes once, at
    onset (the evaluator re-arms on every message). It compares whole seconds of the ROS clock,
    so its timeout is 5 to 6 s depending on the clock's fraction at onset; here it is
    `timeout_s`.
    """
    starts_a = np.asarray(starts, dtype=float)
    if onset is None:
        return EvaluatorCounts(0, len(starts_a), 0, None)
    timely = starts_a[(starts_a >= onset) & (starts_a - onset <= timeout_s + TIME_SLACK_S)]
    if len(timely):
        return EvaluatorCounts(1, len(starts_a) - 1, 0, float(timely[0] - onset))
    return EvaluatorCounts(0, len(starts_a), 1, None)


def evaluator_metrics(counts: list[EvaluatorCounts]) -> dict[str, float]:
    """evaluator_precision, evaluator_recall and the mean delay of detected faults, from counts
    summed over flights."""
    tp, fp, fn = (sum(getattr(c, k) for c in counts) for k in ("tp", "fp", "fn"))
    delays = [c.delay_s for c in counts if c.delay_s is not None]
    return {
        "evaluator_precision": _ratio(tp, tp + fp),
        "evaluator_recall": _ratio(tp, tp + fn),
        "evaluator_delay_seconds": float(np.mean(delays)) if delays else float("nan"),
    }


def flight_metrics(outcomes: list[FlightOutcome]) -> dict[str, float]:
    """flight_precision, flight_recall, their F1, flight_accuracy and detection delays over
    flights.

    Recall counts every fault flight in its denominator, including those lost to an early alarm.
    """
    tp = sum(o.outcome == "TP" for o in outcomes)
    fp = sum(o.outcome == "FP" for o in outcomes)
    tn = sum(o.outcome == "TN" for o in outcomes)
    n_fault = sum(o.onset_s is not None for o in outcomes)
    delays = [o.delay_s for o in outcomes if o.delay_s is not None]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, n_fault)
    return {
        "flight_precision": precision,
        "flight_recall": recall,
        "flight_f1": _f1(precision, recall),
        "flight_accuracy": (tp + tn) / len(outcomes) if outcomes else float("nan"),
        "detection_delay_seconds": float(np.mean(delays)) if delays else float("nan"),
        "detection_delay_max_seconds": float(np.max(delays)) if delays else float("nan"),
    }


def false_alarms_per_hour(
    labels_list: list[np.ndarray | None], flagged_list: list[np.ndarray], rate_hz: float
) -> float:
    """Alarm runs that start on a normal row, per hour of normal flight."""
    alarms, normal_rows = 0, 0
    for labels, flagged in zip(labels_list, flagged_list):
        lab = np.zeros(len(flagged), dtype=bool) if labels is None else np.asarray(labels) > 0
        normal_rows += int((~lab).sum())
        alarms += sum(1 for s, _ in runs(flagged) if not lab[s])
    hours = normal_rows / rate_hz / 3600.0
    return alarms / hours if hours > 0 else float("nan")
