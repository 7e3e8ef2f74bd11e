"""The flight-log format: what a valid log is, and the one error type that says why not.

A log is validated once, here, at the boundary; everything downstream trusts a `Flight`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anomaly.errors import UserError

TIME_CANDIDATES = ("time", "time_s", "t", "timestamp", "%time", "seconds")
LABEL_CANDIDATES = ("label", "is_anomaly", "anomaly")
# A column counts as a channel when at least this share of its filled cells are numbers; below it
# the column is text (a mode or a comment) and is left out rather than reported as broken. The
# same share decides whether a time column holds seconds or timestamps.
NUMERIC_SHARE = 0.5
# Largest channel magnitude accepted. Models square errors in float32 (largest value 3.4e38, the
# square of 1.8e19) and sum them over a window of up to a few hundred cells, and the scalers square
# deviations in float32 too: 1e18 keeps those sums finite, and no sensor reads anywhere near it.
MAX_ABS_VALUE = 1e18


class LogError(UserError):
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
            if len(given["sep"]) != 1:
                raise UserError(f"--sep {sep!r}: one character (or 'tab')")
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
    """Resolve a named column, or the first candidate present, case-insensitively; where two
    columns differ only in case, the first of them."""
    lower: dict[str, str] = {}
    for c in columns:
        lower.setdefault(c.lower().strip(), c)
    if wanted is not None:
        return lower.get(wanted.lower().strip())
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    return None


def is_candidate(column: str) -> bool:
    """A time or label candidate by name: never taken as a channel (a model built on the clock,
    or on the answer), even when another column was picked as time or label."""
    return column.lower().strip() in TIME_CANDIDATES + LABEL_CANDIDATES


# An ISO 8601 time with a zone: a clock time (after 'T' or a space) then Z or an offset (+02,
# +0200, +02:00).
ZONED = re.compile(r"[T\s]\d\d(?::?\d\d){0,2}(?:\.\d*)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$")
SECONDS_PER_UNIT = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def numbers(col: pd.Series) -> np.ndarray:
    """A column's cells as float64, NaN where a cell is not a number. A boolean cell ('true' or
    'false' in any case, as pandas' CSV reader takes them) is 1 or 0 wherever it stands: pandas
    reads a chunk holding only such cells as booleans but the same cells beside numbers as
    text, and a value must not depend on how many rows a read brought (`anomaly watch` reads
    one)."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64)
    if col.dtype == object or pd.api.types.is_string_dtype(col):
        col = col.map(_boolean_as_number)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)


def _boolean_as_number(v):
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return 1.0 if v.lower() == "true" else 0.0
    return v


class TimeParser:
    """Time cells -> seconds (float64, absolute; the caller makes them relative), chunk by chunk.

    A sample of the column's first cells fixes its kind: numbers when most filled cells are
    numbers, else ISO 8601 timestamps, with or without a zone as the first one. A cell of another
    kind is then reported at its own row, quoting it, instead of turning its whole chunk into a
    parse error at the chunk's first row. Zoned times are converted to UTC one by one, so mixed
    offsets work.
    """

    def __init__(self, path: str, name: str, sample: pd.Series):
        self.path, self.name = path, name
        self.kind = self._kind_of(sample)  # 'number', 'iso' or 'iso-zoned'

    def __call__(self, col: pd.Series, row_offset: int = 0) -> tuple[np.ndarray, LogError | None]:
        """Seconds (NaN where a cell is bad) and the error of the first bad cell, if any."""
        empty = col.isna().to_numpy()
        if self.kind == "number":
            t = numbers(col)
            reasons = [(empty, "empty time value"), (np.isnan(t), "cannot parse time value {!r}")]
            reasons.append((np.isinf(t), "time value {!r} is not finite"))
        else:
            t, reasons = self._timestamps(col)
            reasons.insert(0, (empty, "empty time value"))
        bad = np.zeros(len(t), dtype=bool)
        for mask, _ in reasons:
            bad |= mask
        if not bad.any():
            return t, None
        i = int(np.argmax(bad))
        why = next(msg for mask, msg in reasons if mask[i]).format(str(col.iloc[i]))
        return np.where(bad, np.nan, t), LogError(self.path, why, self.name, row_offset + i + 2)

    @staticmethod
    def _kind_of(col: pd.Series) -> str:
        filled = col.dropna()
        if filled.empty or (~np.isnan(numbers(filled))).mean() >= NUMERIC_SHARE:
            return "number"
        return "iso-zoned" if ZONED.search(str(filled.iloc[0])) else "iso"

    def _timestamps(self, col: pd.Series) -> tuple[np.ndarray, list]:
        text = col.astype(str)
        filled = col.notna().to_numpy()
        number = filled & pd.to_numeric(col, errors="coerce").notna().to_numpy()
        # strict ISO 8601: pandas' "mixed" would guess each cell's format on its own (05/01 as
        # May 1 here and January 5 there; '12:00' as today at noon)
        parsed = pd.to_datetime(
            text.where(filled & ~number), errors="coerce", format="ISO8601", utc=True
        )
        good = parsed.notna().to_numpy()
        zoned = text.str.contains(ZONED).to_numpy(dtype=bool)
        other = good & (zoned != (self.kind == "iso-zoned"))
        stamps = parsed.dt.tz_convert(None).to_numpy()
        per_s = SECONDS_PER_UNIT[np.datetime_data(stamps.dtype)[0]]
        t = np.where(good & ~other, stamps.astype(np.int64) / per_s, np.nan)
        has = "has a time zone while the first row has none"
        if self.kind == "iso-zoned":
            has = "has no time zone while the first row has one"
        unparsed = filled & ~good
        return t, [(other, "time value {!r} " + has), (unparsed, "cannot parse time value {!r}")]
