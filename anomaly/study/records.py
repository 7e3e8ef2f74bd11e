"""A sweep's records, read from MLflow alone: one row per finished cell, the per-test-flight
tables, training curves and W(t, k) summaries. The report is built from these, so it can be
rebuilt on any machine that sees the tracking store."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pandas as pd

from anomaly.errors import UserError


@dataclass
class Records:
    """cells: one row per finished cell (arm, train_flights, seed, held_out, model, metrics).
    flights: one row per cell and labelled test flight (arm, train_flights, seed, held_out,
    flight_id, fault_type, vus_pr, outcome, delay_s). curves: per cell and epoch (val_loss,
    fit_seconds). lenses: arm -> (train_flights, {'weight_map', 'lag_profile'}) of one cell."""

    cells: pd.DataFrame
    flights: pd.DataFrame
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    lenses: dict = field(default_factory=dict)
    unfinished: int = 0  # cells whose every run failed or was killed


KEYS = ["arm", "train_flights", "seed", "held_out"]
# the settings that decide how long a deep cell trains, quoted by the report
TRAINING_RULE = ("max_epochs", "patience", "min_improvement", "steps_per_epoch")


def load_records(sweep: str) -> tuple[str, dict, Records]:
    """A parent run id, or an experiment name (its sweep run last) -> (parent id, its params,
    records)."""
    from anomaly.track.tracker import artifact_text, metric_history, parent_run, runs_frame

    parent_id, params = parent_run(sweep)
    runs = runs_frame(parent_run_id=parent_id)
    if runs.empty:
        raise UserError(f"sweep {sweep}: the parent run {parent_id} has no child runs")
    runs = runs.sort_values("start_time")
    failed = runs["status"] != "FINISHED"
    done = runs[~failed].drop_duplicates("tags.anomaly.cell", keep="last")
    cells = pd.DataFrame(
        {
            "run_id": done["run_id"],
            "arm": done["tags.anomaly.arm"],
            "train_flights": done["tags.anomaly.train_flights"].astype(int),
            "seed": done["tags.anomaly.seed"].astype(int),
            "held_out": _text(done, "tags.anomaly.held_out"),
            "model": done["params.model"],
            "git_commit": _text(done, "params.git_commit"),
            # where its timings were measured: "" in runs that predate the record
            "machine": _text(done, "params.machine"),
            # where a cell came from: "" when this store ran it, else the archive it was read from
            "source": _text(done, "tags.anomaly.source"),
        }
    )
    # rows a window holds: a validation loss averages over windows of that length
    window = done.get("params.window.window_len", pd.Series(None, index=done.index))
    cells["window_len"] = pd.to_numeric(window, errors="coerce").to_numpy()
    for key in TRAINING_RULE:  # params are text; absent in runs of models that do not train
        col = done.get(f"params.train.{key}", pd.Series(None, index=done.index))
        cells[key] = pd.to_numeric(col, errors="coerce").to_numpy()
    for col in done.columns:
        if col.startswith("metrics."):
            cells[col[len("metrics.") :]] = done[col].astype(float)
    # in key order, not run order: the report is the same whichever order the cells ran in,
    # and whether they ran here or came from an archive
    cells = cells.sort_values(KEYS).reset_index(drop=True)
    tables, curves, lenses = [], [], {}
    for row in cells.itertuples():
        text = artifact_text(row.run_id, "per_flight.csv")
        if text:
            t = pd.read_csv(io.StringIO(text))
            tables.append(t.assign(**{k: getattr(row, k) for k in KEYS}))
        losses = dict(metric_history(row.run_id, "val_loss"))
        # step 0 holds the cell's total fit time (its metric) beside epoch 0's own, which is
        # the smaller: keep the first of each step in (step, value) order
        times: dict[int, float] = {}
        for e, v in metric_history(row.run_id, "fit_seconds"):
            times.setdefault(e, v)
        curves += [
            {
                **{k: getattr(row, k) for k in KEYS},
                "epoch": e,
                "val_loss": v,
                "fit_seconds": times.get(e),
            }
            for e, v in losses.items()
        ]
        lens = artifact_text(row.run_id, "lens.json")
        if lens and row.train_flights >= lenses.get(row.arm, (0, None))[0]:
            lenses[row.arm] = (row.train_flights, json.loads(lens))
    # cells with no finished run: a failed run whose cell a later sweep redid is no gap
    unfinished = failed & ~runs["tags.anomaly.cell"].isin(done["tags.anomaly.cell"])
    records = Records(
        cells,
        pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=KEYS),
        pd.DataFrame(curves),
        lenses,
        int(runs.loc[unfinished, "tags.anomaly.cell"].nunique()),
    )
    return parent_id, params, records


def _text(runs: pd.DataFrame, column: str) -> pd.Series:
    """A param or tag column as text, "" where a run lacks it (runs from before it existed)."""
    return runs.get(column, pd.Series("", index=runs.index)).fillna("").astype(str)
