"""Detector -> causal residuals: for each row, measured minus expected, from rows up to it only.

A model with recurrent state (the LSTM forecaster) carries it from row to row. Any other model
scores row t with the window that ends on t (`Detector.last_residuals`: a forecaster's
prediction of t from the rows before, an autoencoder's error over the window's last rows, all at
or before t): with `stride` s > 1 only every s-th row
gets a window and the rows between get no fresh residual (the alarm rule holds its state there),
so a change waits up to s - 1 rows to be seen, and that wait is part of the detection delay.
The first window_len - 1 rows of a flight get no residual.
"""

from __future__ import annotations

import numpy as np

from anomaly.models.base import Detector

BATCH = 4096  # windows materialised at a time: memory stays flat on long logs


class WindowResiduals:
    """Streams rows through a windowed model; state: the last window_len - 1 rows."""

    def __init__(self, detector: Detector, window_len: int, stride: int, n_residuals: int):
        self.detector, self.T, self.stride, self.C = detector, window_len, stride, n_residuals
        self.tail: np.ndarray | None = None
        self.seen = 0

    def feed(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, F) scaled rows -> residuals (n, C) and fresh (n,) bool."""
        n = len(scaled)
        out = np.full((n, self.C), np.nan, dtype=np.float32)
        rows = np.arange(self.seen, self.seen + n)
        fresh = (rows >= self.T - 1) & ((rows - (self.T - 1)) % self.stride == 0)
        both = scaled if self.tail is None else np.concatenate([self.tail, scaled])
        offset = len(both) - n  # rows of `both` before this chunk
        ends = np.flatnonzero(fresh) + offset  # index in `both` of each window's last row
        if len(ends):
            view = np.lib.stride_tricks.sliding_window_view(both, self.T, axis=0)  # (m, F, T)
        for i in range(0, len(ends), BATCH):
            idx = ends[i : i + BATCH]
            windows = np.ascontiguousarray(view[idx - self.T + 1].transpose(0, 2, 1))
            out[idx - offset] = self.detector.last_residuals(windows)
        self.tail = both[-(self.T - 1) :] if self.T > 1 else both[:0]
        self.seen += n
        return out, fresh


def residual_stream(detector: Detector, window_len: int, stride: int, n_residuals: int):
    """The causal residual stream of a fitted detector for one flight."""
    return detector.recurrent_stream(window_len - 1) or WindowResiduals(
        detector, window_len, stride, n_residuals
    )
