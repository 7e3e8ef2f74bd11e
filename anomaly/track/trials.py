"""A trial into MLflow: its params, metrics, loss curves, figures, tables and the scoring model.

Names of params and metrics are the project's record: old runs compare with new ones only while
these names stay as they are.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly import __version__
from anomaly.config import RunConfig
from anomaly.data.schema import LogError
from anomaly.detect.batch import RateCheck
from anomaly.detect.events import EventBuilder, events_table, runs
from anomaly.evaluate.protocol import per_flight_table
from anomaly.study.trial import Trial
from anomaly.track.tracker import Tracker, git_commit, git_dirty, library_versions, machine

log = logging.getLogger(__name__)

MAX_FLIGHT_FIGURES = 30  # one figure per test flight up to this many (ALFA has 20)
FAULT_METRICS = ("f1_point", "auc_pr", "recall_point", "vus_pr")


def run_name(cfg: RunConfig, n_params: int | None = None) -> str:
    """'lstm-15.5k-n8-s0': model (and positional encoding), size, training flights, seed."""
    size = f"{n_params / 1000:.1f}k" if n_params else ""
    pe = cfg.model_params.get("positional")
    parts = [
        cfg.model + (f"-{pe}" if pe else ""),
        size,
        f"n{cfg.data.train_flights or 'all'}",
        f"s{cfg.seed}",
    ]
    return "-".join(p for p in parts if p)


def trial_params(cfg: RunConfig, trial: Trial) -> dict:
    """The config, flattened, plus what identifies the data, the split and the code."""
    p = cfg.flat()
    p.update(trial.split.describe())
    p.update(
        {
            "data.content_hash": trial.dataset.content_hash,
            "data.tables_hash": trial.dataset.tables_hash,
            "data.source": trial.dataset.source,
            "data.n_flights": len(trial.dataset.flights),
            "channels": ",".join(trial.pipeline.channels),
            "package_version": __version__,
            "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "libraries": library_versions(),
            "machine": machine(),
            "split.val_from_tail": trial.split.val_from_tail,
        }
    )
    p.update(model_settings(trial.pipeline.detector))
    return p


def model_example(trial: Trial) -> pd.DataFrame:
    """The MLflow model's input example: the first rows of a flight the model accepts (long
    enough for a window, logged at its rate: it refuses others, as `anomaly score` does) with
    its time column, named as the training logs' was."""
    p = trial.pipeline
    flights = [*trial.split.test, *trial.split.validation, *trial.split.train]
    n_rows = max(p.window_len * 2, 64)
    long = [f for f in flights if f.n_rows >= p.window_len] or flights

    def at_rate(f) -> bool:  # as the model will judge it
        check = RateCheck(p, Path("example"), None)
        try:
            check.see(f.time)
            check.finish()
        except LogError:
            return False
        return True

    good = [f for f in long if at_rate(f)]
    flight = (good or long)[0]
    n = min(flight.n_rows, n_rows)
    example = pd.DataFrame(flight.values[:n].astype(np.float64), columns=p.channels)
    time_col = p.log_format.get("time_col") or "time"
    if good and time_col not in example:
        example.insert(0, time_col, flight.time[:n])
    return example


def model_settings(detector) -> dict:
    """What the model ran with, defaults included (the config holds only what a user changed):
    the detector's settings as `detector.<name>`, a network's whole config as `network.<name>`,
    so runs compare in the UI on the settings they did not set too."""
    out = {f"detector.{k}": v for k, v in detector.get_params().items() if k != "net"}
    network = getattr(detector, "network_", None)
    if network is not None:
        out.update({f"network.{k}": v for k, v in dataclasses.asdict(network.cfg).items()})
    return out


