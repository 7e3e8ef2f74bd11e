"""Alarms -> events: one row per alarm, built block by block (an alarm may span blocks).

The one events table of the tool: `anomaly train` logs it, `anomaly score` writes it, `anomaly
watch` appends to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EVENT_COLUMNS = [
    "flight_id",
    "start",
    "end",
    "duration_s",
    "peak_score",
    "channel",
    "top_channels",
]
TOP_K = 3


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(n,) bool -> [(first_row, last_row)] of each run of True, inclusive."""
    m = np.asarray(mask, dtype=np.int8)
    if m.size == 0:
        return []
    edges = np.diff(np.concatenate([[0], m, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


class EventBuilder:
    """Collects the alarms of one flight.

    `start` is the time the alarm was raised (after any confirmation), `channel` the channel
    whose statistic raised it; `top_channels` ranks channels by their share of the statistic over
    the whole event. Models without per-channel residuals name no channel.
    """

    def __init__(self, flight_id: str, channels: list[str], attribution: bool = True):
        self.flight_id, self.channels, self.attribution = flight_id, channels, attribution
        self.rows: list[dict] = []
        self.open: dict | None = None

    def add(
        self,
        time: np.ndarray,
        flags: np.ndarray,
        score: np.ndarray,
        channel: np.ndarray,
        contributions: np.ndarray,
    ) -> list[dict]:
        """Consecutive rows of the flight; returns the events that started in them, each as it
        stood on the row that raised it (its peak is that row's statistic), so what `anomaly
        watch` prints and appends does not depend on how many rows a read brought."""
        started = []
        if len(time) == 0:  # nothing happened: an alarm open before stays open
            return started
        spans = runs(flags)
        if self.open is not None and not (spans and spans[0][0] == 0):
            self._close()
        for s, e in spans:
            if not (s == 0 and self.open is not None):
                self.open = {
                    "flight_id": self.flight_id,
                    "start": float(time[s]),
                    "peak_score": -np.inf,
                    "channel": self._name(int(channel[s])),
                    "blame": np.zeros(contributions.shape[1]),
                }
                started.append(
                    {k: self.open[k] for k in ("flight_id", "start", "channel")}
                    | {"peak_score": float(score[s])}
                )
            o = self.open
            o["end"] = float(time[e])
            o["peak_score"] = max(o["peak_score"], float(score[s : e + 1].max()))
            o["blame"] = o["blame"] + contributions[s : e + 1].sum(axis=0)
            if e < len(flags) - 1:
                self._close()
        return started

    def _name(self, j: int) -> str:
        return self.channels[j] if self.attribution else ""

    def _close(self) -> None:
        o, self.open = self.open, None
        blame = o.pop("blame")
        top = np.argsort(-blame)[:TOP_K] if self.attribution else []
        o["top_channels"] = ";".join(self.channels[j] for j in top)
        o["duration_s"] = o["end"] - o["start"]
        self.rows.append(o)

    def finish(self) -> list[dict]:
        if self.open is not None:
            self._close()
        return self.rows


def events_table(events: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(events, columns=EVENT_COLUMNS)
