"""The flight-log format: what a valid log is, and the one error type that says why not.

A log is validated once, here, at the boundary; everything downstream trusts a `Flight`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

TIME_CANDIDATES = ("time", "time_s", "t", "timestamp", "%time", "seconds")
LABEL_CANDIDATES = ("label", "is_anomaly", "anomaly")


class LogError(ValueError):
    """A log that cannot be used, with the file, column and row that show why.

    Rows are counted as in a spreadsheet: the header is row 1, the first data row is row 2.
    """

    def __init__(self, path: str, message: str, column: str | None = None, row: int | None = None):
        self.path, self.column, self.row, self.reason = str(path), column, row, message
        where = [self.path]
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass(frozen=True)
class LogFormat:
    """How to read one CSV log.

    Parameters
    ----------
    sep : delimiter; None sniffs among ',', ';' and tab.
    time_col : time column; None picks the first of TIME_CANDIDATES present (case-insensitive).
    label_col : label column (0 normal, nonzero anomalous); None picks a LABEL_CANDIDATES column.
    channels : channel columns to keep; None keeps every numeric column except time and label.
    max_gap_rows : longest run of empty cells forward-filled; longer gaps are an error.
    label_onset_to_end : a nonzero label marks the fault onset and every later row is anomalous
        (ALFA's convention: a fault is never repaired).
    """

    sep: str | None = None
    time_col: str | None = None
    label_col: str | None = None
    channels: tuple[str, ...] | None = None
    max_gap_rows: int = 10
    label_onset_to_end: bool = False

    def with_options(
        self,
        sep: str | None = None,
        time_col: str | None = None,
        label_col: str | None = None,
        channels: str | list[str] | tuple[str, ...] | None = None,
        max_gap_rows: int | None = None,
    ) -> LogFormat:
        """This format with each given option in place of its field; None means "not given".

        Flags and config files both come through here: `sep` may be 'tab', `channels` a
        comma-separated string or a list.
        """
        given: dict = {}
        if sep is not None:
            given["sep"] = {"tab": "\t", "\\t": "\t"}.get(sep, sep)
        if time_col is not None:
            given["time_col"] = time_col
        if label_col is not None:
            given["label_col"] = label_col
        if channels is not None:
            names = channels.split(",") if isinstance(channels, str) else channels
            given["channels"] = tuple(c.strip() for c in names if c.strip())
        if max_gap_rows is not None:
            given["max_gap_rows"] = int(max_gap_rows)
        return dataclasses.replace(self, **given)

    @classmethod
    def from_options(cls, **options) -> LogFormat:
        """The default format with the given options (see `with_options`)."""
        return cls().with_options(**options)


@dataclass
class Flight:
    """One validated flight.

    Attributes
    ----------
    flight_id : file name without extension.
    time : (n_rows,) seconds since the first row.
    values : (n_rows, n_channels) float32, no NaN or inf.
    channels : channel names, in column order of `values`.
    labels : (n_rows,) int8 with 1 for anomalous rows, or None when the log has no labels.
    fault_type : from a dataset manifest ("none" for a fault-free flight), else None.
    longest_gap_rows : longest run of empty cells that was filled.
    """

    flight_id: str
    time: np.ndarray
    values: np.ndarray
    channels: list[str]
    labels: np.ndarray | None = None
    fault_type: str | None = None
    longest_gap_rows: int = 0

    @property
    def n_rows(self) -> int:
        return len(self.time)

    @property
    def duration_s(self) -> float:
        return float(self.time[-1] - self.time[0]) if self.n_rows > 1 else 0.0

    @property
    def sample_rate_hz(self) -> float:
        return float(1.0 / np.median(np.diff(self.time))) if self.n_rows > 1 else float("nan")

    @property
    def onset_index(self) -> int | None:
        """Row of the first anomalous label, None if the flight has none."""
        if self.labels is None or not self.labels.any():
            return None
        return int(np.argmax(self.labels > 0))

    def normal_prefix(self) -> np.ndarray:
        """Rows before the first anomaly: the only part of a flight that training may see."""
        onset = self.onset_index
        return self.values if onset is None else self.values[:onset]


def find_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    """Resolve a named column, or the first candidate present, case-insensitively."""
    lower = {c.lower().strip(): c for c in columns}
    if wanted is not None:
        return lower.get(wanted.lower().strip())
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def parse_time(col: pd.Series, path: str, name: str, row_offset: int = 0) -> np.ndarray:
    """Seconds as float64 from numeric seconds or ISO timestamps (absolute; caller makes relative)."""
    if pd.api.types.is_numeric_dtype(col):
        t = col.to_numpy(dtype=np.float64)
    else:
        parsed = pd.to_datetime(col, errors="coerce", format="mixed")
        bad = parsed.isna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise LogError(
                path, f"cannot parse time value {col.iloc[i]!r}", name, row_offset + i + 2
            )
        t = parsed.astype("datetime64[ns]").to_numpy().astype(np.int64) / 1e9
    nan = np.isnan(t)
    if nan.any():
        raise LogError(path, "empty time value", name, row_offset + int(np.argmax(nan)) + 2)
    return t
