"""Row labels -> events: runs of flagged rows, with a minimum length and gap merging."""

from __future__ import annotations

import numpy as np
import pandas as pd

EVENT_COLUMNS = ["flight_id", "start", "end", "duration_s", "peak_score", "top_channels"]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(n,) bool -> [(first_row, last_row)] of each run of True, inclusive."""
    m = np.asarray(mask, dtype=np.int8)
    if m.size == 0:
        return []
    edges = np.diff(np.concatenate([[0], m, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def postprocess(mask: np.ndarray, min_rows: int = 1, merge_gap_rows: int = 0) -> np.ndarray:
    """Merge runs separated by at most `merge_gap_rows`, then drop runs shorter than `min_rows`."""
    mask = np.asarray(mask, dtype=bool).copy()
    if merge_gap_rows > 0:
        r = runs(mask)
        for (_, e1), (s2, _) in zip(r, r[1:]):
            if s2 - e1 - 1 <= merge_gap_rows:
                mask[e1 + 1 : s2] = True
    if min_rows > 1:
        for s, e in runs(mask):
            if e - s + 1 < min_rows:
                mask[s : e + 1] = False
    return mask


def events_table(
    flight_id: str,
    time: np.ndarray,
    mask: np.ndarray,
    scores: np.ndarray,
    contributions: np.ndarray | None = None,
    channels: list[str] | None = None,
    top_k: int = 3,
) -> pd.DataFrame:
    """One row per run of flagged rows.

    Parameters
    ----------
    time : (n,) seconds; mask : (n,) bool; scores : (n,).
    contributions : (n, n_channels) share of each channel in the row score, for top_channels.
    """
    rows = []
    for s, e in runs(mask):
        top = ""
        if contributions is not None and channels is not None:
            blame = contributions[s : e + 1].mean(axis=0)
            if np.ptp(blame) > 1e-9:  # uniform blame (no attribution) names no channel
                top = ";".join(channels[j] for j in np.argsort(-blame)[:top_k])
        rows.append(
            {
                "flight_id": flight_id,
                "start": float(time[s]),
                "end": float(time[e]),
                "duration_s": float(time[e] - time[s]),
                "peak_score": float(scores[s : e + 1].max()),
                "top_channels": top,
            }
        )
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)
