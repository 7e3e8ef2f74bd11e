"""A signal that stops changing: the stuck sensor that a forecaster cannot see.

A one-step forecaster learns that the next row is close to the last one, so a sensor frozen at
its last value looks to it like a flight with no surprises, and its residuals stay quiet. A
frozen value is easy to see without a model: on a moving aircraft every noisy channel changes
from row to row. Each channel's limit is set on normal flights (its longest run of unchanged
values there, times a margin, at least a second), so a channel that legitimately holds
still (a saturated throttle, a slow sensor repeated at a faster log rate) only alarms when it
holds still far longer than it ever did in normal flight, and one that never changes within a
normal flight (a mode or status column) is never judged. The check needs no model, so it is
fitted on the normal rows of training and validation flights alike. Rows up to the current one
only; the state is carried across chunks.
"""

from __future__ import annotations

import numpy as np

MARGIN = 2.0  # a run must outlast the longest normal one this many times
MIN_S = 1.0  # and last at least this long


class FrozenCheck:
    """Per-channel limit on runs of unchanged values, fitted on normal flights.

    Parameters
    ----------
    rate_hz : sample rate, to turn `min_s` into rows.
    margin : a run must outlast the longest normal one this many times.
    min_s : and last at least this long.
    gap_rows : and be longer than a gap the log reader fills by repeating the last value.

    Attributes
    ----------
    limit_rows_ : (C,) a channel is frozen once this many consecutive rows equal their
        predecessor; infinite for a channel constant over a whole normal flight.
    """

    def __init__(
        self, rate_hz: float, margin: float = MARGIN, min_s: float = MIN_S, gap_rows: int = 0
    ):
        self.rate_hz, self.margin, self.min_s = float(rate_hz), float(margin), float(min_s)
        self.gap_rows = int(gap_rows)

    def fit(self, flights: list[np.ndarray]) -> FrozenCheck:
        """flights: raw rows (n, C) of normal flights, each from its first row."""
        flights = [np.asarray(v, np.float32) for v in flights if len(v) > 1]
        if not flights:
            raise ValueError("no normal flight of two rows or more to fit the frozen check on")
        longest = np.zeros(flights[0].shape[1])
        constant = np.zeros(flights[0].shape[1], bool)
        for values in flights:
            runs = FrozenStream(np.full(len(longest), np.inf)).runs(values)
            longest = np.maximum(longest, runs.max(axis=0))
            constant |= runs[-1] == len(values) - 1
        floor = max(round(self.min_s * self.rate_hz), self.gap_rows + 1)
        limit = np.maximum(floor, np.ceil(self.margin * longest))
        self.limit_rows_ = np.where(constant, np.inf, limit)
        return self

    def stream(self) -> FrozenStream:
        """A fresh state for one flight."""
        if not hasattr(self, "limit_rows_"):
            raise RuntimeError("frozen check is not fitted; call fit() first")
        return FrozenStream(self.limit_rows_)

    def to_dict(self) -> dict:
        settings = {"rate_hz": self.rate_hz, "margin": self.margin, "min_s": self.min_s}
        return {**settings, "gap_rows": self.gap_rows, "limit_rows_": self.limit_rows_.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> FrozenCheck:
        check = cls(d["rate_hz"], d["margin"], d["min_s"], d["gap_rows"])
        check.limit_rows_ = np.asarray(d["limit_rows_"], dtype=np.float64)
        return check


class FrozenStream:
    """One flight's runs of unchanged values, chunk by chunk."""

    def __init__(self, limit_rows: np.ndarray):
        self.limit_rows = limit_rows
        self.last = np.full(len(limit_rows), np.nan, np.float32)  # the previous row
        self.run = np.zeros(len(limit_rows))  # rows equal to their predecessor, up to it

    def runs(self, values: np.ndarray) -> np.ndarray:
        """(n, C) raw rows -> (n, C) how many rows in a row, up to each, equal their predecessor
        (0 where the value changed; a missing value breaks a run). Advances the stream."""
        x = np.asarray(values, dtype=np.float32)
        n = len(x)
        if n == 0:
            return np.zeros((0, len(self.last)))
        same = x == np.vstack([self.last, x[:-1]])
        idx = np.arange(n)[:, None]
        last_change = np.maximum.accumulate(np.where(same, -1, idx), axis=0)
        runs = np.where(last_change >= 0, idx - last_change, self.run + idx + 1)
        self.last, self.run = x[-1].copy(), runs[-1].astype(np.float64)
        return runs

    def feed(self, values: np.ndarray) -> np.ndarray:
        """(n, C) raw rows -> (n, C) bool: the channel has been frozen past its limit."""
        return self.runs(values) >= self.limit_rows
