"""Batch scoring of CSV logs: stream each file through the pipeline, write scored rows, events and
a summary. A bad file is reported and skipped; outputs are written to temporary names and renamed,
so a failure never leaves a partial file; inputs are only read.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from anomaly.data.logs import LogReader, flight_id_of
from anomaly.data.schema import LogError, LogFormat
from anomaly.detect.events import EVENT_COLUMNS
from anomaly.detect.pipeline import Pipeline
from anomaly.detect.streaming import ScoredBlock, StreamScorer

log = logging.getLogger(__name__)
RATE_TOLERANCE = 0.2  # a log whose sample rate is more than 20 % off the training rate is refused


@dataclass
class BatchSummary:
    files: int = 0
    scored: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    rows: int = 0
    anomalous_rows: int = 0
    events: int = 0


class _Events:
    """Alarm runs across block borders -> events rows with peak score and top channels."""

    def __init__(self, file: str, channels: list[str], attribution: bool):
        self.file, self.channels, self.attribution = file, channels, attribution
        self.rows: list[dict] = []
        self.open: dict | None = None

    def add(self, b: ScoredBlock) -> None:
        flags = b.is_anomaly
        if not flags.any() and self.open is None:
            return
        edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
        starts, ends = list(np.flatnonzero(edges == 1)), list(np.flatnonzero(edges == -1))
        if self.open is not None and flags[0]:
            starts = starts[1:]
            e = ends.pop(0)
            self._extend(b, 0, e)
            if e < len(flags):
                self._close()
        elif self.open is not None:
            self._close()
        for s, e in zip(starts, ends):
            self.open = {
                "start": float(b.time[s]),
                "end": float(b.time[s]),
                "peak": -np.inf,
                "blame": 0.0,
            }
            self._extend(b, s, e)
            if e < len(flags):
                self._close()

    def _extend(self, b: ScoredBlock, s: int, e: int) -> None:
        o = self.open
        o["end"] = float(b.time[e - 1])
        o["peak"] = max(o["peak"], float(b.score[s:e].max()))
        o["blame"] = o["blame"] + b.contributions[s:e].sum(axis=0)

    def _close(self) -> None:
        o, self.open = self.open, None
        top = ""
        if self.attribution and np.ptp(o["blame"]) > 0:
            top = ";".join(self.channels[j] for j in np.argsort(-o["blame"])[:3])
        self.rows.append(
            {
                "flight_id": self.file,
                "start": o["start"],
                "end": o["end"],
                "duration_s": o["end"] - o["start"],
                "peak_score": o["peak"],
                "top_channels": top,
            }
        )

    def finish(self) -> list[dict]:
        if self.open is not None:
            self._close()
        return self.rows


def _table(b: ScoredBlock, channels: list[str], attribution: bool, with_contrib: bool) -> pa.Table:
    # channel names through a dictionary: a million rows cost a million small ints, not strings
    names = pa.array(channels if attribution else [""], pa.string())
    idx = b.contributions.argmax(axis=1) if attribution else np.zeros(len(b.time))
    top = pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)), names).cast(pa.string())
    cols = {
        "time_s": b.time,
        "score": b.score.astype(np.float32),  # 7 significant digits: ample, and half the text
        "is_anomaly": b.is_anomaly.astype(np.int8),
        "top_channel": top,
    }
    if with_contrib:
        for j, ch in enumerate(channels):
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


class _Output:
    """Scored rows of one file, written block by block to a temporary path."""

    def __init__(
        self, tmp: Path, pipeline: Pipeline, out_format: str, with_contrib: bool, events: _Events
    ):
        self.tmp, self.p, self.format, self.with_contrib, self.events = (
            tmp,
            pipeline,
            out_format,
            with_contrib,
            events,
        )
        self.writer = None
        self.rows = self.flagged = 0

    def write(self, blocks: list[ScoredBlock]) -> None:
        for b in blocks:
            if len(b.time) == 0:
                continue
            self.events.add(b)
            table = _table(b, self.p.channels, self.p.detector.has_attribution, self.with_contrib)
            if self.writer is None:
                cls = pq.ParquetWriter if self.format == "parquet" else pacsv.CSVWriter
                self.writer = cls(self.tmp, table.schema)
            self.writer.write_table(table)
            self.rows += len(b.time)
            self.flagged += int(b.is_anomaly.sum())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def score_file(
    pipeline: Pipeline,
    path: Path,
    out: Path,
    fmt: LogFormat,
    chunk_rows: int,
    out_format: str,
    with_contrib: bool,
    bar: tqdm | None = None,
) -> tuple[int, int, list[dict]]:
    """Score one log into `out` (written under a temporary name, renamed at the end).

    Returns (rows, anomalous rows, events).
    """
    reader = LogReader(path, fmt, chunk_rows, pipeline.channels)
    scorer = StreamScorer(pipeline, str(path))
    events = _Events(flight_id_of(path), pipeline.channels, pipeline.detector.has_attribution)
    output = _Output(
        out.with_name(f".{out.name}.{os.getpid()}.tmp"), pipeline, out_format, with_contrib, events
    )
    t0 = None
    try:
        for chunk in prefetch(reader):
            if t0 is None:
                t0 = chunk.time[0]
                _check_rate(pipeline, path, reader.time_col, chunk.time)
            output.write(list(scorer.feed(chunk.time - t0, chunk.values)))
            if bar is not None:
                bar.update(len(chunk.time))
        output.write(list(scorer.close()))
        output.close()
        output.tmp.replace(out)
    except BaseException:
        try:
            output.close()
        finally:
            output.tmp.unlink(missing_ok=True)
        raise
    return output.rows, output.flagged, events.finish()


def _check_rate(pipeline: Pipeline, path: Path, time_col: str, t: np.ndarray) -> None:
    if len(t) < 2 or not np.isfinite(pipeline.sample_rate_hz):
        return
    rate = 1.0 / float(np.median(np.diff(t)))
    if abs(rate / pipeline.sample_rate_hz - 1) > RATE_TOLERANCE:
        raise LogError(
            str(path),
            f"sample rate {rate:.1f} Hz is far from the model's {pipeline.sample_rate_hz:.1f} Hz; "
            "resample the log first",
            time_col,
            2,
        )


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
) -> BatchSummary:
    """Score every log; failures are collected, never fatal to the batch."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(files=len(paths))
    all_events: list[dict] = []
    t0 = time.perf_counter()
    total = sum(p.stat().st_size for p in paths if p.is_file())
    bar = tqdm(total=None, desc="rows", unit="row", unit_scale=True, disable=not progress)
    fbar = tqdm(total=len(paths), desc="files", unit="file", disable=not progress, position=1)
    for path in paths:
        out = (
            out_dir
            / f"{flight_id_of(path)}.scored.{'parquet' if out_format == 'parquet' else 'csv'}"
        )
        try:
            if out.exists() and not overwrite:
                raise LogError(str(path), f"output {out} exists; pass --overwrite to replace it")
            rows, anomalous, events = score_file(
                pipeline, path, out, fmt, chunk_rows, out_format, with_contrib, bar
            )
        except (LogError, ValueError) as exc:
            summary.failed.append({"file": str(path), "reason": str(exc)})
            log.debug("failed: %s", exc)
        else:
            summary.scored.append(str(path))
            summary.rows += rows
            summary.anomalous_rows += anomalous
            all_events += events
        fbar.update(1)
    bar.close()
    fbar.close()
    elapsed = time.perf_counter() - t0
    summary.events = len(all_events)
    _atomic_text(out_dir / "events.csv", _events_csv(all_events))
    doc = {
        "model_uri": model_uri,
        "threshold": pipeline.threshold.threshold_,
        "threshold_rule": pipeline.threshold.rule,
        "files": summary.files,
        "scored_files": len(summary.scored),
        "failed_files": summary.failed,
        "rows": summary.rows,
        "anomalous_rows": summary.anomalous_rows,
        "events": summary.events,
        "elapsed_seconds": round(elapsed, 3),
        "rows_per_second": round(summary.rows / elapsed, 1) if elapsed > 0 else None,
        "input_bytes": total,
        "peak_rss_mb": peak_rss_mb(),
    }
    _atomic_text(out_dir / "summary.json", json.dumps(doc, indent=2))
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

    cols = ["file" if c == "flight_id" else c for c in EVENT_COLUMNS]
    df = pd.DataFrame(events, columns=EVENT_COLUMNS).rename(columns={"flight_id": "file"})
    return df[cols].to_csv(index=False, float_format="%.6g")


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
