"""One run: data -> split -> windows -> fit -> threshold on validation -> scores on test -> metrics.

`execute` computes everything without touching MLflow; `track_run` logs it. Sweeps call both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from anomaly import __version__
from anomaly.config import RunConfig
from anomaly.data.datamodule import training_windows
from anomaly.data.datasets import Dataset, load_dataset
from anomaly.data.schema import Flight, LogFormat
from anomaly.data.splits import Split, split_flights
from anomaly.detect.events import events_table
from anomaly.detect.pipeline import Pipeline, RowScores
from anomaly.detect.thresholds import Threshold
from anomaly.evaluate import metrics as M
from anomaly.models.registry import make_detector

log = logging.getLogger(__name__)


@dataclass
class FlightResult:
    flight: Flight
    rows: RowScores
    flagged: np.ndarray


@dataclass
class RunOutput:
    cfg: RunConfig
    dataset: Dataset
    split: Split
    pipeline: Pipeline
    metrics: dict[str, float]
    results: list[FlightResult]
    outcomes: list[M.FlightOutcome]
    per_fault: pd.DataFrame
    history: list[dict] = field(default_factory=list)


def log_format(cfg: RunConfig) -> LogFormat | None:
    """The reading format from the config; None lets a preset use its own. Channel selection is
    applied after loading (`Dataset.select`), so it works the same for presets and plain logs."""
    d = cfg.data
    if d.data in ("alfa", "synthetic") and not any((d.sep, d.time_col, d.label_col)):
        return None
    return LogFormat(d.sep, d.time_col, d.label_col, None, d.max_gap_rows)


def detector_params(cfg: RunConfig) -> dict:
    """Constructor arguments for the model: deep models also take the training settings."""
    params = dict(cfg.model_params)
    if cfg.model in ("lstm", "transformer"):
        t = cfg.train
        params = {
            "net": params,  # for the deep models, model_params is the network config
            "max_epochs": t.max_epochs,
            "patience": t.patience,
            "batch_size": t.batch_size,
            "lr": t.lr,
            "grad_clip": t.grad_clip,
            "limit_train_batches": t.limit_train_batches,
            "horizon": t.horizon,
        }
    return params


def _concat(arrays: list[np.ndarray], fill) -> np.ndarray:
    """Join per-flight arrays with one separator row, so runs never merge across flights."""
    parts = []
    for a in arrays:
        parts.extend([a, np.array([fill], dtype=a.dtype)])
    return np.concatenate(parts[:-1]) if parts else np.zeros(0)


def evaluate(
    results: list[FlightResult], rate_hz: float, timeout_s: float, confirm_s: float = 0.0
) -> tuple[dict, list, pd.DataFrame]:
    """Metrics over labelled test flights: micro point metrics, events, ALFA per-flight protocol."""
    labelled = [r for r in results if r.flight.labels is not None]
    if not labelled:
        return {}, [], pd.DataFrame()
    labels = _concat([r.flight.labels.astype(np.int8) for r in labelled], 0)
    scores = _concat([r.rows.score for r in labelled], -np.inf)
    flagged = _concat([r.flagged for r in labelled], False)
    sep = np.isneginf(scores)
    out = {
        **M.point_metrics(labels[~sep], flagged[~sep]),
        **M.ranking_metrics(labels[~sep], scores[~sep]),
    }
    out["vus_pr"] = M.vus_pr(labels[~sep], scores[~sep])
    out.update(M.event_metrics(labels, flagged))
    out["f1_point_adjusted"] = M.point_metrics(labels[~sep], M.point_adjust(labels, flagged)[~sep])[
        "f1_point"
    ]
    outcomes = [
        M.flight_outcome(
            r.flight.flight_id,
            r.flight.fault_type or "?",
            r.flight.time,
            r.flight.labels,
            r.flagged,
            timeout_s,
            confirm_s,
        )
        for r in labelled
    ]
    out.update(M.flight_metrics(outcomes))
    out["false_alarms_per_hour"] = M.false_alarms_per_hour(
        [r.flight.labels for r in labelled], [r.flagged for r in labelled], rate_hz
    )
    rows = []
    for fault in sorted({r.flight.fault_type or "?" for r in labelled}):
        sub = [r for r in labelled if (r.flight.fault_type or "?") == fault]
        lab = np.concatenate([r.flight.labels for r in sub])
        flg = np.concatenate([r.flagged for r in sub])
        sc = np.concatenate([r.rows.score for r in sub])
        oc = [o for o in outcomes if o.fault_type == fault]
        row = {
            "fault_type": fault,
            "flights": len(sub),
            **M.point_metrics(lab, flg),
            **M.ranking_metrics(lab, sc),
        }
        row["detected"] = sum(o.outcome == "TP" for o in oc)
        row["early_alarm"] = sum(o.outcome == "FP" for o in oc)
        delays = [o.delay_s for o in oc if o.delay_s is not None]
        row["delay_s"] = float(np.mean(delays)) if delays else float("nan")
        rows.append(row)
    return out, outcomes, pd.DataFrame(rows)


def execute(
    cfg: RunConfig,
    dataset: Dataset | None = None,
    progress: bool = False,
) -> RunOutput:
    """Train and evaluate one configuration; deterministic for a seed on CPU. Settings are chosen
    without test flights by handing it a dataset whose 'test' side is held-out training flights
    (experiments/alfa_tuning.py)."""
    ds = dataset or load_dataset(cfg.data.data, log_format(cfg))
    if cfg.data.channels:
        ds = ds.select(cfg.data.channels)
    split = split_flights(ds, cfg.seed, cfg.data.train_flights)
    w = cfg.window
    if (
        cfg.train.horizon
        and cfg.model in ("lstm", "transformer")
        and w.score_stride > cfg.train.horizon
    ):
        raise ValueError(
            f"window.score_stride {w.score_stride} > train.horizon {cfg.train.horizon}: in forecast mode "
            "the stride must not exceed the horizon, or rows between forecasts get no score"
        )
    prep = training_windows(split, w.window_len, w.stride, w.scaler)
    params = detector_params(cfg)
    if cfg.model in ("lstm", "transformer"):
        params["progress"] = progress
    det = make_detector(cfg.model, params, cfg.seed)
    t0 = time.perf_counter()
    det.fit(prep.train_windows, prep.val_windows)
    train_seconds = time.perf_counter() - t0
    if cfg.model in ("lstm", "transformer"):
        det.progress = False
    rate = float(np.median([f.sample_rate_hz for f in split.train]))
    d = cfg.detect
    pipe = Pipeline(
        cfg.model, det, prep.scaler, prep.channels, w.window_len, w.score_stride, None, rate,
        smooth_rows=max(1, int(round(d.smooth_s * rate))),
        min_event_rows=max(1, int(round(d.min_event_s * rate))),
        merge_gap_rows=int(round(d.merge_gap_s * rate)),
        warmup_rows=int(round(d.warmup_s * rate)),
        baseline_rows=int(round(d.baseline_s * rate)),
        baseline_lag_rows=int(round(d.baseline_lag_s * rate)),
    )  # fmt: skip
    val_scores = [
        pipe.score_rows(f.normal_prefix(), f.flight_id).score[pipe.warmup_rows :]
        for f in split.validation
        if len(f.normal_prefix()) >= w.window_len
    ]
    if not val_scores:
        raise ValueError(
            "no validation flight has a full window of normal rows; cannot set a threshold"
        )
    pipe.threshold = Threshold(d.threshold).fit(np.concatenate(val_scores))
    t1 = time.perf_counter()
    results = []
    for f in split.test:
        rows = pipe.score_rows(f.values, f.flight_id)
        results.append(FlightResult(f, rows, pipe.flag(rows.score)))
    score_seconds = time.perf_counter() - t1
    confirm_s = (pipe.min_event_rows - 1) / rate
    metrics, outcomes, per_fault = evaluate(results, rate, d.timeout_s, confirm_s)
    metrics.update(
        {
            "train_seconds": train_seconds,
            "score_seconds": score_seconds,
            "n_params": float(det.n_params),
            "epochs": float(getattr(det, "epochs_", 0)),
            "threshold": pipe.threshold.threshold_,
            "train_windows": float(len(prep.train_windows)),
        }
    )
    return RunOutput(
        cfg, ds, split, pipe, metrics, results, outcomes, per_fault, det.training_history()
    )


def run_name(cfg: RunConfig, n_params: int | None = None) -> str:
    size = f"{n_params / 1000:.1f}k" if n_params else ""
    pe = cfg.model_params.get("positional")
    parts = [
        cfg.model + (f"-{pe}" if pe else ""),
        size,
        f"n{cfg.data.train_flights or 'all'}",
        f"s{cfg.seed}",
    ]
    return "-".join(p for p in parts if p)


def run_params(cfg: RunConfig, out: RunOutput) -> dict:
    from anomaly.track.tracker import git_commit

    p = cfg.flat()
    p.update(out.split.describe())
    p.update(
        {
            "data.content_hash": out.dataset.content_hash,
            "data.source": out.dataset.source,
            "data.n_flights": len(out.dataset.flights),
            "channels": ",".join(out.pipeline.channels),
            "package_version": __version__,
            "git_commit": git_commit(),
            "split.val_from_tail": out.split.val_from_tail,
        }
    )
    return p


def fault_metrics(per_fault: list[dict]) -> dict[str, float]:
    """Per-fault-type rows -> MLflow metrics named fault/<type>/<metric>."""
    keys = ("f1_point", "auc_pr", "recall_point")
    return {f"fault/{row['fault_type']}/{k}": row[k] for row in per_fault for k in keys}


MAX_FLIGHT_FIGURES = 30  # one figure per test flight up to this many (ALFA has 20)


def log_figures(tracker, run_id: str, out: RunOutput, name: str) -> None:
    """A figure per test flight (channels, score, threshold, onset, first alarm) under flights/, the
    first faulty one also as test_flight.png, and detection delay per fault type."""
    import matplotlib.pyplot as plt

    from anomaly.evaluate.plots import delay_figure, flight_figure

    thr = out.pipeline.threshold.threshold_
    first = next(
        (r for r in out.results if r.flight.onset_index is not None),
        out.results[0] if out.results else None,
    )
    for r in out.results[:MAX_FLIGHT_FIGURES]:
        fig = flight_figure(r.flight, r.rows.score, thr, r.flagged, f"{name}: {r.flight.flight_id}")
        tracker.log_figure(run_id, fig, f"flights/{r.flight.flight_id}.png")
        if r is first:
            tracker.log_figure(run_id, fig, "test_flight.png")
        plt.close(fig)
    if out.outcomes:
        fig = delay_figure(out.outcomes)
        tracker.log_figure(run_id, fig, "detection_delay_by_fault.png")
        plt.close(fig)


def track_run(
    out: RunOutput,
    tracker,
    parent_run_id: str | None = None,
    tags: dict | None = None,
    register: str | None = None,
) -> tuple[str, str]:
    """Log one finished run to MLflow; returns (run_id, model_uri)."""

    cfg = out.cfg
    name = run_name(cfg, int(out.metrics["n_params"]))
    with tracker.run(name, parent_run_id, tags) as run_id:
        tracker.log_params(run_id, run_params(cfg, out))
        tracker.log_metrics(
            run_id, {**out.metrics, **fault_metrics(out.per_fault.to_dict("records"))}
        )
        tracker.log_history(run_id, out.history)
        tracker.log_dict(run_id, {"threshold": out.pipeline.threshold.to_dict()}, "threshold.json")
        if len(out.per_fault):
            tracker.log_text(run_id, out.per_fault.to_csv(index=False), "per_fault_type.csv")
        if out.outcomes:
            tracker.log_text(
                run_id,
                pd.DataFrame([o.__dict__ for o in out.outcomes]).to_csv(index=False),
                "per_flight.csv",
            )
        log_figures(tracker, run_id, out, name)
        if out.results:
            events = pd.concat(
                [
                    events_table(
                        r.flight.flight_id,
                        r.flight.time,
                        r.flagged,
                        r.rows.score,
                        r.rows.contributions,
                        out.pipeline.channels,
                    )  # fmt: skip
                    for r in out.results
                ]
            )
            tracker.log_text(run_id, events.to_csv(index=False), "events.csv")
        example_flight = (out.split.test or out.split.validation)[0]
        n = min(example_flight.n_rows, max(out.pipeline.window_len * 2, 64))
        example = pd.DataFrame(
            example_flight.values[:n].astype(np.float64), columns=out.pipeline.channels
        )
        model_uri = tracker.log_pipeline(out.pipeline, example)
        if register:
            version = tracker.register(model_uri, register)
            tracker.set_tags(run_id, {"registered_model": f"{register}/{version}"})
    tracker.terminate(run_id)
    return run_id, model_uri
