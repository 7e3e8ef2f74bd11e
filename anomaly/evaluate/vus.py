"""VUS-PR and VUS-ROC: range-aware ranking metrics (Paparrizos et al., VLDB 2022).

VUS credits alarms near a fault through a buffer ramp around each event, scales recall by the
share of events found, and averages range-AUCs over buffer sizes 0..window instead of tuning one.
Numbers follow TSB-AD 1.5's ``generate_curve(..., version='opt', thre=250)``. The buffer and the
event count assume one continuous series: callers compute VUS per flight, never across flights.
"""

from __future__ import annotations

import numpy as np


def _events(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last row (inclusive) of each run of 1s."""
    edges = np.diff(np.concatenate(([0], labels, [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def _buffered(labels: np.ndarray, starts: np.ndarray, ends: np.ndarray, w: int) -> np.ndarray:
    """Labels widened by ``w // 2`` rows each side with a ramp ``sqrt(1 - d / w)``, capped at 1."""
    out = labels.astype(float)
    d = np.arange(1, w // 2 + 1)
    if d.size:
        pos = np.concatenate([(ends[:, None] + d).ravel(), (starts[:, None] - d).ravel()])
        ramp = np.tile(np.sqrt(1.0 - d / w), 2 * starts.size)
        keep = (pos >= 0) & (pos < labels.size)
        np.add.at(out, pos[keep], ramp[keep])
    return np.minimum(out, 1.0)


def _segment_max(scores: np.ndarray, starts: np.ndarray, ends: np.ndarray, half: int) -> np.ndarray:
    """Highest score inside each buffered event; events whose buffers touch are merged."""
    separate = ends[:-1] + half < starts[1:] - half
    lo = np.maximum(starts[np.concatenate(([True], separate))] - half, 0)
    hi = np.minimum(ends[np.concatenate((separate, [True]))] + half, scores.size - 1)
    padded = np.append(scores, -np.inf)
    return np.maximum.reduceat(padded, np.column_stack([lo, hi + 1]).ravel())[::2]


def vus(
    labels: np.ndarray, scores: np.ndarray, window: int, n_thresholds: int = 250
) -> tuple[float, float]:
    """VUS-PR and VUS-ROC of one flight, sharing the work between them.

    Parameters
    ----------
    labels : np.ndarray
        Shape (n,), 1 on anomalous rows and 0 elsewhere.
    scores : np.ndarray
        Shape (n,), finite; higher means more anomalous.
    window : int
        Largest buffer size; the surfaces are averaged over buffers 0..window rows.
    n_thresholds : int, default 250
        Number of thresholds, taken at evenly spaced ranks of the sorted scores.

    Returns
    -------
    tuple of float
        ``(vus_pr, vus_roc)``; both NaN when labels are all 0 or all 1.
    """
    labels = (np.asarray(labels) != 0).astype(int)
    scores = np.asarray(scores, dtype=float)
    n = labels.size
    if scores.shape != (n,) or window < 0:
        raise ValueError("labels and scores must be 1-D of equal length and window >= 0")
    if not np.isfinite(scores).all():  # NaN sorts anywhere: the area would be silently wrong
        raise ValueError("scores must be finite (score the rows without a residual, e.g. 0)")
    if labels.min() == labels.max():
        return float("nan"), float("nan")
    starts, ends = _events(labels)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    thresholds = ranked[np.linspace(0, n - 1, n_thresholds).astype(int)]
    n_pred = np.searchsorted(-ranked, -thresholds, side="right")  # rows with score >= threshold
    n_pos = labels.sum()
    tp_core = np.cumsum(labels[order])[n_pred - 1]  # true positives on the events themselves

    widths = np.arange(window + 1)
    tp = np.empty((widths.size, n_thresholds))
    found = np.empty((widths.size, n_thresholds))
    for w in widths:
        tp[w] = np.cumsum(_buffered(labels, starts, ends, w)[order])[n_pred - 1]
        seg_max = _segment_max(scores, starts, ends, w // 2)
        found[w] = (seg_max[:, None] >= thresholds).sum(axis=0) / seg_max.size

    # Buffer rows count as positives only where flagged, and then at half weight.
    pos = n_pos + (tp - tp_core) / 2
    tpr = np.minimum(tp / pos, 1.0) * found
    fpr = (n_pred - tp) / (n - pos)
    precision = tp / n_pred

    zeros, ones = np.zeros((widths.size, 1)), np.ones((widths.size, 1))
    x = np.hstack([zeros, fpr, ones])
    y = np.hstack([zeros, tpr, ones])
    roc = (np.diff(x, axis=1) * (y[:, 1:] + y[:, :-1]) / 2).sum(axis=1)
    pr = (np.diff(y[:, :-1], axis=1) * precision).sum(axis=1)
    return float(pr.mean()), float(roc.mean())
