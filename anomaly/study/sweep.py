"""`anomaly sweep`: run a study's grid, one MLflow child run per cell under one parent run.

Resumable: a cell whose key already has a FINISHED child run is skipped; failed or killed cells
are run again. A cell that fails is recorded as a FAILED run with its error and the sweep goes on.
Cells run in worker processes (one torch thread each); only this process talks to MLflow.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from anomaly import __version__
from anomaly.data.datasets import Dataset, load_dataset
from anomaly.data.splits import split_flights, split_scheme
from anomaly.data.synthetic import SynthConfig, write_dataset
from anomaly.errors import UserError
from anomaly.models import registry
from anomaly.study.archive import import_archive, read_archive
from anomaly.study.cell import CellOutput, campaigns
from anomaly.study.spec import Cell, SweepSpec, expand
from anomaly.track.model_cache import tracking_uri

log = logging.getLogger(__name__)
_DATASET: Dataset | None = None  # per worker process: read once, used by every cell
# the generator settings a sweep's flights were made with, beside them in the data folder
SYNTH_MARKER = "synth.json"


class CellFailed(RuntimeError):
    """Raised inside a cell's run so that the tracker records it as FAILED with the error."""


@dataclass
class CellResult:
    cell: Cell
    output: CellOutput | None
    params: dict | None
    error: str | None
    elapsed_s: float
    traceback: str = ""  # the failure's full traceback, kept as the cell's error.txt artifact


