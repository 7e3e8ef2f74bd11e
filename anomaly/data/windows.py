"""Rows -> windows: sliding windows inside one flight (training; scoring windows end on rows)."""

from __future__ import annotations

import numpy as np

from anomaly.errors import UserError


def window_starts(n_rows: int, window_len: int, stride: int, name: str = "flight") -> np.ndarray:
    """Start rows of the windows of one flight.

    Windows sit on a stride grid from row 0, plus one final window that ends on the last row, so
    training sees every normal row.

    Raises
    ------
    ValueError naming the flight when it is shorter than one window.
    """
    if window_len < 1 or stride < 1:
        raise ValueError(f"window_len and stride must be >= 1, got {window_len} and {stride}")
    if n_rows < window_len:
        raise UserError(f"{name}: {n_rows} rows, shorter than one window ({window_len} rows)")
    starts = np.arange(0, n_rows - window_len + 1, stride)
    if starts[-1] != n_rows - window_len:
        starts = np.append(starts, n_rows - window_len)
    return starts


def make_windows(
    values: np.ndarray, window_len: int, stride: int, name: str = "flight"
) -> np.ndarray:
    """(n_rows, n_features) -> windows (n_windows, window_len, n_features), one flight at a time."""
    starts = window_starts(len(values), window_len, stride, name)
    view = np.lib.stride_tricks.sliding_window_view(values, window_len, axis=0)  # (n, F, T)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))
