"""`anomaly watch`: follow a CSV log that is still being written and raise alarms as rows arrive.

New complete lines are read as they are appended (as `tail -f` does), validated by the same
reader and checks (sample rate, finite residuals) as every other command, and fed to the same
pipeline stream as `anomaly score`, so an alarm raised here is the alarm batch scoring raises
on the finished file, at the same row.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from anomaly.data.csvfile import CsvFile, read_errors
from anomaly.data.logs import LogReader, printable
from anomaly.data.schema import LogError, LogFormat
from anomaly.detect.batch import scored_blocks
from anomaly.detect.events import EVENT_COLUMNS, EventBuilder
from anomaly.detect.pipeline import Pipeline
from anomaly.errors import UserError

log = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes read at a time
POLL_S = 0.02  # seconds between looks at the file: at 10-50 Hz, a row or less of waiting


@dataclass
class WatchSummary:
    rows: int = 0
    alarms: list[dict] = field(default_factory=list)


def follow(
    file: CsvFile, once: bool, poll_s: float, stop: Callable[[], bool]
) -> Iterator[pd.DataFrame]:
    """The data rows of `file` as they are appended, in frames of complete lines under its
    cleaned header. With `once`, ends at the end of the file; otherwise polls until `stop()`.
    Read as bytes, so the offset reached is exact and `Unchanged` can tell a log that grows
    from one replaced or written anew under the watch."""
    with read_errors(file.path), open(file.path, "rb") as fh:
        header = fh.readline()  # CsvFile has read it
        pending = b""
        row = 2  # file row of the first line in `pending` (the header is row 1)
        seen = Unchanged(file.path, fh, header)
        while True:
            data = fh.read(BLOCK)  # a long log already written is read a block at a time
            pending += data
            cut = pending.rfind(b"\n") + 1
            lines, rest = pending[:cut], pending[cut:]
            if not data and (once or stop()):
                lines, rest = pending, b""  # a last line without its newline
            if lines:  # blank lines too: they are rows of the file, and bytes read
                text = lines.decode("utf-8", errors="replace")
                if text.strip():
                    yield file.parse(text.removesuffix("\n"), row)
                row += text.count("\n") + (not text.endswith("\n"))
                seen.read(lines)
            pending = rest
            if not data:
                if once or stop():
                    return
                seen.check()
                time.sleep(poll_s)


class Unchanged:
    """What a watch has read of its log, to refuse a log replaced or written anew under it: read
    on from the old offset, the new file's rows would be skipped or read from mid-line. A log
    that only grows passes, and so does one rewritten in place with the same rows first."""

    KEEP = 256  # bytes of the last rows read, compared where they were

    def __init__(self, path: Path, fh, header: bytes):
        self.path, self.fh = path, fh
        self.head, self.tail, self.offset = header, header[-self.KEEP :], len(header)
        self.short = False  # said once that the log is shorter than what was read

    def read(self, lines: bytes) -> None:
        self.offset += len(lines)
        self.tail = (self.tail + lines)[-self.KEEP :]
        if len(self.head) < self.KEEP:
            self.head = (self.head + lines)[: self.KEEP]

    def check(self) -> None:
        """Between reads: the same file, and the rows read still where they were (a log that
        is shorter now is being written anew: the same first rows, or another log)."""
        opened = os.fstat(self.fh.fileno())
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            now = None
        if now is None or (now.st_ino, now.st_dev) != (opened.st_ino, opened.st_dev):
            why = "removed or replaced while being watched; watch the new log afresh"
            raise LogError(str(self.path), why)
        fd = self.fh.fileno()
        if opened.st_size >= self.offset:
            same = os.pread(fd, len(self.tail), self.offset - len(self.tail)) == self.tail
        else:  # the watch reads on from where it was once the log is that long again
            same = self.head.startswith(os.pread(fd, min(opened.st_size, len(self.head)), 0))
            if same and not self.short:
                log.warning(
                    "%s: now %d bytes, shorter than the %d the watch has read, with the same "
                    "first rows: waiting for it to grow past them",
                    *(printable(str(self.path)), opened.st_size, self.offset),
                )
            self.short = True
        if not same:
            why = "written anew with other rows while being watched; watch it afresh"
            raise LogError(str(self.path), why)


def wait_for_header(path: Path, once: bool, poll_s: float, stop: Callable[[], bool]) -> None:
    """Until the file holds its header line (a logger may not have created it yet)."""
    if path.name.lower().endswith(".gz"):
        why = "a compressed log is finished, not being written: score it with `anomaly score`"
        raise LogError(str(path), why)
    while not (path.is_file() and b"\n" in _head(path)):
        if once or stop():
            raise LogError(str(path), "file not found" if not path.exists() else "no header line")
        time.sleep(poll_s)


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(BLOCK)


def check_events_path(path: Path, log: Path) -> None:
    """A watch may run for hours before its first alarm: its events file must be writable now,
    and never the log itself or another file that is not an events table (a flight log named
    by mistake would be appended to: inputs are never modified)."""
    folder = path.parent
    if path.exists() and not path.is_file():
        raise UserError(f"--events {path}: not a file")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--events {path}: its folder is missing or not writable")
    if path.resolve() == log.resolve():
        raise UserError(f"--events {path}: the log being watched; name another file")
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="", errors="replace") as fh:
            header = fh.readline().rstrip("\r\n")
        expected = ",".join(["file", *EVENT_COLUMNS[1:]])
        if header != expected:
            raise UserError(
                f"--events {path}: not an events table (its first line is not {expected}); "
                "name a new file or one an earlier watch wrote"
            )


def watch(
    pipeline: Pipeline,
    path: Path,
    fmt: LogFormat,
    events_path: Path | None = None,
    once: bool = False,
    poll_s: float = POLL_S,
    on_alarm: Callable[[dict], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> WatchSummary:
    """Score `path` as it grows; `on_alarm(event)` is called the moment an alarm is raised, and
    the event is appended to `events_path` (a CSV with the events table's columns)."""
    if events_path is not None:
        check_events_path(events_path, path)
    wait_for_header(path, once, poll_s, stop)
    reader = LogReader(
        path,
        fmt,
        required_channels=pipeline.channels,
        frames=lambda file: follow(file, once, poll_s, stop),
        labels=False,
    )
    events = EventBuilder(
        printable(str(path)), pipeline.residual_channels, pipeline.detector.has_attribution
    )
    summary = WatchSummary()
    for block in scored_blocks(pipeline, path, reader, reader):
        summary.rows += len(block.time)
        for event in events.add(
            block.time, block.is_anomaly, block.score, block.channel, block.contributions
        ):
            summary.alarms.append(event)
            if events_path is not None:  # on disk before anyone is told
                append_event(events_path, event)
            if on_alarm is not None:
                on_alarm(event)
    if summary.rows < pipeline.window_len:  # as `anomaly score` says: no row was judged
        why = f"{summary.rows} rows, shorter than one window of the model ({pipeline.window_len} rows)"
        raise LogError(str(path), why)
    return summary


def append_event(path: Path, event: dict) -> None:
    """One alarm appended as a line of the events table (header first if the file is new) the
    moment it is raised, so a crash never loses it; its end is not known yet and stays empty."""
    known = ("flight_id", "start", "peak_score", "channel")
    row = {c: event[c] if c in known else "" for c in EVENT_COLUMNS}
    frame = pd.DataFrame([row]).rename(columns={"flight_id": "file"})
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as fh:
        frame.to_csv(fh, header=new, index=False, float_format="%.10g")
        fh.flush()
