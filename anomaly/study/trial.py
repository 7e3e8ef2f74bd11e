"""One trial: data -> split -> windows -> fit -> alarm rule on validation -> test alarms -> metrics.

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
from anomaly.data.checks import suspicious
from anomaly.data.datasets import Dataset, load_dataset
from anomaly.data.splits import Split, split_flights
from anomaly.data.training import training_windows
from anomaly.detect.alarms import AlarmRule, tested_sides
from anomaly.detect.frozen import FrozenCheck
from anomaly.detect.pipeline import Pipeline
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


def warn_suspicious(ds: Dataset) -> None:
    for s in suspicious(ds.flights):
        column = f", column '{s.column}'" if s.column else ""
        log.warning("%s%s: %s", ds.flights[s.flight].flight_id, column, s.reason)


def alarm_rule(cfg: RunConfig, pipeline: Pipeline) -> AlarmRule:
    """The config's (unfitted) alarm rule for this pipeline's residual channels. A model whose
    residuals are magnitudes (an autoencoder's error over several rows, a window's anomaly
    score) is tested one-sided: only a larger one is anomalous."""
    d = cfg.detect
    return AlarmRule(
        pipeline.residual_channels,
        pipeline.sample_rate_hz,
        threshold=d.threshold,
        drift=d.drift,
        sides=tested_sides(d.sides, pipeline.detector.signed_residuals),
        smooth_s=d.smooth_s,
        confirm_s=d.confirm_s,
        merge_gap_s=d.merge_gap_s,
        warmup_s=d.warmup_s,
        baseline_s=d.baseline_s,
        baseline_lag_s=d.baseline_lag_s,
    )


def score_flights(pipeline: Pipeline, flights) -> list[FlightResult]:
    """Each flight scored causally from its first row, as a stream would."""
    out = []
    for f in flights:
        b = pipeline.score(f.values, f.time)
        out.append(FlightResult(f, b.score, b.contributions, b.is_anomaly, b.channel))
    return out


def run_trial(cfg: RunConfig, dataset: Dataset | None = None, progress: bool = False) -> Trial:
    """Fit and evaluate one configuration; deterministic for a seed on CPU.

    Settings are chosen without test flights by handing it a dataset whose 'test' side is
    held-out training flights (scripts/tune_detection.py).
    """
    spec = registry.get(cfg.model)
    ds = dataset or load_dataset(cfg.data.data, cfg.data.format_options())
    if cfg.data.channels:
        ds = ds.select(cfg.data.channels)
    if dataset is None:  # logs read here: say what looks wrong in them, as `validate` does
        warn_suspicious(ds)
    split = split_flights(ds, cfg.seed, cfg.data.train_flights)
    w = cfg.window
    prep = training_windows(split, w.window_len, w.stride, w.scaler)
    # judged before training, which it would otherwise waste
    normal = [f.normal_prefix() for f in split.validation]
    normal = [v for v in normal if len(v) >= w.window_len]
    if not normal:
        raise UserError(
            "no validation flight has a full window of normal rows; cannot fit the alarm rule"
        )
    params = spec.params(cfg)
    if spec.deep:
        params["progress"] = progress
    det = registry.make_detector(cfg.model, params, cfg.seed)
    t0 = time.perf_counter()
    det.fit(prep.train_windows, prep.val_windows)
    total_seconds = time.perf_counter() - t0
    timing = {"fit_seconds": total_seconds, "validate_seconds": 0.0, "checkpoint_seconds": 0.0}
    timing.update(det.training_summary())
    if spec.deep:
        det.set_params(progress=False)
    rate = float(np.median([f.sample_rate_hz for f in split.train]))
    fmt = ds.fmt
    pipe = Pipeline(
        cfg.model,
        det,
        prep.scaler,
        prep.channels,
        w.window_len,
        w.score_stride,
        rate,
        log_format={
            "sep": fmt.sep,
            "time_col": fmt.time_col,
            "label_col": fmt.label_col,
            "max_gap_rows": fmt.max_gap_rows,
        },
    )
    pipe.calibrate(normal, alarm_rule(cfg, pipe))
    if cfg.detect.frozen_check:  # model-free: every normal row not used for testing teaches it
        still = [f.normal_prefix() for f in split.train] + normal
        pipe.frozen = FrozenCheck(rate, gap_rows=fmt.max_gap_rows).fit(still)
    t1 = time.perf_counter()
    results = score_flights(pipe, split.test)
    score_seconds = time.perf_counter() - t1
    d = cfg.detect
    metrics, outcomes, per_fault = evaluate_flights(
        results, rate, d.timeout_s, vus_window_s=d.vus_window_s
    )
    metrics.update(timing)
    metrics.update(
        {
            # fit time under the name the conventions and older runs use
            "train_seconds": timing["fit_seconds"],
            "total_seconds": total_seconds,
            "score_seconds": score_seconds,
            # per-row inference cost of the whole causal path (residuals and alarm rule)
            "score_us_per_row": score_seconds / max(1, sum(f.n_rows for f in split.test)) * 1e6,
            "n_params": float(det.n_params),
            "epochs": timing.get("epochs", 0.0),
            "threshold": pipe.rule.threshold.threshold_,
            "train_windows": float(len(prep.train_windows)),
        }
    )
    return Trial(
        cfg, ds, split, pipe, metrics, results, outcomes, per_fault, det.training_history()
    )
