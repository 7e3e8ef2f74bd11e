"""Batch scoring of CSV logs: stream each file through the pipeline, write scored rows, events and
a summary.

Nothing is lost: inputs are only read; every output is written under a temporary name and
renamed, so a failure or a kill never leaves a partial file (and the next run removes the
temporary files of a killed one); a bad file is reported, counted and skipped while the rest
are scored; `--overwrite` is needed to replace any existing output, and it is checked before
anything is scored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from anomaly.data.logs import LogReader, flight_id_of, printable
from anomaly.data.schema import LogError, LogFormat
from anomaly.detect.events import EVENT_COLUMNS, EventBuilder
from anomaly.detect.pipeline import NotFiniteError, Pipeline, ScoredBlock
from anomaly.errors import UserError

log = logging.getLogger(__name__)
RATE_TOLERANCE = 0.2  # a log whose sample rate is more than 20 % off the training rate is refused
RATE_ROWS = 21  # rows the rate is first judged on (a watch holds them before it scores)
RATE_BLOCK = 101  # rows each later judgement spans: bursts and stalls even out over it
RESCUE_SHARE = 0.05  # dropouts set aside in a block: at most this share of its steps
GAP_PERIODS = 2.5  # a time step this many sample periods long or more: rows are missing
SCORED = ".scored."  # outputs are <name>.scored.csv|parquet; folders of inputs skip them
TMP_SUFFIX = ".tmp"
OUR_TEMPORARY = re.compile(
    r"^\.(.+\.scored\.(csv|parquet)|summary\.json|events\.csv)\.(?P<pid>\d+)\.tmp$"
)


@dataclass
class BatchSummary:
    files: int = 0
    scored: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    rows: int = 0
    anomalous_rows: int = 0
    events: int = 0
    interrupted: bool = False


def _table(b: ScoredBlock, names: list[str], attribution: bool, with_contrib: bool) -> pa.Table:
    # channel names through a dictionary: a million rows cost a million small ints, not strings
    labels = pa.array(names if attribution else [""] * len(names), pa.string())
    top = pa.DictionaryArray.from_arrays(pa.array(b.channel.astype(np.int32)), labels)
    cols = {
        "time_s": b.time,
        "score": b.score.astype(np.float32),  # 7 significant digits: ample, and half the text
        "is_anomaly": b.is_anomaly.astype(np.int8),
        "top_channel": top.cast(pa.string()),
    }
    if with_contrib:
        for j, ch in enumerate(names):
            cols[f"contrib_{ch}"] = b.contributions[:, j].astype(np.float32)
    return pa.table(cols)


def prefetch(chunks, depth: int = 1):
    """Read the next chunk in a thread while this one is scored: pandas' parser releases the GIL,
    so parsing overlaps the model. Errors are re-raised in order; at most `depth` chunks wait."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for c in chunks:
                if stop.is_set():
                    return
                q.put(c)
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)


def temporary(path: Path) -> Path:
    """Where `path` is written before it is renamed into place (the pid says whose it is)."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def remove_stale_temporaries(folder: Path) -> int:
    """Delete this tool's temporary outputs left by killed runs (their process is gone); returns
    how many. Only names this tool writes are touched."""
    removed = 0
    for tmp in folder.rglob(f".*{TMP_SUFFIX}"):
        m = OUR_TEMPORARY.match(tmp.name)
        if m and not _alive(int(m.group("pid"))):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def output_paths(paths: list[Path], out_dir: Path, out_format: str) -> dict[Path, Path]:
    """One output per input, never shared: inputs keep their folders relative to the folder they
    share, two inputs of one name (`x.csv` and `x.csv.gz`) keep their whole file names, and any
    clash left gets a numbered suffix."""
    ext = "parquet" if out_format == "parquet" else "csv"
    resolved = [p.resolve() for p in paths]
    base = Path(os.path.commonpath([p.parent for p in resolved]))
    rel = {p: r.parent.relative_to(base) for p, r in zip(paths, resolved)}
    stems = [rel[p] / flight_id_of(p) for p in paths]
    out, taken = {}, set()
    for p, stem in zip(paths, stems):
        name = str(stem if stems.count(stem) == 1 else rel[p] / p.name)
        candidate, k = name, 1
        while candidate in taken:
            k += 1
            candidate = f"{name}-{k}"
        taken.add(candidate)
        out[p] = out_dir / f"{candidate}{SCORED}{ext}"
    return out


def prepare_out_dir(out_dir: Path, targets: list[Path], inputs: list[Path], overwrite: bool):
    """Refuse a bad --out, or outputs that exist without --overwrite, before scoring anything."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create it ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"--out {out_dir}: not writable")
    resolved_inputs = {p.resolve() for p in inputs}
    clash = [t for t in targets if t.resolve() in resolved_inputs]
    if clash:
        raise UserError(f"--out {out_dir}: output {clash[0]} would replace an input")
    folders = [t for t in targets if t.is_dir()]
    if folders:  # --overwrite would end, file by file, in a failure to replace it
        raise UserError(f"--out {out_dir}: output {folders[0]} is a folder; move it away")
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(
            f"--out {out_dir}: {len(existing)} output(s) exist, e.g. {existing[0]}; "
            "pass --overwrite to replace them"
        )
    removed = remove_stale_temporaries(out_dir)
    if removed:
        log.info("removed %d temporary file(s) left by killed runs in %s", removed, out_dir)


