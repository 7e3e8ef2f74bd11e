"""Equal tuning budget: the same Optuna search for every architecture of a study.

A fixed number of trials over learning rate, warm-up, width, depth, dropout and window, at one
training size, each trial a `run_trial` whose objective is VUS-PR on validation flights: the
spec's validation flights are split in two, one half fitting early stopping and the alarm rule,
the other half (with its faults) scored. Test flights are never loaded into a trial.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from anomaly.config import build_config, merge
from anomaly.data.datasets import Dataset
from anomaly.errors import UserError
from anomaly.study.spec import SweepSpec
from anomaly.study.trial import run_trial

log = logging.getLogger(__name__)
WIDTHS = {"lstm": "hidden_size", "transformer": "d_model", "linear_rnn": "state_size"}
DEPTHS = {"lstm": "num_layers", "transformer": "n_layers"}


def suggest(trial: optuna.Trial, model: str) -> dict:
    """One point of the search space, as config overrides."""
    width = WIDTHS.get(model)
    if width is None:
        raise UserError(f"no search space for model {model!r}; choose from {sorted(WIDTHS)}")
    params = {width: trial.suggest_categorical("width", [16, 32, 64])}
    if model in DEPTHS:
        params[DEPTHS[model]] = trial.suggest_int("depth", 1, 3)
        params["dropout"] = trial.suggest_float("dropout", 0.0, 0.3)
    if model == "transformer":
        params["dim_feedforward"] = 2 * params["d_model"]
    return {
        "model_params": params,
        "train": {
            "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
            "warmup_steps": trial.suggest_categorical("warmup_steps", [0, 100, 500]),
        },
        "window": {"window_len": trial.suggest_categorical("window_len", [16, 32, 64])},
    }


def validation_halves(ds: Dataset) -> Dataset:
    """The spec's validation flights become the test side (every other one) and the validation
    side (the rest); test flights are dropped."""
    side = {}
    val = [f for f in ds.flights if (ds.fixed_split or {}).get(f.flight_id) == "validation"]
    if len(val) < 2:
        raise UserError(
            f"dataset '{ds.name}' has {len(val)} validation flights in its split.csv; a search "
            "needs at least 2, named there (its trials are judged on them, never on test "
            "flights; a folder without split.csv names none)"
        )
    for i, f in enumerate(val):
        side[f.flight_id] = "test" if i % 2 else "validation"
    for f in ds.flights:
        if (ds.fixed_split or {}).get(f.flight_id) == "train":
            side[f.flight_id] = "train"
    flights = [f for f in ds.flights if f.flight_id in side]
    return dataclasses.replace(ds, flights=flights, fixed_split=side)


def searched_data(ds: Dataset, size: int) -> Dataset:
    """What a search's trials train and are judged on (`validation_halves`), refused when
    `size` is more training flights than it holds: every trial would fail on it, and a best
    would still be printed."""
    halves = validation_halves(ds)
    pool = sum(side == "train" for side in halves.fixed_split.values())
    if size > pool:
        raise UserError(f"--size {size}: the training pool has {pool} flights")
    return halves


def spec_arm(spec: SweepSpec, name: str):
    """The spec's arm of that name; checked before any data is prepared or generated."""
    arm = next((a for a in spec.arms if a.name == name), None)
    if arm is None:
        names = ", ".join(a.name for a in spec.arms)
        raise UserError(f"no arm {name!r} in {spec.source} (its arms: {names})")
    if arm.model not in WIDTHS:
        raise UserError(
            f"{spec.source}: arm {name!r} is model {arm.model!r}, which has no search space; "
            f"searched models: {', '.join(sorted(WIDTHS))}"
        )
    return arm


@dataclass
class SearchResult:
    best: dict  # config overrides of the best trial
    best_value: float
    trials: list[dict]  # per trial: number, params, value, state


# what a trial's run records beside its validation score, named as a training run names them
TRIAL_COST = ("n_params", "fit_seconds", "epochs", "hit_max_epochs", "score_us_per_row")


def search(
    spec: SweepSpec,
    ds: Dataset,
    arm_name: str,
    size: int,
    n_trials: int,
    seed: int = 0,
    on_trial: Callable[[dict], None] | None = None,
) -> SearchResult:
    """Run the search for one arm at one training size; `on_trial` sees each finished trial."""
    arm = spec_arm(spec, arm_name)
    halves = searched_data(ds, size)
    records: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        over = suggest(trial, arm.model)
        cell = {"model": arm.model, "seed": seed, "data": {"train_flights": size}}
        cfg = build_config(merge(merge(spec.base, arm.overrides(size)), over), cell)
        cost: dict[str, float] = {}
        try:
            metrics = run_trial(cfg, halves).metrics
            value = metrics.get(spec.primary, float("nan"))
            cost = {k: metrics[k] for k in TRIAL_COST if k in metrics}
        except UserError as exc:  # e.g. a window longer than the flights: a bad point, not a bug
            log.warning("trial %d: %s", trial.number, exc)
            value = float("nan")
        record = {
            "number": trial.number,
            "overrides": over,
            "value": value,
            "config": cfg.flat(),  # the whole config the trial ran, so it can be rerun
            "cost": cost,
        }
        records.append(record)
        if on_trial is not None:
            on_trial(record)
        return value if math.isfinite(value) else -1.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    if not any(math.isfinite(r["value"]) for r in records):
        raise UserError(
            f"no trial of {n_trials} gave a {spec.primary}: each failed (the warnings above say "
            "why) or its validation flights held no fault to score"
        )
    best = records[study.best_trial.number]
    return SearchResult(best["overrides"], best["value"], records)