def fault_metrics(per_fault: list[dict], keys: tuple[str, ...] = FAULT_METRICS) -> dict[str, float]:
    """Per-fault-type rows -> MLflow metrics named fault/<type>/<metric>, for `keys`.

    A fault type comes from a manifest and may hold anything; MLflow takes letters, digits and
    `_ - . / space` in a name, and a '/' or a bare '.' or '..' would change the name's path, so
    every other character becomes '_' and an empty or dots-only type becomes '_'.
    """
    out = {}
    for row in per_fault:
        fault = re.sub(r"[^A-Za-z0-9_. -]", "_", str(row["fault_type"])).strip()
        fault = fault if fault.strip(".") else "_"
        out.update({f"fault/{fault}/{k}": row[k] for k in keys if k in row})
    return out


def log_figures(tracker: Tracker, run_id: str, trial: Trial, name: str) -> None:
    """A figure per test flight (channels, score, threshold, onset, first alarm) under flights/,
    the first faulty one also as test_flight.png, and detection delay per fault type."""
    import matplotlib.pyplot as plt

    from anomaly.evaluate.plots import delay_figure, flight_figure

    thr = trial.pipeline.rule.threshold.threshold_
    first = next(
        (r for r in trial.results if r.flight.onset_index is not None),
        trial.results[0] if trial.results else None,
    )
    names = trial.pipeline.residual_channels
    for r in trial.results[:MAX_FLIGHT_FIGURES]:
        raised = [s for s, _ in runs(r.flagged)] if r.channel is not None else []
        blamed = [names[int(r.channel[s])] for s in raised if 0 <= r.channel[s] < len(names)]
        title = f"{name}: {r.flight.flight_id}"
        fig = flight_figure(r.flight, r.score, thr, r.flagged, title, blamed=blamed)
        tracker.log_figure(run_id, fig, f"flights/{r.flight.flight_id}.png")
        if r is first:
            tracker.log_figure(run_id, fig, "test_flight.png")
        plt.close(fig)
    if trial.outcomes:
        fig = delay_figure(trial.outcomes, trial.cfg.detect.timeout_s)
        tracker.log_figure(run_id, fig, "detection_delay_by_fault.png")
        plt.close(fig)


def log_lens(tracker: Tracker, run_id: str, trial: Trial, name: str) -> None:
    """W(t, k) of a deep model on normal and on fault-onset windows of the test flights: heat
    maps and lag profiles under lens/, the lag-dependence index and effective memory as metrics."""
    import matplotlib.pyplot as plt

    from anomaly.evaluate.lens import (
        attention_maps,
        attention_rollout,
        flight_windows,
        has_attention,
        lens,
        network_of,
    )
    from anomaly.evaluate.plots import attention_figure, lens_figure

    network = network_of(trial.pipeline)
    if network is None:
        return
    normal, onset = flight_windows(trial.pipeline, trial.split.test)
    sets = {"normal windows": normal, "fault-onset windows": onset}
    lenses = {label: lens(network, w) for label, w in sets.items() if len(w)}
    if not lenses:
        return
    if "normal windows" in lenses:
        ln = lenses["normal windows"]
        metrics = {
            "lag_dependence_index": ln.lag_dependence_index,
            "effective_memory_seconds": ln.effective_memory_rows / trial.pipeline.sample_rate_hz,
        }
        tracker.log_metrics(run_id, metrics)
    fig = lens_figure(lenses, f"{name}: W(t, k) on test flights", trial.pipeline.sample_rate_hz)
    tracker.log_figure(run_id, fig, "lens/weights.png")
    plt.close(fig)
    if has_attention(network) and len(normal):  # a Transformer: its attention, inside W
        maps = attention_maps(network, normal)
        fig = attention_figure(maps, attention_rollout(maps), f"{name}: attention, normal windows")
        tracker.log_figure(run_id, fig, "lens/attention.png")
        plt.close(fig)


def trial_events(trial: Trial) -> pd.DataFrame:
    """The test flights' alarms, through the same event builder as batch scoring."""
    p = trial.pipeline
    rows = []
    for r in trial.results:
        b = EventBuilder(r.flight.flight_id, p.residual_channels, p.detector.has_attribution)
        channel = r.contributions.argmax(axis=1) if r.channel is None else r.channel
        b.add(r.flight.time, r.flagged, r.score, channel, r.contributions)
        rows += b.finish()
    return events_table(rows)