def _worker_init(data_spec: str, options: dict, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    # a worker starts without the CLI's logging set-up; keep Lightning's banner out of the sweep
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    global _DATASET
    _DATASET = load_dataset(data_spec, options)


def _run_cell(cell: Cell) -> CellResult:
    from anomaly.study.cell import run_cell
    from anomaly.track.trials import trial_params

    t0 = time.perf_counter()
    try:
        output, trial = run_cell(cell, _DATASET)
        params = trial_params(cell.config, trial)
        return CellResult(cell, output, params, None, time.perf_counter() - t0)
    except Exception as exc:  # recorded on the cell's run; the sweep goes on
        from anomaly.track.tracker import git_commit, git_dirty, library_versions, machine

        msg = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - t0
        # what a failure ran on, as a finished cell records it: enough to rerun it
        params = cell.config.flat()
        try:
            data = _DATASET
            params |= {
                "data.content_hash": data.content_hash if data is not None else "",
                "data.tables_hash": data.tables_hash if data is not None else "",
                "data.source": data.source if data is not None else "",
                "package_version": __version__,
                "git_commit": git_commit(),
                "git_dirty": git_dirty(),
                "libraries": library_versions(),
                "machine": machine(),
            }
        except Exception:  # the record of a failure must not fail the sweep
            log.exception("cell %s: its provenance could not be read", cell.key)
        return CellResult(cell, None, params, msg, elapsed, traceback.format_exc())


def prepare_data(spec: SweepSpec) -> Dataset:
    """The spec's data; generated flights are (re)generated whenever the folder does not hold
    exactly what the spec's `synth` settings make, so a changed design never runs on old flights."""
    data = spec.data_spec()
    if spec.synth is not None:
        folder = Path(data)
        wanted = json.dumps(spec.synth, sort_keys=True)
        marker = folder / SYNTH_MARKER
        if not marker.exists() or marker.read_text() != wanted:
            if (
                folder.exists()
                and not marker.exists()
                and (not folder.is_dir() or any(folder.iterdir()))
            ):
                # not ours: a user's logs named by mistake must never be replaced
                raise UserError(
                    f"{spec.source}: data {data} holds files but no {SYNTH_MARKER}, the record "
                    "a sweep leaves of flights it generated, so they may be someone's logs; a "
                    "spec with `synth:` generates its flights there: name a new folder (or "
                    "remove this one yourself), or drop `synth:` to study these logs"
                )
            if folder.exists():
                log.info("%s holds flights of other settings: generating them again", data)
            log.info("generating %s flights into %s", spec.synth.get("n_flights"), data)

            def fill(tmp: Path) -> None:  # the marker inside, so it comes with the flights
                write_dataset(tmp, SynthConfig(**spec.synth))
                (tmp / SYNTH_MARKER).write_text(wanted)

            replace_folder(folder, fill)
    return load_dataset(data, spec.data_options())


def replace_folder(folder: Path, fill: Callable[[Path], None]) -> None:
    """Fill a fresh folder beside `folder`, then swap it in (a sweep's generated flights): an
    interrupted run leaves the old folder or the new one whole, never a mix, and never neither
    (the old one is put back if the swap is cut short)."""
    folder = Path(folder).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-new-", dir=folder.parent))
    old = None
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would hide a shared dataset from its group
        fill(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}-old-", dir=folder.parent))
            old.rmdir()  # a name no other run holds, for the folder moved aside
            folder.rename(old)
        tmp.rename(folder)
    finally:
        if old is not None and old.exists() and not folder.exists():
            old.rename(folder)
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def grid_hash(cells: list[Cell]) -> str:
    """Identity of a sweep's grid: any change to a cell's settings gives a new parent run, so a
    report never mixes cells from two versions of a study."""
    return hashlib.sha256(",".join(sorted(c.key for c in cells)).encode()).hexdigest()[:16]


def find_parent(tracker, spec: SweepSpec, grid: str, ds: Dataset) -> str | None:
    """The sweep's parent run for this grid on this data: other flights (regenerated with other
    settings, or a changed folder of logs) or another manifest or split start a new parent, as
    other settings do. A parent from before the tables were hashed is resumed on its logs' hash
    alone, as it was then, and takes the tables' hash on that resume: later changes to them
    start a new parent."""
    runs = tracker.search(
        f"tags.`anomaly.sweep` = '{spec.name}' and tags.`anomaly.role` = 'parent' "
        f"and tags.`anomaly.grid` = '{grid}' and params.`data.content_hash` = '{ds.content_hash}'"
    )
    if not runs.empty and "params.data.tables_hash" in runs:
        tables = runs["params.data.tables_hash"]
        runs = runs[tables.isna() | (tables == ds.tables_hash)]
    if ds.fixed_split is None and not runs.empty:
        # plain logs were split by each seed before SPLIT_SEED: such a parent's cells tested
        # other flights than the new ones would
        runs = (
            runs[runs["params.data.split"] == split_scheme(ds)]
            if "params.data.split" in runs
            else runs.iloc[:0]
        )
    if runs.empty:
        return None
    return str(runs.sort_values("start_time").iloc[-1]["run_id"])


def finished_keys(tracker, parent_id: str) -> set[str]:
    runs = tracker.search(
        f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'FINISHED'"
    )
    if runs.empty or "tags.anomaly.cell" not in runs:
        return set()
    return set(runs["tags.anomaly.cell"].dropna())


def log_cell(tracker, parent_id: str, res: CellResult) -> None:
    from anomaly.track.trials import fault_metrics, run_name

    cell = res.cell
    tags = {
        "anomaly.cell": cell.key,
        "anomaly.arm": cell.arm,
        "anomaly.role": "cell",
        "anomaly.train_flights": str(cell.train_flights),
        "anomaly.seed": str(cell.seed),
        "anomaly.held_out": cell.held_out,
    }
    out = res.output
    n_params = int(out.metrics["n_params"]) if out else None
    name = f"{cell.arm}-{run_name(cell.config, n_params).split('-', 1)[-1]}"
    name += f"-{cell.held_out}" if cell.held_out else ""
    try:
        with tracker.run(name, parent_id, tags) as run_id:
            tracker.log_params(run_id, res.params or cell.config.flat())
            if res.error:
                tracker.log_text(run_id, res.traceback or res.error, "error.txt")
                raise CellFailed(res.error)
            table = out.per_flight
            per_fault = table.groupby("fault_type", as_index=False)["vus_pr"].mean()
            metrics = {**out.metrics, "cell_seconds": res.elapsed_s}
            metrics.update(fault_metrics(per_fault.to_dict("records"), ("vus_pr",)))
            tracker.log_metrics(run_id, metrics)
            tracker.log_history(run_id, out.history)
            tracker.log_text(run_id, table.to_csv(index=False), "per_flight.csv")
            if out.lens is not None:
                tracker.log_dict(run_id, out.lens, "lens.json")
    except CellFailed:
        pass  # the run is marked FAILED with its error tag by tracker.run


def run_sweep(
    spec: SweepSpec,
    workers: int | None = None,
    progress: bool | None = None,
    resume_from: str | Path | None = None,
) -> tuple[str, dict]:
    """Run every unfinished cell; returns (parent run id, counts). With `resume_from`, an
    archive's cells with this grid's keys on these flights count as finished (see archive.py)."""
    with sweep_lock(spec.experiment):
        return _run_sweep(spec, workers, progress, resume_from)


@contextlib.contextmanager
def sweep_lock(experiment: str):
    """One sweep of a study at a time on a local store: a second would run the whole grid
    again beside the first (each sees the cells the other has not finished yet). A server's
    store is not checked."""
    folder = _local_store(tracking_uri())
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".sweep-{hashlib.sha256(experiment.encode()).hexdigest()[:12]}.lock"
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another sweep of {experiment!r} is running on this MLflow store ({path}); "
                "let it finish or stop it, then run again (it resumes)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _local_store(uri: str) -> Path | None:
    """The folder of a store on this machine (beside a SQLite file, or a file store), else None."""
    from urllib.parse import unquote, urlparse

    if uri.startswith("sqlite:///"):
        return Path(unquote(uri[len("sqlite:///") :])).parent
    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and ("/" in uri or uri.startswith(".")):  # a plain path: ./mlruns
        return Path(uri)
    return None


def _run_sweep(spec, workers, progress, resume_from) -> tuple[str, dict]:
    from anomaly.track.tracker import SWEPT_AT, Tracker, run_data

    archive = read_archive(resume_from, spec.name) if resume_from else None
    ds = prepare_data(spec)
    cells = expand(spec, len(ds.channels), campaigns(ds))
    if spec.splits == "fixed":  # a size the pool cannot give would fail every one of its cells
        pool = len(split_flights(ds, 0).train)
        if too_big := sorted({c.train_flights for c in cells if c.train_flights > pool}):
            raise UserError(
                f"{spec.source}: training sizes {too_big} are more than the {pool} training "
                f"flights of {spec.data_spec()}"
            )
    tracker = Tracker(spec.experiment, description=spec.describe())
    grid = grid_hash(cells)
    params = {
        "spec": Path(spec.source).name,
        "data.content_hash": ds.content_hash,
        "data.tables_hash": ds.tables_hash,
        "cells": len(cells),
        "train_sizes": spec.train_sizes,
        "seeds": spec.seeds,
        "arms": ",".join(a.name for a in spec.arms),  # the report lists arms in this order
        "compare": ",".join(spec.compare),
        "primary": spec.primary,
        "margin": spec.margin,
        "scaling": ",".join(spec.scaling),
        "factorial": json.dumps(spec.factorial or {}),
        "splits": spec.splits,
        "data.split": split_scheme(ds),
    }
    parent_id = find_parent(tracker, spec, grid, ds)
    if parent_id is None:
        with tracker.run(
            f"sweep-{spec.name}",
            tags={"anomaly.sweep": spec.name, "anomaly.role": "parent", "anomaly.grid": grid},
        ) as parent_id:
            tracker.log_params(parent_id, params)
    else:  # a parent from before the arms or the tables were logged gets them now
        logged = run_data(parent_id)[1]
        missing = {
            k: params[k] for k in ("arms", "data.tables_hash", "data.split") if k not in logged
        }
        if missing:
            tracker.log_params(parent_id, missing)
    done = finished_keys(tracker, parent_id)
    imported = 0
    if archive is not None:
        wanted = {c.key for c in cells} - done
        imported = import_archive(tracker, parent_id, archive, ds, wanted)
        done = finished_keys(tracker, parent_id)
        # an archive whose every key changed fills nothing: say so before hours of cells run
        log.info(
            "%s: %d of its %d cells imported (the others are finished already or no longer "
            "in this grid)",
            archive.path,
            imported,
            len(archive.cells),
        )
    # `report --sweep EXPERIMENT` reports the sweep run last, resumed or new, not the newest
    tracker.set_tags(parent_id, {SWEPT_AT: str(time.time_ns() // 1_000_000)})
    todo = [c for c in cells if c.key not in done]
    counts = {
        "cells": len(cells),
        "skipped": len(cells) - len(todo),
        "imported": imported,
        "finished": 0,
        "failed": 0,
    }
    log.info(
        "sweep %s: %d cells, %d already finished, %d to run",
        spec.name,
        len(cells),
        counts["skipped"],
        len(todo),
    )
    requested = max(1, workers or spec.workers)
    # a cell's torch threads follow the workers asked for, not those its last cells leave
    # busy: a resumed sweep with one cell left records the machine its other cells ran on
    threads = 1 if requested > 1 else os.cpu_count() or 1
    workers = min(requested, len(todo) or 1)
    show = sys.stderr.isatty() if progress is None else progress
    todo = run_order(spec, todo)
    bar = tqdm(total=len(todo), desc=f"sweep {spec.name}", unit="cell", disable=not show)
    t0 = time.perf_counter()
    # the parent says in the UI whether its sweep is running, stopped part way or done
    tracker.reopen(parent_id)
    try:
        if workers == 1:
            import torch

            before = torch.get_num_threads()
            try:
                _worker_init(spec.data_spec(), spec.data_options(), threads)
                _consume((_run_cell(c) for c in todo), tracker, parent_id, counts, bar)
            finally:
                torch.set_num_threads(before)  # the caller's process, as it was
        else:
            ctx = get_context("spawn")  # torch is not fork-safe once its thread pools exist
            init = (spec.data_spec(), spec.data_options(), threads)
            with ProcessPoolExecutor(workers, ctx, _worker_init, init) as pool:
                futures = [pool.submit(_run_cell, c) for c in todo]
                try:
                    _consume(
                        (f.result() for f in as_completed(futures)), tracker, parent_id, counts, bar
                    )
                except BaseException:
                    # leaving the pool waits for every queued cell: a store that cannot log
                    # (or Ctrl-C) would let hours of cells run with nowhere to go. The cells a
                    # worker holds or has been handed (one more than the workers) still finish.
                    for f in futures:
                        f.cancel()
                    raise
    except BaseException as exc:
        tracker.terminate(parent_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    finally:
        bar.close()
    tracker.log_metrics(
        parent_id, {"sweep_seconds": time.perf_counter() - t0, "cells_failed": counts["failed"]}
    )
    tracker.terminate(parent_id)
    return parent_id, counts


def run_order(spec: SweepSpec, cells: list[Cell]) -> list[Cell]:
    """The primary pair first, then the scaling arms, then the rest: a sweep stopped part way
    (the full design takes hours) has the study's main verdict first. Within each group the
    slowest cells first, so the tail of the sweep is not one long cell."""

    def rank(c: Cell) -> tuple:
        group = 0 if c.arm in spec.compare else 1 if c.arm in spec.scaling else 2
        return (group, not registry.get(c.config.model).deep, -c.train_flights)

    return sorted(cells, key=rank)


def _consume(results, tracker, parent_id: str, counts: dict, bar) -> None:
    for res in results:
        log_cell(tracker, parent_id, res)
        counts["failed" if res.error else "finished"] += 1
        if res.error:
            log.warning(
                "cell %s/%d flights/seed %d failed: %s (traceback: error.txt of its MLflow run)",
                res.cell.arm,
                res.cell.train_flights,
                res.cell.seed,
                res.error,
            )
        bar.update(1)
