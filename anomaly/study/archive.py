"""A sweep's finished cells in one portable file, so that a design longer than a machine's life
still finishes.

The MLflow store is local to the machine that ran the cells, and the full synthetic design takes
tens of CPU hours. `anomaly report` therefore writes the sweep's finished cells beside the report
(`cells.jsonl.gz`, committed with docs/results/), and `anomaly sweep --resume-from FILE` logs the
archived cells of the same grid on the same data as finished child runs, tagged
`anomaly.source`. The sweep then runs only the rest, and the report still reads one store and
says how many of its cells came from an archive.

One gzip JSON line per cell, sorted by cell key, written with a fixed gzip time: the same cells
give the same bytes, so a committed archive changes only when its cells do.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from anomaly.errors import UserError

log = logging.getLogger(__name__)
FILE_NAME = "cells.jsonl.gz"
FORMAT = "anomaly-sweep-archive"
VERSION = 1
HISTORY = ("train_loss", "val_loss", "fit_seconds")  # per-epoch metrics (the loss curves)
SOURCE_TAG = "anomaly.source"
# run tags an archive keeps: the cell's identity, and which metrics were undefined
KEPT_TAGS = ("anomaly.", "mlflow.runName")


def export_archive(parent_id: str, path: str | Path) -> int:
    """Write the parent run's finished cells to `path` (via a temporary name); returns how many."""
    from mlflow.tracking import MlflowClient

    from anomaly.track.model_cache import tracking_uri
    from anomaly.track.tracker import artifact_text, runs_frame

    client = MlflowClient(tracking_uri())
    parent = client.get_run(parent_id)
    runs = runs_frame(parent_run_id=parent_id)
    lines = []
    if not runs.empty:
        done = runs[runs["status"] == "FINISHED"].sort_values("start_time")
        done = done.drop_duplicates("tags.anomaly.cell", keep="last")
        for run_id in done["run_id"]:
            run = client.get_run(run_id)
            history = {
                key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
                for key in HISTORY
                if key in run.data.metrics
            }
            lens = artifact_text(run_id, "lens.json")
            lines.append(
                {
                    "key": run.data.tags["anomaly.cell"],
                    "tags": {
                        k: v
                        for k, v in run.data.tags.items()
                        if k.startswith(KEPT_TAGS) and k != SOURCE_TAG  # this store's own
                    },
                    "params": dict(run.data.params),
                    "metrics": {k: v for k, v in run.data.metrics.items() if k not in history},
                    "history": history,
                    "per_flight": artifact_text(run_id, "per_flight.csv"),
                    "lens": json.loads(lens) if lens else None,
                }
            )
    header = {
        "format": FORMAT,
        "version": VERSION,
        "sweep": parent.data.tags.get("anomaly.sweep", ""),
        "grid": parent.data.tags.get("anomaly.grid", ""),
        "data_hash": parent.data.params.get("data.content_hash", ""),
        "cells": len(lines),
    }
    lines.sort(key=lambda line: line["key"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for item in [header, *lines]:
            gz.write((json.dumps(item, sort_keys=True) + "\n").encode())
    os.replace(tmp, path)
    return len(lines)


@dataclass
class Archive:
    path: Path
    header: dict  # format, version, sweep, grid, data_hash, cells
    cells: list[dict]  # key, tags, params, metrics, history, per_flight, lens


def read_archive(path: str | Path) -> Archive:
    """Read a whole archive; a file that is not one is the user's error, raised before any
    cell runs."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such sweep archive")
    try:
        with gzip.open(path, "rt") as f:
            items = [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable sweep archive ({exc})") from None
    if not items or items[0].get("format") != FORMAT:
        raise UserError(f"{path}: not a sweep archive (no '{FORMAT}' header on line 1)")
    if items[0].get("version") != VERSION:
        raise UserError(f"{path}: archive version {items[0].get('version')}, expected {VERSION}")
    return Archive(path, items[0], items[1:])


def import_archive(
    tracker, parent_id: str, archive: Archive, grid: str, data_hash: str, wanted: set[str]
) -> int:
    """Log the archived cells whose keys are in `wanted` as finished child runs of `parent_id`;
    returns how many. An archive of another grid or other data is not used (a warning says so):
    its cells would mix two versions of a study in one report."""
    header, path = archive.header, archive.path
    if header.get("grid") != grid or header.get("data_hash") != data_hash:
        log.warning(
            "%s holds cells of another grid or other flights (grid %s, data %s; this sweep: %s, "
            "%s): none of them used",
            path,
            header.get("grid"),
            header.get("data_hash"),
            grid,
            data_hash,
        )
        return 0
    n = 0
    for cell in archive.cells:
        if cell["key"] not in wanted:
            continue
        tags = {k: v for k, v in cell["tags"].items() if k != "mlflow.runName"}
        tags[SOURCE_TAG] = f"archive {path.name}"
        with tracker.run(cell["tags"].get("mlflow.runName", cell["key"]), parent_id, tags) as rid:
            tracker.log_params(rid, cell["params"])
            tracker.log_metrics(rid, cell["metrics"])
            tracker.log_history(
                rid,
                [
                    {"epoch": step, key: value}
                    for key, steps in cell["history"].items()
                    for step, value in steps
                ],
            )
            if cell["per_flight"] is not None:
                tracker.log_text(rid, cell["per_flight"], "per_flight.csv")
            if cell["lens"] is not None:
                tracker.log_dict(rid, cell["lens"], "lens.json")
        n += 1
    return n
