"""A sweep's finished cells in one portable file, so that a design longer than a machine's life
still finishes.

The MLflow store is local to the machine that ran the cells, and the full synthetic design takes
tens of CPU hours. `anomaly report` therefore writes the sweep's finished cells beside the report
(`cells.jsonl.gz`, committed with docs/results/), and `anomaly sweep --resume-from FILE` logs the
archived cells on the same flights whose keys (a hash of every setting of a cell) the grid still
has as finished child runs, tagged `anomaly.source` (archive name, sweep, content digest). The
sweep then runs only the rest, and the report still reads one store and says how many of its
cells came from an archive.

One gzip JSON line per cell, sorted by cell key, written with a fixed gzip time: the same cells
give the same bytes, so a committed archive changes only when its cells do.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from anomaly.errors import UserError

if TYPE_CHECKING:
    from anomaly.data.datasets import Dataset
    from anomaly.track.tracker import Tracker

FILE_NAME = "cells.jsonl.gz"
FORMAT = "anomaly-sweep-archive"
VERSION = 1
HISTORY = ("train_loss", "val_loss", "fit_seconds")  # per-epoch metrics (the loss curves)
SOURCE_TAG = "anomaly.source"
# run tags an archive keeps: the cell's identity, and which metrics were undefined
KEPT_TAGS = ("anomaly.", "mlflow.runName")


def export_archive(parent_id: str, path: str | Path) -> int:
    """Write the parent run's finished cells to `path` (via a temporary name); returns how many.
    A finished cell without its per-flight table is a damaged store, named, not archived."""
    from anomaly.track.tracker import artifact_text, metric_history, run_data, runs_frame

    parent_tags, parent_params, _ = run_data(parent_id)
    runs = runs_frame(parent_run_id=parent_id)
    lines = []
    if not runs.empty:
        done = runs[runs["status"] == "FINISHED"].sort_values("start_time")
        done = done.drop_duplicates("tags.anomaly.cell", keep="last")
        for run_id in done["run_id"]:
            tags, params, metrics = run_data(run_id)
            # set(): one write of a one-epoch cell's two equal step-0 values may keep one or both
            history = {
                key: sorted(set(metric_history(run_id, key))) for key in HISTORY if key in metrics
            }
            table = artifact_text(run_id, "per_flight.csv")
            if table is None:
                raise RuntimeError(f"run {run_id}: a finished cell without per_flight.csv")
            lens = artifact_text(run_id, "lens.json")
            lines.append(
                {
                    "key": tags["anomaly.cell"],
                    "tags": {
                        k: v
                        for k, v in tags.items()
                        if k.startswith(KEPT_TAGS) and k != SOURCE_TAG  # this store's own
                    },
                    "params": params,
                    "metrics": {k: v for k, v in metrics.items() if k not in history},
                    "history": history,
                    "per_flight": table,
                    "lens": json.loads(lens) if lens else None,
                }
            )
    header = {
        "format": FORMAT,
        "version": VERSION,
        "sweep": parent_tags.get("anomaly.sweep", ""),
        "grid": parent_tags.get("anomaly.grid", ""),
        "data_hash": parent_params.get("data.content_hash", ""),
        "cells": len(lines),
    }
    if "data.tables_hash" in parent_params:  # split.csv and manifest.csv, apart from the logs
        header["tables_hash"] = parent_params["data.tables_hash"]
    lines.sort(key=lambda line: line["key"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        # no name and no time in the gzip header: the same cells give the same bytes
        with os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
                for item in [header, *lines]:
                    gz.write((json.dumps(item, sort_keys=True) + "\n").encode())
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return len(lines)


@dataclass
class Archive:
    """A read archive; `digest` names its content in the runs it fills, so a report can say
    which archive its cells came from."""

    path: Path
    digest: str
    header: dict  # format, version, sweep, grid, data_hash, cells [, tables_hash]
    cells: list[dict]  # key, tags, params, metrics, history, per_flight, lens


def read_archive(path: str | Path, sweep: str | None = None) -> Archive:
    """Read a whole archive; a file that is not one, or (with `sweep`) one of another study, is
    the user's error, raised before any cell runs: another study's archive would fill nothing
    and let the whole design run unasked."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such sweep archive")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            items = [json.loads(line) for line in f if line.strip()]
    except (OSError, EOFError, ValueError) as exc:  # ValueError: bad JSON or bad UTF-8
        raise UserError(f"{path}: not a readable sweep archive ({exc})") from None
    if not items or not isinstance(items[0], dict) or items[0].get("format") != FORMAT:
        raise UserError(f"{path}: not a sweep archive (no '{FORMAT}' header on line 1)")
    header, cells = items[0], items[1:]
    if header.get("version") != VERSION:
        raise UserError(f"{path}: archive version {header.get('version')}, expected {VERSION}")
    for line, cell in enumerate(cells, start=2):
        problem = _cell_problem(cell)
        if problem:
            raise UserError(f"{path}: line {line}: {problem}")
    if header.get("cells") != len(cells):
        raise UserError(
            f"{path}: the header announces {header.get('cells')} cells, the file holds "
            f"{len(cells)} (cut short?)"
        )
    if sweep is not None and header.get("sweep") != sweep:
        raise UserError(
            f"{path}: cells of the study '{header.get('sweep')}', not '{sweep}'; sweep without "
            "--resume-from (make ... ARCHIVES=) to start afresh"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Archive(path, digest, header, cells)


def _cell_problem(cell) -> str | None:
    """What makes one archived cell unusable, or None."""
    if not isinstance(cell, dict):
        return "not a cell object"
    fields = {"key": str, "tags": dict, "params": dict, "metrics": dict, "history": dict,
              "per_flight": str}  # fmt: skip
    for name, kind in fields.items():
        if not isinstance(cell.get(name), kind):
            return f"field '{name}' missing or not a {kind.__name__}"
    if cell["tags"].get("anomaly.cell") != cell["key"]:
        return f"key {cell['key']} differs from its anomaly.cell tag"
    return None


def _flights(params: dict, *names: str) -> set[str] | None:
    """The flights a cell's params list under `names`; None where a list was cut to fit
    MLflow's limit on a param (then the tables' hash is what can tell the split)."""
    lists = [params.get(n, "") for n in names]
    if any(text.endswith(" characters)") and "... (cut: " in text for text in lists):
        return None
    return {f for text in lists for f in text.split(",") if f not in ("", "None")}


def split_problem(cell: dict, test: set[str]) -> str | None:
    """Why a cell cannot stand for this split's (whose test flights are `test`), or None: it
    tested a flight the split does not test, or learnt from one the split tests. A cell's key
    hashes its settings, not split.csv, so a changed split would otherwise import every cell."""
    p = cell["params"]
    tested, learnt = _flights(p, "test_flights"), _flights(p, "train_flights", "validation_flights")
    if tested is not None and (extra := sorted(tested - test)):
        return f"it was tested on {extra[0]}, which this split does not test"
    if learnt is not None and (seen := sorted(learnt & test)):
        return f"it trained or validated on {seen[0]}, a test flight of this split"
    return None


def import_archive(
    tracker: Tracker,
    parent_id: str,
    archive: Archive,
    data: Dataset,
    wanted: set[str],
) -> int:
    """Log the archived cells whose keys are in `wanted` as finished child runs of `parent_id`;
    returns how many. A key hashes every setting of its cell, so an archive of an earlier version
    of the study (another grid: one arm's settings refrozen, say) still fills the cells the change
    left alone, and only the changed ones run. An archive of other flights, or of another split,
    is refused: keys name the data folder, not its content."""
    header, path = archive.header, archive.path
    again = "sweep without --resume-from (make ... ARCHIVES=) to start afresh"
    if header.get("data_hash") != data.content_hash:
        raise UserError(
            f"{path}: cells of other flights (data {header.get('data_hash')}; this sweep: data "
            f"{data.content_hash}); {again}"
        )
    if header.get("tables_hash", data.tables_hash) != data.tables_hash:
        raise UserError(
            f"{path}: cells of another split.csv or manifest.csv (tables "
            f"{header['tables_hash']}; this sweep: {data.tables_hash}); {again}"
        )
    test = {f for f, side in (data.fixed_split or {}).items() if side == "test"}
    if data.fixed_split is None:  # plain logs: the split every cell of this sweep draws
        from anomaly.data.splits import split_flights

        test = {f.flight_id for f in split_flights(data, 0).test}
    cells = [cell for cell in archive.cells if cell["key"] in wanted]
    for cell in cells if test else []:  # all judged before the first is logged
        if why := split_problem(cell, test):
            raise UserError(f"{path}: cell {cell['key']} is of another split: {why}; {again}")
    n = 0
    for cell in cells:
        tags = {k: v for k, v in cell["tags"].items() if k != "mlflow.runName"}
        tags[SOURCE_TAG] = f"archive {path.name} ({header.get('sweep')}, {archive.digest})"
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
            tracker.log_text(rid, cell["per_flight"], "per_flight.csv")
            if cell.get("lens") is not None:
                tracker.log_dict(rid, cell["lens"], "lens.json")
        n += 1
    return n
