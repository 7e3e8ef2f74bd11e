"""A signal that stops changing: the stuck sensor that a forecaster cannot see.

A one-step forecaster learns that the next row is close to the last one, so a sensor frozen at
its last value looks to it like a flight with no surprises, and its residuals stay quiet. A
frozen value is easy to see without a model: on a moving aircraft every noisy channel changes
from row to row. Each channel's limit is set on normal flights (its longest run of unchanged
values there, times a margin, at least a second), so a channel that legitimately holds
still (a slow sensor repeated at a faster log rate) only alarms when it holds still far longer
than it ever did in normal flight, and one that never changes within a normal flight (a mode or
status column) is never judged.

A channel may also rest at the lowest or highest value it takes in normal flight: a throttle at
full power through a climb. Such a rest (an extreme that some normal flight held at least as
long as the limit the channel's values away from both extremes would set) is saturation, not a
frozen sensor, and its runs neither set the limit nor alarm: how long a climb lasts is the
mission's choice, not the sensor's health, and a limit learnt from a few flights' climbs raised
false alarms on the next, longer one (cross-validation over the synthetic preset's training
flights). An extreme only touched (a command at its clip for a row in a sharp turn) is judged
like any other value. The price: a sensor that dies at exactly a rest is left to the model's
residuals. The check needs no model, so it is fitted on the normal rows of training and
validation flights alike. Rows up to the current one only; the state is carried across chunks.
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
    low_, high_ : (C,) the channel's rests: its extremes in normal flight where it saturates;
        NaN where it only touches them.
    """

    def __init__(
        self, rate_hz: float, margin: float = MARGIN, min_s: float = MIN_S, gap_rows: int = 0
    ):
        self.rate_hz, self.margin, self.min_s = float(rate_hz), float(margin), float(min_s)
        self.gap_rows = int(gap_rows)

    def fit(self, flights: list[np.ndarray]) -> FrozenCheck:
        """flights: raw rows (n, C) of normal flights, each from its first row; the extremes
        are those of all of them together."""
        flights = [np.asarray(v, np.float32) for v in flights if len(v) > 1]
        if not flights:
            raise ValueError("no normal flight of two rows or more to fit the frozen check on")
        rows = np.concatenate(flights)  # fmin/fmax: NaN for a channel empty in every flight
        self.low_, self.high_ = np.fmin.reduce(rows, axis=0), np.fmax.reduce(rows, axis=0)
        n = flights[0].shape[1]
        runs = [FrozenStream(np.full(n, np.inf)).runs(v) for v in flights]
        # a mode or status column: constant through a whole normal flight of a second or more
        floor = self._limit(np.zeros(n))
        constant = np.any([(r[-1] == len(r) - 1) & (len(r) - 1 >= floor) for r in runs], axis=0)

        def longest(where) -> np.ndarray:  # (C,) the longest run over rows where `where` holds
            return np.max([np.where(where(v), r, 0).max(axis=0) for v, r in zip(flights, runs)], 0)

        low, high = self.low_, self.high_
        inner = self._limit(longest(lambda v: ~at_rest(v, low, high)))
        self.low_ = np.where(longest(lambda v: v == low) >= inner, low, np.nan)
        self.high_ = np.where(longest(lambda v: v == high) >= inner, high, np.nan)
        limit = self._limit(longest(lambda v: ~at_rest(v, self.low_, self.high_)))
        self.limit_rows_ = np.where(constant, np.inf, limit)
        return self

    def _limit(self, longest: np.ndarray) -> np.ndarray:
        """(C,) rows: twice the longest run, at least `min_s` and past a gap the reader fills."""
        floor = max(round(self.min_s * self.rate_hz), self.gap_rows + 1)
        return np.maximum(floor, np.ceil(self.margin * longest))

    def stream(self) -> FrozenStream:
        """A fresh state for one flight."""
        if not hasattr(self, "limit_rows_"):
            raise RuntimeError("frozen check is not fitted; call fit() first")
        return FrozenStream(self.limit_rows_, self.low_, self.high_)

    def to_dict(self) -> dict:
        settings = {"rate_hz": self.rate_hz, "margin": self.margin, "min_s": self.min_s}
        # strict JSON has no NaN or Infinity: null stands for "never" (an infinite limit) and
        # "no rest" (NaN); any other non-finite value is a bug and fails the strict save
        fitted = {"limit_rows_": [None if v == np.inf else float(v) for v in self.limit_rows_]}
        for k in ("low_", "high_"):
            fitted[k] = [None if np.isnan(v) else float(v) for v in getattr(self, k)]
        return {**settings, "gap_rows": self.gap_rows, **fitted}

    @classmethod
    def from_dict(cls, d: dict) -> FrozenCheck:
        check = cls(d["rate_hz"], d["margin"], d["min_s"], d["gap_rows"])
        check.limit_rows_ = _floats(d["limit_rows_"], np.inf, np.float64)
        # saved before saturation was told apart: no value is a rest
        nan = [None] * len(check.limit_rows_)
        check.low_ = _floats(d.get("low_", nan), np.nan, np.float32)
        check.high_ = _floats(d.get("high_", nan), np.nan, np.float32)
        return check


def _floats(values: list, missing: float, dtype: type) -> np.ndarray:
    """A saved list back to an array, null read as `missing` (older files hold NaN/Infinity)."""
    return np.asarray([missing if v is None else v for v in values], dtype=dtype)


class FrozenStream:
    """One flight's runs of unchanged values, chunk by chunk.

    limit_rows : (C,) rows, as FrozenCheck.limit_rows_.
    low, high : (C,) the values where each channel rests, never frozen there (NaN: none).
    """

    def __init__(
        self, limit_rows: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None
    ):
        self.limit_rows = limit_rows
        nan = np.full(len(limit_rows), np.nan, np.float32)
        self.low = nan if low is None else np.asarray(low, np.float32)
        self.high = nan if high is None else np.asarray(high, np.float32)
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
        """(n, C) raw rows -> (n, C) bool: the channel has been frozen past its limit, at a
        value other than where it rests."""
        return (self.runs(values) >= self.limit_rows) & ~at_rest(values, self.low, self.high)


def at_rest(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(n, C) bool: the value is the channel's `low` or `high` rest (NaN: none)."""
    x = np.asarray(values, dtype=np.float32)
    return (x == low) | (x == high)
