"""Scored test flights -> the run's metrics: micro point metrics, threshold-free ranking, events,
the per-flight protocol (the project's, and the ALFA evaluator's counts) and a per-fault-type
table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anomaly.data.schema import Flight
from anomaly.evaluate import metrics as M
from anomaly.evaluate.vus import vus

# fault type of a labelled flight with no manifest (plain files); also a metric name part
UNKNOWN_FAULT = "unknown"


@dataclass
class FlightResult:
    """One scored flight: score (n_rows,), contributions (n_rows, F), flagged (n_rows,) bool,
    channel (n_rows,) the blamed channel's index (None: the largest contribution's)."""

    flight: Flight
    score: np.ndarray
    contributions: np.ndarray
    flagged: np.ndarray
    channel: np.ndarray | None = None


def _concat(arrays: list[np.ndarray], fill) -> np.ndarray:
    """Join per-flight arrays with one separator row, so runs never merge across flights."""
    parts = []
    for a in arrays:
        parts.extend([a, np.array([fill], dtype=a.dtype)])
    return np.concatenate(parts[:-1]) if parts else np.zeros(0)


def flight_vus(results: list[FlightResult], window_rows: int) -> tuple[float, float]:
    """VUS-PR and VUS-ROC computed per flight and averaged over the flights holding a fault
    (macro): the buffer around an event must never spill into another flight."""
    per_flight = [
        vus(r.flight.labels, r.score, window_rows)
        for r in results
        if r.flight.labels is not None and 0 < r.flight.labels.mean() < 1
    ]
    if not per_flight:
        return float("nan"), float("nan")
    pr, roc = np.array(per_flight).T
    return float(pr.mean()), float(roc.mean())


def per_flight_table(
    results: list[FlightResult],
    outcomes: list[M.FlightOutcome],
    rate_hz: float,
    vus_window_s: float = 2.0,
) -> pd.DataFrame:
    """One row per labelled flight: its per-flight verdict, delay, first alarm and onset, and
    its VUS; the one `per_flight.csv` of training runs and study cells alike."""
    window = max(1, int(round(vus_window_s * rate_hz)))
    labelled = [r for r in results if r.flight.labels is not None]
    rows = []
    for r, o in zip(labelled, outcomes):
        pr, roc = vus(r.flight.labels, r.score, window)
        rows.append({**o.__dict__, "vus_pr": pr, "vus_roc": roc})
    # its columns even with no labelled flight, so a sweep of unlabelled logs reads it alike
    columns = [f.name for f in dataclasses.fields(M.FlightOutcome)] + ["vus_pr", "vus_roc"]
    return pd.DataFrame(rows, columns=columns)


# what evaluate_flights computes over labelled flights (tests/unit/test_protocol.py checks it)
JUDGED_METRICS = (
    "precision_point",
    "recall_point",
    "f1_point",
    "auc_pr",
    "auc_roc",
    "vus_pr",
    "vus_roc",
    "precision_event",
    "recall_event",
    "f1_event",
    "f1_point_adjusted",
    "flight_precision",
    "flight_recall",
    "flight_f1",
    "flight_accuracy",
    "detection_delay_seconds",
    "detection_delay_max_seconds",
    "evaluator_precision",
    "evaluator_recall",
    "evaluator_delay_seconds",
    "false_alarms_per_hour",
    "false_alarms_per_hour_fault_free",
)


def evaluate_flights(
    results: list[FlightResult],
    rate_hz: float,
    timeout_s: float,
    vus_window_s: float = 2.0,
) -> tuple[dict, list[M.FlightOutcome], pd.DataFrame]:
    """Metrics over the labelled flights among `results`.

    Returns
    -------
    metrics : name -> value (micro: counts summed over flights).
    outcomes : the per-flight protocol's verdict for each labelled flight.
    per_fault : one row per fault type.
    """
    labelled = [r for r in results if r.flight.labels is not None]
    if not labelled:  # each named undefined, so the run says what is missing
        return dict.fromkeys(JUDGED_METRICS, float("nan")), [], pd.DataFrame()
    labels = _concat([r.flight.labels.astype(np.int8) for r in labelled], 0)
    scores = _concat([r.score for r in labelled], -np.inf)
    flagged = _concat([r.flagged for r in labelled], False)
    sep = np.isneginf(scores)
    out = {
        **M.point_metrics(labels[~sep], flagged[~sep]),
        **M.ranking_metrics(labels[~sep], scores[~sep]),
    }
    vus_window = max(1, int(round(vus_window_s * rate_hz)))
    out["vus_pr"], out["vus_roc"] = flight_vus(labelled, vus_window)
    out.update(M.event_metrics(labels, flagged))
    adjusted = M.point_adjust(labels, flagged)[~sep]
    out["f1_point_adjusted"] = M.point_metrics(labels[~sep], adjusted)["f1_point"]
    outcomes = [
        M.flight_outcome(
            r.flight.flight_id,
            r.flight.fault_type or UNKNOWN_FAULT,
            r.flight.time,
            r.flight.labels,
            r.flagged,
            timeout_s,
        )
        for r in labelled
    ]
    out.update(M.flight_metrics(outcomes))
    out.update(
        M.evaluator_metrics(
            [
                M.evaluator_counts(r.flight.time, r.flight.labels, r.flagged, timeout_s)
                for r in labelled
            ]
        )
    )
    out["false_alarms_per_hour"] = M.false_alarms_per_hour(
        [r.flight.labels for r in labelled], [r.flagged for r in labelled], rate_hz
    )
    # the operator's number: alarms on flights that had no fault at all, per hour of them
    clean = [r for r in labelled if not r.flight.labels.any()]
    out["false_alarms_per_hour_fault_free"] = M.false_alarms_per_hour(
        [r.flight.labels for r in clean], [r.flagged for r in clean], rate_hz
    )
    return out, outcomes, per_fault_table(labelled, outcomes, vus_window)


def per_fault_table(
    labelled: list[FlightResult], outcomes: list[M.FlightOutcome], vus_window: int
) -> pd.DataFrame:
    """Point and ranking metrics and per-flight outcomes, one row per fault type."""
    rows = []
    for fault in sorted({r.flight.fault_type or UNKNOWN_FAULT for r in labelled}):
        sub = [r for r in labelled if (r.flight.fault_type or UNKNOWN_FAULT) == fault]
        lab = np.concatenate([r.flight.labels for r in sub])
        flg = np.concatenate([r.flagged for r in sub])
        sc = np.concatenate([r.score for r in sub])
        oc = [o for o in outcomes if o.fault_type == fault]
        delays = [o.delay_s for o in oc if o.delay_s is not None]
        rows.append(
            {
                "fault_type": fault,
                "flights": len(sub),
                **M.point_metrics(lab, flg),
                **M.ranking_metrics(lab, sc),
                "vus_pr": flight_vus(sub, vus_window)[0],
                # why each flight went as it did: a miss with an alarm after the timeout is
                # not one with none, nor is an early alarm one on a flight with no fault
                "detected": sum(o.outcome == "TP" for o in oc),
                "early_alarm": sum(o.outcome == "FP" and o.onset_s is not None for o in oc),
                "late_alarm": sum(o.outcome == "FN" and o.first_alarm_s is not None for o in oc),
                "no_alarm": sum(o.outcome == "FN" and o.first_alarm_s is None for o in oc),
                "false_alarm": sum(o.outcome == "FP" and o.onset_s is None for o in oc),
                "delay_s": float(np.mean(delays)) if delays else float("nan"),
            }
        )
    return pd.DataFrame(rows)
