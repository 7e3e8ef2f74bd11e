"""One cell of a study: a trial plus what the study's report needs beyond its metrics.

Compute only (sweep.py logs it): the per-test-flight table the two-way bootstrap resamples, the
lens W(t, k) of a deep model on some cells, and the order control of claim 4: the temporal-order
flights scored again with every window's rows shuffled, which a model that ignores order scores
the same.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd

from anomaly.data.datasets import Dataset
from anomaly.detect.residuals import BATCH
from anomaly.errors import UserError
from anomaly.evaluate.lens import flight_windows, lens, network_of
from anomaly.evaluate.protocol import per_flight_table
from anomaly.evaluate.vus import vus
from anomaly.study.spec import Cell
from anomaly.study.trial import Trial, run_trial

CAMPAIGN = re.compile(r"(\d{4}-\d{2})-\d{2}")  # a date in the flight's name: its month
ORDER_FAULT = "temporal_order"


@dataclasses.dataclass
class CellOutput:
    metrics: dict
    per_flight: pd.DataFrame
    history: list[dict]
    lens: dict | None  # weight map and lag profile of the normal windows, for the report


def campaign_of(flight_id: str) -> str:
    """A flight's campaign: the month in its name (ALFA: July, September, October 2018)."""
    m = CAMPAIGN.search(flight_id)
    return m.group(1) if m else ""


def campaigns(ds: Dataset) -> list[str]:
    return sorted({campaign_of(f.flight_id) for f in ds.flights} - {""})


def leave_campaign_out(ds: Dataset, campaign: str) -> Dataset:
    """Train on two campaigns, test on the third: the other campaigns' training and validation
    flights as in the fixed split, and `campaign`'s flights of the fixed split's test side.

    Only those: a preset's settings (channels, window, alarm rule) were chosen on the fixed
    split's training and validation flights, so testing on those of the held-out campaign too
    would score flights the settings were tuned on."""
    split = dict(ds.fixed_split or {})
    side = {}
    for f in ds.flights:
        if campaign_of(f.flight_id) == campaign:
            if split.get(f.flight_id) == "test":
                side[f.flight_id] = "test"
        elif split.get(f.flight_id) in ("train", "validation"):
            side[f.flight_id] = split[f.flight_id]
    flights = [f for f in ds.flights if f.flight_id in side]
    return dataclasses.replace(ds, flights=flights, fixed_split=side)


def per_flight(trial: Trial) -> pd.DataFrame:
    """One row per labelled test flight: its verdict, delay and VUS (evaluate.protocol)."""
    rate, window_s = trial.pipeline.sample_rate_hz, trial.cfg.detect.vus_window_s
    return per_flight_table(trial.results, trial.outcomes, rate, window_s)


def shuffled_vus(trial: Trial, seed: int = 0) -> tuple[float, float]:
    """VUS-PR on the temporal-order test flights with windowed scoring, as it is and with each
    window's earlier rows shuffled; NaN without such flights. The last two rows stay in place:
    a forecaster predicts the last from the one before (persistence plus a correction), which an
    order-blind model would lose too if it moved."""
    p = trial.pipeline
    if getattr(p.detector, "error_rows", 1) != 1:
        # its score reads rows the control moves: an order-blind model would score differently
        raise UserError(
            f"{trial.cfg.model}: the order control needs a row scored by its own error; "
            "set model_params.error_rows to 1 for a shuffled arm"
        )
    flights = [r.flight for r in trial.results if r.flight.fault_type == ORDER_FAULT]
    if not flights:
        return float("nan"), float("nan")
    window = max(1, int(round(trial.cfg.detect.vus_window_s * p.sample_rate_hz)))
    rng = np.random.default_rng(seed)
    out = []
    for shuffle in (False, True):
        values = []
        for f in flights:
            res, fresh = windowed_residuals(p, f.values, rng if shuffle else None)
            a = p.rule.stream().feed(res, fresh)
            values.append(vus(f.labels, a.statistic, window)[0])
        out.append(float(np.nanmean(values)))
    return out[0], out[1]


def windowed_residuals(pipeline, values: np.ndarray, rng: np.random.Generator | None):
    """Every row scored from the window ending on it, the window's rows before its last two
    shuffled when `rng` is given: (n, C) residuals and fresh (n,)."""
    scaled = pipeline.scaler.transform(np.asarray(values, np.float32))
    T, n = pipeline.window_len, len(scaled)
    res = np.full((n, len(pipeline.residual_channels)), np.nan, np.float32)
    fresh = np.arange(n) >= T - 1
    view = np.lib.stride_tricks.sliding_window_view(scaled, T, axis=0)  # (n - T + 1, F, T)
    for i in range(0, len(view), BATCH):
        w = np.ascontiguousarray(view[i : i + BATCH].transpose(0, 2, 1))  # (B, T, F)
        if rng is not None:
            order = np.argsort(rng.random((len(w), T - 2)), axis=1)
            w[:, : T - 2] = np.take_along_axis(w[:, : T - 2], order[:, :, None], axis=1)
        res[i + T - 1 : i + T - 1 + len(w)] = pipeline.detector.last_residuals(w)
    return res, fresh


def run_cell(cell: Cell, dataset: Dataset) -> tuple[CellOutput, Trial]:
    ds = leave_campaign_out(dataset, cell.held_out) if cell.held_out else dataset
    trial = run_trial(cell.config, ds)
    metrics = dict(trial.metrics)
    table = per_flight(trial)
    faults = table[table["fault_type"] == ORDER_FAULT]
    metrics["vus_pr_order"] = float(faults["vus_pr"].mean()) if len(faults) else float("nan")
    if cell.shuffle:
        metrics["vus_pr_order_windowed"], metrics["vus_pr_order_shuffled"] = shuffled_vus(trial)
    summary = None
    network = network_of(trial.pipeline)
    if cell.lens and network is not None:
        normal, _ = flight_windows(trial.pipeline, trial.split.test, per_flight=4)
        if len(normal):
            ln = lens(network, normal[:64])
            metrics["lag_dependence_index"] = ln.lag_dependence_index
            metrics["effective_memory_seconds"] = (
                ln.effective_memory_rows / trial.pipeline.sample_rate_hz
            )
            summary = {"weight_map": ln.weight_map.tolist(), "lag_profile": ln.lag_profile.tolist()}
    return CellOutput(metrics, table, trial.history, summary), trial