# what a registered version is tagged with, beside its model, run, data and commit
REGISTRY_METRICS = ("vus_pr", "flight_precision", "flight_recall", "detection_delay_seconds")


def unlabelled_test_flights(trial: Trial) -> list[str]:
    """Test flights without labels: scored (their alarms are in events.csv) but in no metric."""
    return [f.flight_id for f in trial.split.test if f.labels is None]


def judged_note(trial: Trial) -> str | None:
    """One line on the test flights the metrics leave out, or None when they judge them all."""
    if not trial.split.test:
        return "no test flights: nothing to judge the model on (metrics '-')"
    unjudged = unlabelled_test_flights(trial)
    if not unjudged:
        return None
    shown = ", ".join(unjudged[:5]) + (", ..." if len(unjudged) > 5 else "")
    return (
        f"{len(unjudged)} of {len(trial.split.test)} test flights have no labels ({shown}): "
        "scored, their alarms in the run's events.csv, but in no metric"
    )


def log_trial(
    trial: Trial,
    tracker: Tracker,
    parent_run_id: str | None = None,
    tags: dict | None = None,
    register: str | None = None,
) -> tuple[str, str]:
    """Log one finished trial as an MLflow run; returns (run_id, model_uri)."""
    cfg = trial.cfg
    name = run_name(cfg, int(trial.metrics["n_params"]))
    with tracker.run(name, parent_run_id, tags) as run_id:
        tracker.log_params(run_id, trial_params(cfg, trial))
        per_fault = trial.per_fault.to_dict("records")
        tracker.log_metrics(run_id, {**trial.metrics, **fault_metrics(per_fault)})
        tracker.log_history(run_id, trial.history)
        tracker.log_dict(run_id, trial.pipeline.rule.to_dict(), "alarm_rule.json")
        split = {
            side: ids.split(",") if ids else [] for side, ids in trial.split.describe().items()
        }
        tracker.log_dict(run_id, split, "split.json")  # whole, however long the params' copy
        if unjudged := unlabelled_test_flights(trial):  # scored, in events.csv; not in a metric
            tracker.set_tags(run_id, {"anomaly.unlabelled_test_flights": ",".join(unjudged)[:5000]})
        if len(trial.per_fault):
            tracker.log_text(run_id, trial.per_fault.to_csv(index=False), "per_fault_type.csv")
        if trial.outcomes:
            rate, window_s = trial.pipeline.sample_rate_hz, cfg.detect.vus_window_s
            table = per_flight_table(trial.results, trial.outcomes, rate, window_s)
            tracker.log_text(run_id, table.to_csv(index=False), "per_flight.csv")
        log_figures(tracker, run_id, trial, name)
        log_lens(tracker, run_id, trial, name)
        if trial.results:
            tracker.log_text(run_id, trial_events(trial).to_csv(index=False), "events.csv")
        model_uri = tracker.log_pipeline(trial.pipeline, model_example(trial))
        if register:
            m = trial.metrics
            what = {
                "model": cfg.model,
                "run_id": run_id,
                "data.content_hash": trial.dataset.content_hash,
                "git_commit": git_commit(),
                "git_dirty": git_dirty(),
                **{k: f"{m[k]:.4g}" for k in REGISTRY_METRICS if k in m},
            }
            version, before = tracker.register(model_uri, register, what)
            tracker.set_tags(run_id, {"registered_model": f"{register}/{version}"})
            if before is not None and before != version:
                was = tracker.version_tags(register, before)
                log.warning(
                    "models:/%s@champion moved from version %s (%s, VUS-PR %s) to version %s "
                    "(%s, VUS-PR %s); set it back with the MLflow client if that is not wanted",
                    *(register, before, was.get("model", "?"), was.get("vus_pr", "?")),
                    *(version, cfg.model, what.get("vus_pr", "?")),
                )
    tracker.terminate(run_id)
    return run_id, model_uri
