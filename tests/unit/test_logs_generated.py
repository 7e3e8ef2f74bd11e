"""Generated hostile logs: whatever the bytes, `read_flight_log` returns a Flight that holds what
was written, or raises a LogError naming the file; and chunked reading agrees with whole reading.

Logs vary in dialect (delimiter, quoting, line ends, BOM, encoding, gzip), time format (float
seconds, integer milliseconds, ISO 8601 naive, with Z, with one or mixed offsets), headers
(padded, repeated, empty, quoted, time and label look-alikes), cells (gaps, NA strings, stray
text, extreme and non-finite numbers, subnormals) and row order (swapped or repeated times).
"""

from __future__ import annotations

import gzip
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from anomaly.data.logs import LogReader, read_flight_log
from anomaly.data.schema import TIME_CANDIDATES, Flight, LogError, find_column

TIME_NAMES = ["time", "timestamp", " Time ", "%time", "t", "clock"]  # 'clock' is no time column
CHANNEL_NAMES = ["alt", " alt", "airspeed", "roll rate", "x;y", 'q"r', "café", "label", "t", ""]
NA_TEXT = ["", "NA", "n/a", "null", "nan", "NaN", "#N/A"]
STRAY_TEXT = ["oops", "1O.5", "12:00", "--", "é"]
EXTREMES = [
    math.inf,
    -math.inf,
    math.nan,
    1e38,
    -1e38,
    1e300,
    3.4e38,
    1e18,
    -1e19,
    -0.0,
    5e-324,
    1e-40,
]
ZONES = [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
EPOCH = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)


@dataclass
class Log:
    """A generated log: its text cells, what they mean, and how to write it."""

    header: list[str]
    cells: list[list[str]]  # rows of text cells, time first
    times: list[float]  # seconds the time cells mean (absolute)
    numbers: list[list[float | None]]  # per row and channel: the number written, or None
    sep: str
    quote_all: bool
    newline: str
    encoding: str
    gz: bool
    clean: bool  # written as a plain log: it must be read, not refused


def _quote(cell: str, sep: str, quote_all: bool) -> str:
    if quote_all or any(c in cell for c in (sep, '"', "\r", "\n")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _render(log: Log) -> bytes:
    lines = [log.header] + log.cells
    text = log.newline.join(
        log.sep.join(_quote(c, log.sep, log.quote_all) for c in line) for line in lines
    )
    data = (text + log.newline).encode(log.encoding)
    return gzip.compress(data) if log.gz else data


@st.composite
def time_cells(draw, n: int) -> tuple[list[str], list[float]]:
    kind = draw(st.sampled_from(["seconds", "ms", "iso", "iso-z", "iso-offset", "iso-mixed"]))
    if kind == "seconds":
        start = draw(st.sampled_from([0.0, 12.5, -300.0, 1.7e9]))
        step = draw(st.sampled_from([0.01, 0.05, 0.1, 1.0]))
        values = [start + i * step for i in range(n)]
        return [repr(v) for v in values], values
    if kind == "ms":
        start = draw(st.integers(0, 10**12))
        step = draw(st.sampled_from([10, 50, 100]))
        values = [start + i * step for i in range(n)]
        return [str(v) for v in values], [float(v) for v in values]
    step_ms = draw(st.sampled_from([50, 100, 1000]))
    stamps = [EPOCH + timedelta(milliseconds=i * step_ms) for i in range(n)]
    sep = draw(st.sampled_from(["T", " "]))
    zone = draw(st.sampled_from(ZONES))
    cells = []
    for ts in stamps:
        if kind == "iso":
            cells.append(ts.replace(tzinfo=None).isoformat(sep, "milliseconds"))
        elif kind == "iso-z":
            cells.append(ts.replace(tzinfo=None).isoformat(sep, "milliseconds") + "Z")
        else:
            z = draw(st.sampled_from(ZONES)) if kind == "iso-mixed" else zone
            cells.append(ts.astimezone(z).isoformat(sep, "milliseconds"))
    return cells, [(ts - EPOCH).total_seconds() for ts in stamps]


@st.composite
def channel_cell(draw) -> tuple[str, float | None]:
    kind = draw(st.sampled_from(["number"] * 30 + ["int"] * 3 + ["gap"] * 4 + ["text", "extreme"]))
    if kind == "number":
        v = draw(st.floats(-1e6, 1e6, allow_nan=False))
        return repr(v), v
    if kind == "int":
        v = draw(st.integers(-(10**6), 10**6))
        return str(v), float(v)
    if kind == "gap":
        return draw(st.sampled_from(NA_TEXT)), None
    if kind == "text":
        return draw(st.sampled_from(STRAY_TEXT)), None
    v = draw(st.sampled_from(EXTREMES))
    return repr(v), None if math.isnan(v) else v


def _hostile(draw, p: int) -> bool:
    """True with a chance of about 1 in `p`, so that most logs are clean enough to read."""
    return draw(st.integers(0, p - 1)) == 0


def hostile_at(draw, fired: list, p: int) -> bool:
    """`_hostile`, remembering in `fired` that a change a reader may refuse was drawn."""
    if _hostile(draw, p):
        fired.append(p)
        return True
    return False


@st.composite
def logs(draw) -> Log:
    n = draw(st.integers(1, 25))
    time_text, times = draw(time_cells(n))
    hostile = []
    if hostile_at(draw, hostile, 8) and n > 2:  # rows out of order, or a time repeated
        i = draw(st.integers(1, n - 1))
        j = draw(st.sampled_from([i - 1, 0]))
        time_text[i], times[i] = time_text[j], times[j]
    if hostile_at(draw, hostile, 10):  # stray text or an empty cell in the time column
        i = draw(st.integers(0, n - 1))
        time_text[i] = draw(st.sampled_from(STRAY_TEXT + ["", "NA", "inf"]))
        times[i] = math.nan
    n_ch = draw(st.integers(1, 4))
    if hostile_at(draw, hostile, 4):  # names a reader may take for time or label
        names = draw(
            st.lists(st.sampled_from(CHANNEL_NAMES), min_size=n_ch, max_size=n_ch, unique=True)
        )
    else:
        names = [f"ch{j}" for j in range(n_ch)]
    time_name = draw(st.sampled_from(TIME_NAMES)) if hostile_at(draw, hostile, 4) else "time"
    columns = []
    for _ in range(n_ch):
        if hostile_at(draw, hostile, 4):
            columns.append([draw(channel_cell()) for _ in range(n)])
        else:
            values = draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n))
            columns.append([(repr(v), v) for v in values])
    cells = [[time_text[i]] + [col[i][0] for col in columns] for i in range(n)]
    numbers = [[col[i][1] for col in columns] for i in range(n)]
    header = [time_name] + names
    if hostile_at(
        draw, hostile, 8
    ):  # a delimiter at the end of every line: an empty column with no name
        header, cells = header + [""], [row + [""] for row in cells]
    return Log(
        header=header,
        cells=cells,
        times=times,
        numbers=numbers,
        sep=draw(st.sampled_from([",", ";", "\t"])),
        quote_all=draw(st.booleans()),
        newline=draw(st.sampled_from(["\n", "\r\n"])),
        encoding=draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"])),
        gz=_hostile(draw, 4),
        clean=n >= 2 and not hostile,
    )


