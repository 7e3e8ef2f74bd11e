"""CSV log -> validated `Flight`, whole or as a stream of chunks.

Both paths run the same `LogReader`, so a log that validates whole also streams, and a bad cell
gets the same message either way.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.data.csvfile import CsvFile
from anomaly.data.schema import (
    LABEL_CANDIDATES,
    MAX_ABS_VALUE,
    NUMERIC_SHARE,
    TIME_CANDIDATES,
    Flight,
    LogError,
    LogFormat,
    TimeParser,
    find_column,
    is_candidate,
    numbers,
)

LOG_SUFFIXES = (".csv", ".csv.gz")
# What each column holds (numbers or text; seconds or timestamps) is judged on this many first rows,
# whatever the chunk size, so that chunked and whole reading pick the same channels.
SAMPLE_ROWS = 1000

Found = list[tuple[int, LogError]]  # problems in a chunk: (row where seen, error)


@dataclass
class Chunk:
    """A validated, gap-filled slice of a log; `row_offset` is the index of its first data row."""

    time: np.ndarray  # (n,) absolute seconds
    values: np.ndarray  # (n, n_channels) float32
    labels: np.ndarray | None  # (n,) int8
    row_offset: int


def is_log_file(path: Path) -> bool:
    return path.name.lower().endswith(LOG_SUFFIXES)  # FLIGHT1.CSV from a logger's SD card too


def printable(text: str) -> str:
    """A path as text every table can hold: a name that is not UTF-8 (a logger's Latin-1 card)
    reaches Python as surrogates, which pandas and pyarrow refuse; its bytes are escaped."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def flight_id_of(path: Path) -> str:
    name = path.name
    for suffix in (".csv.gz", ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def is_scoring_output(path: Path) -> bool:
    """What `anomaly score` writes (`x.scored.csv`, and `events.csv` beside its summary.json):
    a folder scored into itself is not read back as logs the next time."""
    return ".scored." in path.name or (
        path.name == "events.csv" and (path.parent / "summary.json").exists()
    )


log = logging.getLogger(__name__)
DATASET_TABLES = ("manifest.csv", "split.csv")  # a dataset folder's own tables (data.datasets)


def _not_a_log(path: Path) -> bool:
    return is_scoring_output(path) or path.name in DATASET_TABLES


# in a folder while `anomaly synth` writes over a dataset there: left by an interrupted run, it
# makes every command refuse the folder, whose flights may be old and new under one manifest
UNFINISHED = ".anomaly-synth-unfinished"


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (a dataset folder means its `flights/`) and globs -> sorted log paths.

    A name that matches nothing is kept, so that reading it reports 'file not found' for it.
    Folders and globs leave out scoring outputs and a dataset's own tables (`manifest.csv`,
    `split.csv`, which a plain folder of logs may hold beside them); a file named on its own is
    always read.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            folder = p / "flights" if (p / "flights").is_dir() else p
            beside = [
                f.name
                for f in p.iterdir()
                if folder != p and f.is_file() and is_log_file(f) and not _not_a_log(f)
            ]
            if beside:  # a dataset folder reads flights/ alone: say what it leaves
                log.warning(
                    "%s: reading its flights/ folder; %d log(s) beside it are not read (%s)",
                    *(printable(str(p)), len(beside), printable(", ".join(sorted(beside)[:3]))),
                )
            logs = (f for f in folder.iterdir() if f.is_file() and is_log_file(f))
            found = sorted(f for f in logs if not _not_a_log(f))
            out.extend(found or [folder])  # a named folder with no log is reported, not dropped
        elif not p.exists() and any(ch in item for ch in "*?["):
            logs = (Path(m) for m in glob.glob(item) if is_log_file(Path(m)))
            # a pattern that matches no log is reported as not found, not silently dropped
            out.extend(sorted(f for f in logs if not _not_a_log(f)) or [p])
        else:
            out.append(p)
    _refuse_unfinished(out)
    seen: set[Path] = set()  # one file named twice (x.csv, ./x.csv, /abs/x.csv) is read once
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def _refuse_unfinished(paths: list[Path]) -> None:
    """A dataset an interrupted `anomaly synth` left, however it is named: the folder, its
    flights/, a glob or one of its logs (its flights may be old and new under one manifest)."""
    for folder in {q for p in paths for q in (p.parent, p.parent.parent)} | set(paths):
        if (folder / UNFINISHED).exists():
            why = "an interrupted `anomaly synth` left it half written; run it again"
            raise LogError(str(folder), f"{why} with --overwrite")


@dataclass
class GapCheck:
    """One column's empty cells in one chunk: `run` empty rows at its end (carried into the
    next chunk), `seen` whether it has held a value, and the first gap over the limit (its file
    row and why), if any."""

    run: int
    seen: bool
    row: int | None = None
    why: str | None = None


def gap_check(empty: np.ndarray, run: int, seen: bool, offset: int, limit: int) -> GapCheck:
    """Run lengths of empty cells, continuing the `run` carried from rows before `offset`; the
    first that goes over `limit` is named on the row that crosses it, not when a value comes (a
    watched log whose sensor never reports must fail now, not at its end). One rule for logs
    and for the frames the MLflow model is given. Vectorised: a per-row loop cost seconds a
    million rows."""
    idx = np.arange(len(empty))
    last_value = np.maximum.accumulate(np.where(empty, -1, idx))
    runs = np.where(empty, idx - last_value + np.where(last_value < 0, run, 0), 0)
    over = np.flatnonzero(runs > limit)
    if not len(over):
        return GapCheck(int(runs[-1]) if len(runs) else run, seen or bool((~empty).any()))
    i = int(over[0])
    seen = seen or bool(last_value[i] >= 0)
    rows = f"rows {offset + i - int(runs[i]) + 3}-{offset + i + 2}"
    why = (
        f"gap of more than {limit} empty rows ({rows}); raise --max-gap or fix the log"
        if seen
        else f"no value in its first {int(runs[i])} rows ({rows}), more than the {limit}-row "
        "gap limit: an empty channel (leave it out) or one that starts late (raise --max-gap)"
    )
    return GapCheck(int(runs[i]), seen, offset + i + 2, why)


class LogReader:
    """Streams one CSV log as validated chunks, carrying gap and ordering state across chunks.

    Parameters
    ----------
    path : the log file (.csv or .csv.gz); never modified.
    fmt : how to read it.
    chunk_rows : rows per chunk; None reads the whole file as one chunk.
    required_channels : channels the caller needs (a trained model's); missing ones are an error.
    frames : where the raw frames come from instead of reading the file through once: a
        function of the CsvFile (`anomaly watch` follows a file that is still being written).
    labels : whether to read the label column (scoring and watching do not use it, so a label
        cell they cannot read must not refuse the log; the column is still kept out of the
        channels).
    """

    def __init__(
        self,
        path: str | Path,
        fmt: LogFormat = LogFormat(),
        chunk_rows: int | None = None,
        required_channels: list[str] | None = None,
        frames: Callable[[CsvFile], Iterator[pd.DataFrame]] | None = None,
        labels: bool = True,
    ):
        self.path = Path(path)
        self.read_labels = labels  # scoring: the label column is left out, never read
        self.fmt = fmt
        self.chunk_rows = chunk_rows
        self.required = list(required_channels) if required_channels else None
        self.channels: list[str] = []
        self.time_col: str | None = None
        self.label_col: str | None = None
        self.longest_gap_rows = 0
        self.file = CsvFile(self.path, fmt.sep)
        self._frames = frames or (lambda file: file.frames(chunk_rows))
        self._unnamed: list[str] = []  # columns with no name that must stay empty

    # -- header -------------------------------------------------------------------------------
    def _resolve_columns(self) -> pd.DataFrame:
        """Time, label and channel columns from the header and the first SAMPLE_ROWS rows;
        returns those rows (their time cells fix the time column's kind)."""
        first = self.file.head(SAMPLE_ROWS)
        cols = self.file.names
        p = str(self.path)
        if first.empty:
            raise LogError(p, "header only, no data rows")
        self.time_col = find_column(cols, self.fmt.time_col, TIME_CANDIDATES)
        if self.time_col is None:
            if self.fmt.time_col is not None:
                raise LogError(p, "time column not found", self.fmt.time_col, 1)
            raise LogError(
                p,
                f"no time column (looked for {', '.join(TIME_CANDIDATES)}; name it with --time-col)",
                None,
                1,
            )
        self.label_col = find_column(cols, self.fmt.label_col, LABEL_CANDIDATES)
        wanted = self.required or (list(self.fmt.channels) if self.fmt.channels else None)
        if wanted is not None:
            for i, ch in enumerate(wanted):
                if ch not in cols:
                    raise LogError(p, "required channel missing", ch, 1)
                if ch in (self.time_col, self.label_col):
                    raise LogError(p, "the time or label column cannot be a channel", ch, 1)
                if ch in wanted[:i]:
                    raise LogError(p, "channel named twice", ch, 1)
            self.channels = list(wanted)
        else:
            # A column with no name is no channel: no model could ask for it. Empty, it is a
            # trailing delimiter and harmless; a value in it is an error (a name left out of the
            # header, or pandas' index column, a clock), judged cell by cell so that chunked and
            # whole reading agree. Named channels (--channels, a model's) ignore such columns.
            self._unnamed = list(self.file.unnamed)
            skip = {self.time_col, self.label_col, *self._unnamed, *self.file.copies}
            self.channels = [
                c
                for c in cols
                if c not in skip and not is_candidate(c) and self._looks_numeric(first[c])
            ]
            if not self.channels:
                raise LogError(p, "no numeric channel column", None, 1)
        for c in (self.time_col, self.label_col, *self.channels):
            if c in self.file.repeated:
                raise LogError(p, "duplicate column name", c, 1)
        return first

    @staticmethod
    def _looks_numeric(col: pd.Series) -> bool:
        filled = col.dropna()
        if filled.empty:
            return True  # all empty: kept so that validation reports it as an all-NaN channel
        return (~np.isnan(numbers(filled))).mean() >= NUMERIC_SHARE

    # -- chunks -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Chunk]:
        p = str(self.path)
        offset = 0
        last_t: float | None = None
        last_valid: np.ndarray | None = None
        gap_run: np.ndarray | None = None
        ever_valid: np.ndarray | None = None
        onset_seen = False
        pending: list[Chunk] = []  # leading rows waiting for a channel's first value
        parse_time: TimeParser | None = None
        for frame in self._frames(self.file):
            if offset == 0:
                first = self._resolve_columns()
                parse_time = TimeParser(p, self.time_col, first[self.time_col])
                n_ch = len(self.channels)
                gap_run = np.zeros(n_ch, dtype=np.int64)
                ever_valid = np.zeros(n_ch, dtype=bool)
            # Every check notes its first problem and the row it shows at; the earliest one is
            # raised, so that the error is the same however the file is cut into chunks.
            found: Found = []
            self._check_unnamed(frame, offset, found)
            n = len(frame)
            t, error = parse_time(frame[self.time_col], offset)
            if error is not None:
                found.append((error.row, error))
            self._check_order(t, last_t, offset, found)
            values = self._numeric_block(frame, offset, found)
            values, last_valid = self._fill_gaps(
                values, last_valid, gap_run, ever_valid, offset, found
            )
            labels = None
            if self.label_col is not None and self.read_labels:
                labels, onset_seen = self._labels(frame[self.label_col], offset, onset_seen, found)
            if found:
                raise self._in_file_rows(min(found, key=lambda f: f[0])[1])
            last_t = float(t[-1])
            chunk = Chunk(t, values, labels, offset)
            offset += n
            pending.append(chunk)
            if ever_valid.all():
                yield from self._backfill(pending)
                pending = []
        if offset == 0:
            raise LogError(p, "header only, no data rows")
        if not ever_valid.all():
            ch = self.channels[int(np.argmin(ever_valid))]
            raise LogError(p, "channel has no values (all empty)", ch)
        self.rows = offset

    def _in_file_rows(self, error: LogError) -> LogError:
        """The error with its rows counted as the file's lines: pandas skips blank lines, so
        the checks count data rows, which a blank line above would put one row early."""
        rows = [int(x) for pair in re.findall(r"rows (\d+)-(\d+)", error.reason) for x in pair]
        wanted = sorted({*rows, *([error.row] if error.row is not None else [])})
        if not wanted:
            return error
        to_file = self.file.file_rows(wanted)
        if all(to_file[r] == r for r in wanted):
            return error
        reason = re.sub(
            r"rows (\d+)-(\d+)",
            lambda m: f"rows {to_file[int(m[1])]}-{to_file[int(m[2])]}",
            error.reason,
        )
        row = None if error.row is None else to_file[error.row]
        return LogError(error.path, reason, error.column, row)

    def _note(
        self, found: Found, why: str, column: str | None, row: int, at: int | None = None
    ) -> None:
        """Note a problem seen at row `at` (default: the row it names)."""
        found.append((row if at is None else at, LogError(str(self.path), why, column, row)))

    def _check_unnamed(self, frame: pd.DataFrame, offset: int, found: Found) -> None:
        """The first value in a column with no name, if any, is an error: it would be lost."""
        for c in self._unnamed:
            filled = frame[c].notna().to_numpy()
            if filled.any():
                why = "a value in a column with no name (name it, or pick channels with --channels)"
                self._note(found, why, c, offset + int(np.argmax(filled)) + 2)

    def _check_order(self, t: np.ndarray, last_t: float | None, offset: int, found: Found) -> None:
        full = t if last_t is None else np.concatenate([[last_t], t])
        problem = order_error(full)
        if problem is not None:
            i, what = problem
            self._note(found, what, self.time_col, offset + i - (last_t is not None) + 2)

    def _numeric_block(self, frame: pd.DataFrame, offset: int, found: Found) -> np.ndarray:
        """Channels as float32 (n, n_channels); a bad cell is noted and left empty."""
        out = np.empty((len(frame), len(self.channels)), dtype=np.float32)
        for j, ch in enumerate(self.channels):
            col = frame[ch]
            arr = numbers(col)
            text = np.isnan(arr) & col.notna().to_numpy()
            big = np.abs(arr) > MAX_ABS_VALUE  # checked in float64, before the cast can overflow
            if (text | big).any():
                i = int(np.argmax(text | big))
                why = f"non-numeric value {str(col.iloc[i])!r}" if text[i] else too_big(arr[i])
                self._note(found, why, ch, offset + i + 2)
                arr = np.where(text | big, np.nan, arr)
            out[:, j] = arr
        return out

    def _fill_gaps(self, values, last_valid, gap_run, ever_valid, offset, found):
        """Forward-fill runs of empty cells up to `max_gap_rows`; a longer run is noted."""
        nan = np.isnan(values)
        if not nan.any():
            ever_valid[:] = True
            gap_run[:] = 0
            return values, values[-1].copy()
        for j in np.flatnonzero(nan.any(axis=0)):
            gap = gap_check(
                nan[:, j], int(gap_run[j]), bool(ever_valid[j]), offset, self.fmt.max_gap_rows
            )
            gap_run[j], ever_valid[j] = gap.run, gap.seen
            if gap.why is not None:
                found.append((gap.row, LogError(str(self.path), gap.why, self.channels[j])))
        self.longest_gap_rows = max(self.longest_gap_rows, int(_longest_run(nan)))
        filled = pd.DataFrame(values).ffill().to_numpy(dtype=np.float32)
        if last_valid is not None:
            still = np.isnan(filled)
            filled = np.where(still, last_valid[None, :], filled)
        ever_valid |= ~np.isnan(values).all(axis=0)
        new_last = filled[-1].copy()
        return filled, new_last

    def _backfill(self, chunks: list[Chunk]) -> Iterator[Chunk]:
        """Leading empty cells take the channel's first value (documented NaN policy)."""
        if len(chunks) == 1 and not np.isnan(chunks[0].values).any():
            yield chunks[0]
            return
        stacked = np.concatenate([c.values for c in chunks])
        stacked = pd.DataFrame(stacked).bfill().to_numpy(dtype=np.float32)
        start = 0
        for c in chunks:
            c.values = stacked[start : start + len(c.values)]
            start += len(c.values)
            yield c

    def _labels(
        self, col: pd.Series, offset: int, onset_seen: bool, found: Found
    ) -> tuple[np.ndarray, bool]:
        num = numbers(col)  # a True label is 1, whatever the read size, as in a channel
        bad = np.isnan(num) & col.notna().to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            why = f"non-numeric label {str(col.iloc[i])!r}"
            self._note(found, why, self.label_col, offset + i + 2)
        blank = col.isna().to_numpy()
        if blank.any():  # read as normal, a blank inside a fault split it in two
            i = int(np.argmax(blank))
            why = "empty label (0 normal, nonzero anomalous: a blank is neither)"
            self._note(found, why, self.label_col, offset + i + 2)
        lab = (np.nan_to_num(num) != 0).astype(np.int8)
        if self.fmt.label_onset_to_end:
            if onset_seen:
                lab[:] = 1
            elif lab.any():
                lab[int(np.argmax(lab)) :] = 1
                onset_seen = True
        return lab, onset_seen


def order_error(t: np.ndarray) -> tuple[int, str] | None:
    """Time must strictly increase (unparsed cells are NaN and compare as neither): the index of
    the first row that does not, and why; None when every row does."""
    d = np.diff(t)
    bad = d <= 0
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    return i + 1, (
        "duplicate timestamp" if d[i] == 0 else "timestamps not sorted (time goes backwards)"
    )


def too_big(value: float) -> str:
    """Why a channel value beyond MAX_ABS_VALUE is refused."""
    if np.isinf(value):
        return "infinite value"
    if abs(value) > np.finfo(np.float32).max:
        return f"value {value:g} is outside the float32 range"
    return f"value {value:g} is larger than {MAX_ABS_VALUE:g}, the limit on channel values"


def _longest_run(mask: np.ndarray) -> int:
    best = 0
    for j in range(mask.shape[1]):
        col = mask[:, j].astype(np.int8)
        if not col.any():
            continue
        edges = np.diff(np.concatenate([[0], col, [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        best = max(best, int((ends - starts).max()))
    return best


def read_flight_log(
    path: str | Path,
    fmt: LogFormat = LogFormat(),
    required_channels: list[str] | None = None,
    fault_type: str | None = None,
    labels: bool = True,
) -> Flight:
    """Read and validate one CSV log; `labels=False` leaves its label column unread (`explain`,
    as scoring, has no use for it).

    Returns
    -------
    Flight with time relative to its first row, values (n_rows, n_channels) float32 and
    labels (n_rows,) where the log has a label column and they are read.
    """
    reader = LogReader(path, fmt, None, required_channels, labels=labels)
    chunks = list(reader)
    time = np.concatenate([c.time for c in chunks])
    values = np.concatenate([c.values for c in chunks])
    labels = np.concatenate([c.labels for c in chunks]) if chunks[0].labels is not None else None
    return Flight(
        flight_id=printable(flight_id_of(Path(path))),
        time=time - time[0],
        values=values,
        channels=list(reader.channels),
        labels=labels,
        fault_type=fault_type,
        longest_gap_rows=reader.longest_gap_rows,
    )
