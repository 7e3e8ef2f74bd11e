"""One trial: data -> split -> windows -> fit -> threshold on validation -> test scores -> metrics.

Compute only: nothing here talks to MLflow (anomaly.track.trials logs a trial). `anomaly train`,
`compare`, sweeps and the tuning scripts all run trials through `run_trial`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from anomaly.config import RunConfig
from anomaly.data.datasets import Dataset, load_dataset
from anomaly.data.splits import Split, split_flights
from anomaly.data.training import training_windows
from anomaly.detect.pipeline import Pipeline
from anomaly.detect.thresholds import Threshold
from anomaly.errors import UserError
from anomaly.evaluate.metrics import FlightOutcome
from anomaly.evaluate.protocol import FlightResult, evaluate_flights
from anomaly.models import registry

log = logging.getLogger(__name__)


@dataclass
class Trial:
    """Everything a trial produced: the fitted pipeline, test-flight results and metrics."""

    cfg: RunConfig
    dataset: Dataset
    split: Split
    pipeline: Pipeline
    metrics: dict[str, float]
    results: list[FlightResult]
    outcomes: list[FlightOutcome]
    per_fault: pd.DataFrame
    history: list[dict] = field(default_factory=list)


def build_pipeline(cfg: RunConfig, detector, scaler, channels: list[str], rate: float) -> Pipeline:
    """A pipeline with the config's detection settings turned from seconds into rows."""
    w, d = cfg.window, cfg.detect
    return Pipeline(
        cfg.model,
        detector,
        scaler,
        channels,
        w.window_len,
        w.score_stride,
        None,
        rate,
        smooth_rows=max(1, int(round(d.smooth_s * rate))),
        min_event_rows=max(1, int(round(d.min_event_s * rate))),
        merge_gap_rows=int(round(d.merge_gap_s * rate)),
        warmup_rows=int(round(d.warmup_s * rate)),
        baseline_rows=int(round(d.baseline_s * rate)),
        baseline_lag_rows=int(round(d.baseline_lag_s * rate)),
    )


def run_trial(cfg: RunConfig, dataset: Dataset | None = None, progress: bool = False) -> Trial:
    """Fit and evaluate one configuration; deterministic for a seed on CPU.

    Settings are chosen without test flights by handing it a dataset whose 'test' side is
    held-out training flights (scripts/alfa_tuning.py).
    """
    spec = registry.get(cfg.model)
    ds = dataset or load_dataset(cfg.data.data, cfg.data.format_options())
    if cfg.data.channels:
        ds = ds.select(cfg.data.channels)
    split = split_flights(ds, cfg.seed, cfg.data.train_flights)
    w = cfg.window
    if spec.deep and cfg.train.horizon and w.score_stride > cfg.train.horizon:
        raise UserError(
            f"window.score_stride {w.score_stride} > train.horizon {cfg.train.horizon}: in "
            "forecast mode the stride must not exceed the horizon, or rows between forecasts "
            "get no score"
        )
    prep = training_windows(split, w.window_len, w.stride, w.scaler)
    params = spec.params(cfg)
    if spec.deep:
        params["progress"] = progress
    det = registry.make_detector(cfg.model, params, cfg.seed)
    t0 = time.perf_counter()
    det.fit(prep.train_windows, prep.val_windows)
    total_seconds = time.perf_counter() - t0
    timing = {"fit_seconds": total_seconds, "validate_seconds": 0.0}
    timing.update(det.training_summary())
    if spec.deep:
        det.set_params(progress=False)
    rate = float(np.median([f.sample_rate_hz for f in split.train]))
    pipe = build_pipeline(cfg, det, prep.scaler, prep.channels, rate)
    val_scores = [
        pipe.score_rows(f.normal_prefix(), f.flight_id).score[pipe.warmup_rows :]
        for f in split.validation
        if len(f.normal_prefix()) >= w.window_len
    ]
    if not val_scores:
        raise UserError(
            "no validation flight has a full window of normal rows; cannot set a threshold"
        )
    pipe.threshold = Threshold(cfg.detect.threshold).fit(np.concatenate(val_scores))
    t1 = time.perf_counter()
    results = []
    for f in split.test:
        rows = pipe.score_rows(f.values, f.flight_id)
        results.append(FlightResult(f, rows.score, rows.contributions, pipe.flag(rows.score)))
    score_seconds = time.perf_counter() - t1
    confirm_s = (pipe.min_event_rows - 1) / rate
    d = cfg.detect
    metrics, outcomes, per_fault = evaluate_flights(
        results, rate, d.timeout_s, confirm_s, d.vus_window_s
    )
    metrics.update(timing)
    metrics.update(
        {
            # fit time under the name the conventions and older runs use
            "train_seconds": timing["fit_seconds"],
            "total_seconds": total_seconds,
            "score_seconds": score_seconds,
            "n_params": float(det.n_params),
            "epochs": timing.get("epochs", 0.0),
            "threshold": pipe.threshold.threshold_,
            "train_windows": float(len(prep.train_windows)),
        }
    )
    return Trial(
        cfg, ds, split, pipe, metrics, results, outcomes, per_fault, det.training_history()
    )
