"""Rows <-> windows: sliding windows inside one flight, and window errors back to rows."""

from __future__ import annotations

import numpy as np

from anomaly.errors import UserError


def window_starts(n_rows: int, window_len: int, stride: int, name: str = "flight") -> np.ndarray:
    """Start rows of the windows of one flight.

    Windows sit on a stride grid from row 0, plus one final window that ends on the last row, so
    every row is covered and gets a real score.

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


def window_errors_to_rows(errors: np.ndarray, starts: np.ndarray, n_rows: int) -> np.ndarray:
    """Average per-step window errors over every window covering each row.

    Parameters
    ----------
    errors : (n_windows, window_len, n_features) per-step, per-channel errors.
    starts : (n_windows,) start row of each window.

    Returns
    -------
    (n_rows, n_features) mean error per row and channel.
    """
    n_windows, window_len, n_features = errors.shape
    sums = np.zeros((n_rows, n_features), dtype=np.float64)
    counts = np.zeros(n_rows, dtype=np.int64)
    accumulate_windows(sums, counts, errors, starts)
    return mean_errors(sums, counts)


def mean_errors(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """sums (n, F) / counts (n,). A row no window scored (in forecast mode, the first
    window_len - horizon rows of a flight: no history to forecast them from) gets 0."""
    return np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)


def accumulate_windows(
    sums: np.ndarray, counts: np.ndarray, errors: np.ndarray, starts: np.ndarray
) -> None:
    """Add each window's per-step errors onto the rows it covers, in place.

    sums (n_rows, F), counts (n_rows,), errors (n_windows, T, F), starts (n_windows,) as row
    indices into sums. NaN errors (steps a forecaster saw) are skipped. On a regular grid whose
    stride divides T, windows are added in blocks of `stride` rows (T / stride slice adds instead
    of T scattered ones).
    """
    n, T, F = errors.shape
    if n == 0:
        return
    valid = ~np.isnan(errors[:, :, 0])  # (n, T): a step is scored on every channel or none
    if not valid.all():
        errors = np.where(valid[:, :, None], errors, 0.0)
    stride = int(starts[1] - starts[0]) if n > 1 else 0
    regular = n > 1 and stride > 0 and T % stride == 0 and np.all(np.diff(starts) == stride)
    if not regular:
        for k in range(T):  # a window offset hits each row at most once: plain fancy add
            sums[starts + k] += errors[:, k]
            counts[starts + k] += valid[:, k]
        return
    first, blocks = int(starts[0]), T // stride
    span = (n - 1 + blocks) * stride  # rows from the first window start to the last window end
    view_s = sums[first : first + span].reshape(n - 1 + blocks, stride, F)
    view_c = counts[first : first + span].reshape(n - 1 + blocks, stride)
    eb = errors.reshape(n, blocks, stride, F)
    vb = valid.reshape(n, blocks, stride)
    for j in range(blocks):  # block j of window i lands on row block i + j
        view_s[j : j + n] += eb[:, j]
        view_c[j : j + n] += vb[:, j]