class _Output:
    """Scored rows of one file, written block by block to a temporary path."""

    def __init__(
        self, path: Path, pipeline: Pipeline, out_format: str, with_contrib: bool, source: Path
    ):
        self.path, self.tmp, self.source = path, temporary(path), source
        self.p, self.format, self.with_contrib = pipeline, out_format, with_contrib
        self.writer = self.file = None
        self.rows = self.flagged = 0

    def write(self, b: ScoredBlock) -> None:
        if len(b.time) == 0:
            return
        p = self.p
        table = _table(b, p.residual_channels, p.detector.has_attribution, self.with_contrib)
        if self.writer is None:
            cls = pq.ParquetWriter if self.format == "parquet" else pacsv.CSVWriter
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # opened by Python: pyarrow cannot take a path whose name is not UTF-8
                self.file = open(self.tmp, "wb")
            except OSError as e:  # --out's side (a file where a folder goes, no permission)
                raise self._cannot_write(e) from None
            self.writer = cls(self.file, table.schema)
        self.writer.write_table(table)
        self.rows += len(b.time)
        self.flagged += int(b.is_anomaly.sum())

    def commit(self) -> None:
        self.close()
        try:
            self.tmp.replace(self.path)
        except OSError as e:
            raise self._cannot_write(e) from None

    def _cannot_write(self, e: OSError) -> UserError:
        blocked = isinstance(e, (FileExistsError, NotADirectoryError))
        why = "a file stands where its folder goes" if blocked else e.strerror or type(e).__name__
        out = printable(str(self.path))
        return UserError(
            f"{printable(str(self.source))}: its output {out} cannot be written ({why})"
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.file is not None:
            self.file.close()
            self.file = None


def score_file(
    pipeline: Pipeline,
    path: Path,
    out: Path,
    fmt: LogFormat,
    chunk_rows: int,
    out_format: str = "csv",
    with_contrib: bool = False,
    bar: tqdm | None = None,
) -> tuple[int, int, list[dict]]:
    """Score one log into `out` (written under a temporary name, renamed at the end).

    Returns (rows, anomalous rows, events).
    """
    reader = LogReader(path, fmt, chunk_rows, pipeline.channels, labels=False)
    events = EventBuilder(
        printable(str(path)), pipeline.residual_channels, pipeline.detector.has_attribution
    )
    output = _Output(out, pipeline, out_format, with_contrib, path)
    try:
        for block in scored_blocks(pipeline, path, reader, prefetch(reader)):
            events.add(
                block.time, block.is_anomaly, block.score, block.channel, block.contributions
            )
            output.write(block)
            if bar is not None:
                bar.update(len(block.time))
        if output.rows < pipeline.window_len:
            raise LogError(
                str(path),
                f"{output.rows} rows, shorter than one window of the model "
                f"({pipeline.window_len} rows)",
            )
        output.commit()
    except BaseException:
        try:
            output.close()
        finally:
            with contextlib.suppress(OSError):  # its folder may be what failed: the cause stands
                output.tmp.unlink(missing_ok=True)
        raise
    return output.rows, output.flagged, events.finish()


class RateCheck:
    """The log's sample rate against the model's: the model and the alarm rule count rows, so at
    another rate every setting in seconds would silently shrink or grow.

    Judged first on the log's first RATE_ROWS rows (a watch holds them before it scores), then
    on every RATE_BLOCK rows after them and on its last RATE_BLOCK at the end, so a log whose
    rate changes part-way is refused where it changes; blocks are counted from the first row,
    so no verdict depends on how the log is chunked. A block's rate is rows per second over it:
    timestamps that jitter, are rounded, or come in bursts (a logger that stamps rows when it
    writes them) even out over a block, and a few dropouts (steps of GAP_PERIODS periods or
    more, at most RESCUE_SHARE of its steps: TimeGaps says them) are set aside when they alone
    make it look slow. The first, short block must also be off in its median step, as many
    rows stamped in one burst can put 20 steps' mean anywhere."""

    def __init__(
        self,
        pipeline: Pipeline,
        path: Path,
        time_col: str | None,
        file_rows: Callable[[list[int]], dict[int, int]] | None = None,
    ):
        self.expected, self.path, self.time_col = pipeline.sample_rate_hz, path, time_col
        self.file_rows = file_rows  # data rows as pandas counts them -> the file's lines
        self.pending = np.zeros(0)  # times not yet judged, the last judged row first
        self.first_row = 0  # data row of pending[0]
        self.recent = np.zeros(0)  # the last RATE_BLOCK times judged, for the log's last rows
        self.done = not np.isfinite(self.expected)  # the first block judged

    def see(self, t: np.ndarray) -> None:
        if not np.isfinite(self.expected):
            return
        self.pending = np.concatenate([self.pending, np.asarray(t, dtype=np.float64)])
        if not self.done:
            if len(self.pending) < RATE_ROWS:
                return
            self._judge(np.diff(self.pending[:RATE_ROWS])[None], 0, first=True)
            self._advance(RATE_ROWS - 1)
            self.done = True
        step = RATE_BLOCK - 1
        blocks = (len(self.pending) - 1) // step
        if blocks:
            steps = np.diff(self.pending[: blocks * step + 1]).reshape(blocks, step)
            self._judge(steps, self.first_row)
            self._advance(blocks * step)

    def _advance(self, n: int) -> None:
        judged = self.pending[: n + 1]  # its first time is recent's last
        self.recent = np.concatenate([self.recent[:-1], judged])[-RATE_BLOCK:]
        self.pending = self.pending[n:]
        self.first_row += n

    def finish(self) -> None:
        """At the end: a log too short for the first block is judged on what it has (with
        fewer than 3 steps it says nothing of a rate, and the length check speaks), and rows
        after the last whole block with the rows before them."""
        if np.isfinite(self.expected):
            if not self.done and len(self.pending) >= 4:
                self._judge(np.diff(self.pending)[None], 0, first=True)
            elif self.done and len(self.pending) >= 2:
                tail = np.concatenate([self.recent[:-1], self.pending])[-RATE_BLOCK:]
                start = self.first_row + len(self.pending) - len(tail)
                # never the first block's rows again: they passed under its own rule, and
                # rows after them may have been scored
                skip = max(0, RATE_ROWS - 1 - start)
                if len(tail) - skip >= RATE_ROWS:
                    self._judge(np.diff(tail[skip:])[None], start + skip)
        self.done = True

    def _off(self, step: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            # "more than 20 % off": a rate of exactly 1.2 times is not, whatever its rounding
            return ~(np.abs(1.0 / step / self.expected - 1) <= RATE_TOLERANCE + 1e-9)

    def _judge(self, steps: np.ndarray, first_row: int, first: bool = False) -> None:
        """steps (blocks, n): each block's time steps; first_row: data row of the first."""
        mean = steps.mean(axis=1)
        gap = steps >= GAP_PERIODS / self.expected
        short = (~gap).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_short = np.where(~gap, steps, 0.0).sum(axis=1) / short
        rescued = (gap.sum(axis=1) <= RESCUE_SHARE * steps.shape[1]) & ~self._off(mean_short)
        off = self._off(mean) & ~rescued
        if first:
            off &= self._off(np.median(steps, axis=1))
        if not off.any():
            return
        i = int(np.argmax(off))
        median = float(np.median(steps[i]))  # the typical step, for the error alone
        # milliseconds read as seconds make a 20 Hz log a 0.02 Hz one: say so, not "0.0 Hz"
        ms = abs(1e3 / median / self.expected - 1) < 0.5 if median > 0 else False
        rate = 1.0 / (median if ms else mean[i])
        unit = " (time in milliseconds?)" if ms else ""
        row = first_row + i * steps.shape[1] + 2  # the block's first row, header row 1
        if self.file_rows is not None:  # blank lines count as the file's rows
            row = self.file_rows([row]).get(row, row)
        where = (
            ""
            if first_row + i == 0
            else f" over the {steps.shape[1] + 1} rows from here (the rows before them passed)"
        )
        raise LogError(
            str(self.path),
            f"sample rate {rate:.3g} Hz{unit}{where} is far from the model's "
            f"{self.expected:.3g} Hz; resample the log first",
            self.time_col,
            row,
        )


def scored_blocks(
    pipeline: Pipeline, path: Path, reader: LogReader, chunks: Iterable
) -> Iterator[ScoredBlock]:
    """One log's chunks through one causal stream, as `score` and `watch` both read it: time
    from the log's first row, the sample rate checked as rows arrive (and at the end), a
    non-finite residual reported as the file's error with its row."""
    stream = pipeline.stream()
    rate = RateCheck(pipeline, path, None, reader.file.file_rows)
    gaps = TimeGaps(pipeline.sample_rate_hz, path, reader.file.file_rows)
    t0 = None
    held: list = []  # rows wait until the rate is judged: no alarm from a log then refused

    def scored(chunks) -> Iterator[ScoredBlock]:
        for c in chunks:
            try:
                yield stream.feed(c.time - t0, c.values)
            except NotFiniteError as exc:
                raise not_finite(path, exc) from None

    for chunk in chunks:
        if t0 is None:
            t0, rate.time_col = chunk.time[0], reader.time_col
        rate.see(chunk.time)
        gaps.see(chunk.time - t0, chunk.row_offset, ready=rate.done)
        held.append(chunk)
        if rate.done:
            yield from scored(held)
            held = []
    rate.finish()  # a log at another rate is refused before any gap is said
    yield from scored(held)
    gaps.finish()


class TimeGaps:
    """Missing stretches of time in a log: the model and the alarm rule count rows, so rows
    either side of a gap are scored as if consecutive. Said, not refused (a logger's dropout is
    real data): the first gap as soon as it is seen (a watch is live), how many there were at
    the end; nothing before the sample rate is judged (a log timed in milliseconds is refused
    for that, not warned of gaps)."""

    def __init__(
        self,
        rate_hz: float,
        path: Path,
        file_rows: Callable[[list[int]], dict[int, int]] | None = None,
    ):
        self.limit = GAP_PERIODS / rate_hz if np.isfinite(rate_hz) and rate_hz > 0 else np.inf
        self.path, self.last, self.count, self.longest = path, None, 0, 0.0
        self.file_rows = file_rows  # data rows as pandas counts them -> the file's lines
        self.waiting: list[tuple[np.ndarray, int]] = []  # rows seen before the rate was judged

    def see(self, t: np.ndarray, row_offset: int = 0, ready: bool = True) -> None:
        """`t`: seconds since the log's first row; `row_offset`: index of its first data row."""
        self.waiting.append((t, row_offset))
        if ready:
            for t, offset in self.waiting:
                self._see(t, offset)
            self.waiting = []

    def _see(self, t: np.ndarray, row_offset: int) -> None:
        if len(t) == 0:
            return
        full = t if self.last is None else np.concatenate([[self.last], t])
        steps = np.diff(full)
        gap = steps >= self.limit
        if gap.any():
            if self.count == 0:
                i = int(np.argmax(gap))
                row = row_offset + i + (self.last is None) + 2  # the first row after the gap
                if self.file_rows is not None:  # blank lines count as the file's rows
                    row = self.file_rows([row]).get(row, row)
                log.warning(
                    "%s: no rows for %.2f s after t=%.2f s, before row %d (rows either side "
                    "are scored as consecutive)",
                    *(printable(str(self.path)), steps[i], full[i], row),
                )
            self.count += int(gap.sum())
            self.longest = max(self.longest, float(steps[gap].max()))
        self.last = float(t[-1])

    def finish(self) -> None:
        self.see(np.zeros(0), ready=True)
        if self.count > 1:
            log.warning(
                "%s: %d time gaps of %.3g s or more, the longest %.2f s",
                *(printable(str(self.path)), self.count, self.limit, self.longest),
            )


def not_finite(path: Path, exc: NotFiniteError) -> LogError:
    """A residual that is not finite, as an error naming the file and its row."""
    why = "the model's residual is not finite (values too large for it?)"
    return LogError(str(path), why, None, exc.row + 2)


def _reason(exc: Exception, on_failure) -> str:
    """Why a file failed inside the tool; keeping its traceback may fail too (a folder that
    cannot be written), which must not stop the batch either."""
    plain = f"{type(exc).__name__}: {exc}"
    if on_failure is None:
        return plain
    try:
        return on_failure(exc)
    except Exception as kept:
        return f"{plain} (its traceback could not be kept: {kept})"


def score_batch(
    pipeline: Pipeline,
    paths: list[Path],
    out_dir: Path,
    fmt: LogFormat,
    chunk_rows: int = 200_000,
    out_format: str = "csv",
    overwrite: bool = False,
    with_contrib: bool = False,
    progress: bool = False,
    model_uri: str = "",
    on_failure=None,
) -> BatchSummary:
    """Score every log; a failed file is collected (and passed to `on_failure`, which returns its
    reason: the CLI keeps an internal failure's traceback), never fatal to the batch."""
    outputs = output_paths(paths, out_dir, out_format)
    summary_path, events_path = out_dir / "summary.json", out_dir / "events.csv"
    targets = [*outputs.values(), summary_path, events_path]
    prepare_out_dir(out_dir, targets, paths, overwrite)
    summary = BatchSummary(files=len(paths))
    all_events: list[dict] = []
    t0 = time.perf_counter()
    total = sum(p.stat().st_size for p in paths if p.is_file())
    bar = tqdm(total=None, desc="rows", unit="row", unit_scale=True, disable=not progress)
    fbar = tqdm(total=len(paths), desc="files", unit="file", disable=not progress, position=1)
    try:
        for path in paths:
            try:
                rows, anomalous, events = score_file(
                    pipeline, path, outputs[path], fmt, chunk_rows, out_format, with_contrib, bar
                )
            except (LogError, UserError) as exc:
                summary.failed.append({"file": str(path), "reason": str(exc)})
            except Exception as exc:  # a failure inside the tool on this file: the batch goes on
                reason = _reason(exc, on_failure)
                summary.failed.append({"file": str(path), "reason": f"{path}: {reason}"})
            else:
                summary.scored.append(str(path))
                summary.rows += rows
                summary.anomalous_rows += anomalous
                all_events += events
            if summary.failed and summary.failed[-1]["file"] == str(path):
                # with --overwrite, an earlier run's output of a file that failed now would pass
                # for this run's: it goes (where there is none to remove, as when its folder
                # could not be made, nothing is lost)
                with contextlib.suppress(OSError):
                    outputs[path].unlink(missing_ok=True)
            fbar.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:  # even when interrupted: what was scored keeps its events and its summary
        bar.close()
        fbar.close()
        elapsed = time.perf_counter() - t0
        summary.events = len(all_events)
        _atomic_text(events_path, _events_csv(all_events))
        doc = {
            "model_uri": model_uri,
            "threshold": pipeline.rule.threshold.to_dict()["threshold"],
            "threshold_rule": pipeline.rule.threshold.rule,
            "files": summary.files,
            "scored_files": len(summary.scored),
            "failed_files": summary.failed,
            "interrupted": summary.interrupted,
            "outputs": {str(p): str(outputs[p]) for p in paths if str(p) in summary.scored},
            "rows": summary.rows,
            "anomalous_rows": summary.anomalous_rows,
            "events": summary.events,
            "elapsed_seconds": round(elapsed, 3),
            "rows_per_second": round(summary.rows / elapsed, 1) if elapsed > 0 else None,
            "input_bytes": total,
            "peak_rss_mb": peak_rss_mb(),
        }
        _atomic_text(summary_path, json.dumps(doc, indent=2))
    return summary


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since it started (Linux VmHWM; not inherited at exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _events_csv(events: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(events, columns=EVENT_COLUMNS).rename(columns={"flight_id": "file"})
    return df.to_csv(index=False, float_format="%.10g")


def _atomic_text(path: Path, text: str) -> None:
    tmp = temporary(path)
    tmp.write_text(text)
    tmp.replace(path)