def _check_flight(log: Log, path: Path) -> Flight:
    """A Flight that came back must hold exactly what was written."""
    f = read_flight_log(path)
    n = len(log.cells)
    assert f.values.dtype == np.float32 and f.values.shape == (n, len(f.channels)) == (
        f.n_rows,
        len(f.channels),
    )
    assert np.all(np.isfinite(f.values))
    assert f.time[0] == 0 and np.all(np.diff(f.time) > 0)
    encoding = "latin-1" if log.encoding == "latin-1" else "utf-8"  # a BOM is not in a name
    written = [n.encode(encoding).decode("utf-8", errors="replace").strip() for n in log.header]
    # the time is the generated one, unless a channel took a name of higher rank (e.g. 't' over
    # 'timestamp'): then that channel's numbers
    k = written.index(find_column(written, None, TIME_CANDIDATES))
    times = log.times if k == 0 else [row[k - 1] for row in log.numbers]
    np.testing.assert_allclose(f.time, np.asarray(times) - times[0], rtol=1e-9, atol=1e-6)
    # each channel is one written column, its numbers in place (gaps aside)
    for j, name in enumerate(f.channels):
        assert written.count(name) == 1 and written.index(name) > 0
        k = written.index(name) - 1
        for i in range(n):
            v = log.numbers[i][k]
            if v is not None:
                assert f.values[i, j] == np.float32(v) or math.isclose(
                    f.values[i, j], v, rel_tol=1e-6, abs_tol=1e-30
                )
    return f


# derandomize: the same 200 logs on every run and machine (CI reproducible); no example database.
# `pytest --hypothesis-show-statistics` shows how many were read and which errors the rest gave.
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(log=logs(), chunk_rows=st.integers(1, 7))
def test_reader_returns_what_was_written_or_a_log_error(log, chunk_rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("flight.csv.gz" if log.gz else "flight.csv")
        path.write_bytes(_render(log))
        whole, whole_error, chunked_error = None, None, None
        try:
            whole = _check_flight(log, path)
            event("read")
        except LogError as exc:
            assert str(path) in str(exc)
            whole_error = str(exc)
            event(f"LogError: {exc.reason[:40]}")
        try:
            chunks = list(LogReader(path, chunk_rows=chunk_rows))
        except LogError as exc:
            chunked_error = str(exc)
        assert chunked_error == whole_error
        assert whole is not None or not log.clean, f"a plain log was refused: {whole_error}"
        if log.clean:
            event("clean")  # --hypothesis-show-statistics: how many plain logs were drawn
        if whole is not None:
            np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), whole.values)
            time = np.concatenate([c.time for c in chunks])
            np.testing.assert_array_equal(time - time[0], whole.time)
