"""Chunked scoring that reproduces one-pass scores exactly, with memory bound by the chunk size.

Windows sit on the same grid as in one pass (every `score_stride` rows from row 0, plus one
window ending on the last row). A row is final once no later grid window can cover it and it is
more than one window before the newest row (the last window of the log may still cover it).
Alarm post-processing (gap merging, minimum length) only looks `min_event_rows + merge_gap_rows`
rows around a row, so flags are released that many rows late.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from anomaly.data.windows import accumulate_windows, mean_errors
from anomaly.detect.events import postprocess
from anomaly.detect.pipeline import Pipeline, contributions, flight_relative


@dataclass
class ScoredBlock:
    """Consecutive final rows: time (n,), score (n,), is_anomaly (n,), contributions (n, F)."""

    time: np.ndarray
    score: np.ndarray
    is_anomaly: np.ndarray
    contributions: np.ndarray


class StreamScorer:
    """Feed chunks of raw rows in order; collect `ScoredBlock`s; call `close()` at the end."""

    def __init__(self, pipeline: Pipeline, name: str = "flight"):
        if pipeline.threshold is None:
            raise ValueError("pipeline has no fitted threshold")
        self.p = pipeline
        self.name = name
        self.T, self.s = pipeline.window_len, pipeline.score_stride
        F = len(pipeline.channels)
        self.base = 0  # global index of vals[0]
        self.vals = np.zeros((0, F), dtype=np.float32)
        self.fin = 0  # first row not yet final; sums[0] is that row
        self.sums = np.zeros((0, F))
        self.counts = np.zeros(0, dtype=np.int64)
        self.times = np.zeros(0)  # times of rows from fin
        self.next_g = 0
        self.n_seen = 0
        # post stage: baseline history, smoothing carry, and flags held back for post-processing
        self.k = max(1, pipeline.smooth_rows)
        self.raw_tail = np.zeros(0)
        self.base_span = (
            pipeline.baseline_rows + pipeline.baseline_lag_rows if pipeline.baseline_rows > 0 else 0
        )
        self.base_hist = np.zeros(0)
        self.look = pipeline.min_event_rows + pipeline.merge_gap_rows + 1
        self.ctx_flags = np.zeros(0, dtype=bool)  # already released rows kept as left context
        self.rows_posted = 0  # rows that have entered the row stage (for the warm-up)
        self.hold = ScoredBlock(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), np.zeros((0, F)))

    # -- window stage -------------------------------------------------------------------------
    def _add_windows(self, starts: np.ndarray) -> None:
        if len(starts) == 0:
            return
        err = self.p.window_errors(self.vals, starts - self.base)  # (n_windows, T, F)
        accumulate_windows(self.sums, self.counts, err, starts - self.fin)

    def _release(self, upto: int) -> Iterator[ScoredBlock]:
        n = upto - self.fin
        if n <= 0:
            return
        errors = mean_errors(self.sums[:n], self.counts[:n])
        times = self.times[:n]
        self.sums, self.counts, self.times = self.sums[n:], self.counts[n:], self.times[n:]
        self.fin = upto
        yield from self._post(times, errors, final=False)

    def feed(self, time: np.ndarray, values: np.ndarray) -> Iterator[ScoredBlock]:
        scaled = self.p.scaler.transform(np.asarray(values, dtype=np.float32))
        self.vals = np.concatenate([self.vals, scaled])
        n_new = len(scaled)
        self.sums = np.concatenate([self.sums, np.zeros((n_new, scaled.shape[1]))])
        self.counts = np.concatenate([self.counts, np.zeros(n_new, dtype=np.int64)])
        self.times = np.concatenate([self.times, np.asarray(time, dtype=np.float64)])
        self.n_seen += n_new
        starts = np.arange(self.next_g, self.n_seen - self.T + 1, self.s)
        self._add_windows(starts)
        if len(starts):
            self.next_g = int(starts[-1]) + self.s
        yield from self._release(max(self.fin, min(self.next_g, self.n_seen - self.T)))
        keep_from = max(0, min(self.next_g, self.n_seen - self.T))
        if keep_from > self.base:
            self.vals = self.vals[keep_from - self.base :]
            self.base = keep_from

    def close(self) -> Iterator[ScoredBlock]:
        n = self.n_seen
        if n < self.T:
            raise ValueError(f"{self.name}: {n} rows, shorter than one window ({self.T} rows)")
        last = n - self.T
        if last % self.s != 0:
            self._add_windows(np.array([last]))
        n_left = n - self.fin
        errors = mean_errors(self.sums[:n_left], self.counts[:n_left])
        yield from self._post(self.times[:n_left], errors, final=True)

    # -- row stage ----------------------------------------------------------------------------
    def _post(self, times: np.ndarray, errors: np.ndarray, final: bool) -> Iterator[ScoredBlock]:
        contrib = contributions(errors)
        # baseline and smoothing both see the rows before this block, as one pass would
        hist = np.concatenate([self.base_hist, errors.mean(axis=1)])
        raw = flight_relative(hist, self.p.baseline_rows, self.p.baseline_lag_rows)[
            len(self.base_hist) :
        ]
        self.base_hist = hist[-self.base_span :] if self.base_span else np.zeros(0)
        both = np.concatenate([self.raw_tail, raw])
        c = np.cumsum(np.concatenate([[0.0], both]))
        idx = np.arange(len(self.raw_tail) + 1, len(both) + 1)
        lo = np.maximum(idx - self.k, 0)
        score = (c[idx] - c[lo]) / (idx - lo)
        self.raw_tail = both[-(self.k - 1) :] if self.k > 1 else np.zeros(0)
        flags = self.p.raw_flags(score, self.rows_posted)
        self.rows_posted += len(score)
        h = self.hold
        h = ScoredBlock(
            np.concatenate([h.time, times]),
            np.concatenate([h.score, score]),
            np.concatenate([h.is_anomaly, flags]),
            np.concatenate([h.contributions, contrib]),
        )
        ctx = self.ctx_flags
        processed = postprocess(
            np.concatenate([ctx, h.is_anomaly]), self.p.min_event_rows, self.p.merge_gap_rows
        )[len(ctx) :]
        n_out = len(h.time) if final else max(0, len(h.time) - self.look)
        if n_out:
            yield ScoredBlock(
                h.time[:n_out], h.score[:n_out], processed[:n_out], h.contributions[:n_out]
            )
            self.ctx_flags = np.concatenate([ctx, h.is_anomaly[:n_out]])[-self.look :]
        self.hold = ScoredBlock(
            h.time[n_out:], h.score[n_out:], h.is_anomaly[n_out:], h.contributions[n_out:]
        )
