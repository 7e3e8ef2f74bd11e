"""Choosing detection settings without test flights: cross-validation over training and
validation flights, grouped by recording.

Each fold of the pool is held out once: a detector is trained on the other folds but one, its
alarm rule is fitted on the normal rows of that one (the validation fold), and the held-out
fold is scored. This is `run_trial`'s own flow, so what is chosen here is what the tool then runs.
Residuals do not depend on the alarm rule, so they are computed once per fold and every rule
setting is then judged on them in seconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anomaly.config import RunConfig
from anomaly.data.datasets import Dataset
from anomaly.data.schema import Flight
from anomaly.data.splits import recording_folds
from anomaly.detect.alarms import AlarmRule, tested_sides
from anomaly.evaluate.protocol import FlightResult, evaluate_flights
from anomaly.study.trial import run_trial


@dataclass
class FoldResiduals:
    """One fold: the residuals of its validation flights' normal rows and of its held-out
    flights, from a detector that saw neither."""

    channels: list[str]
    rate_hz: float
    validation: list[tuple[np.ndarray, np.ndarray]]
    held_out: list[tuple[Flight, np.ndarray, np.ndarray, np.ndarray | None]]  # + frozen rows
    signed: bool = True  # False: the residuals are magnitudes, tested one-sided as run_trial does

    def rule(self, settings: dict) -> AlarmRule:
        """The rule `settings` give, as `run_trial` would build it for this detector, fitted."""
        settings = {**settings, "sides": tested_sides(settings.get("sides", "two"), self.signed)}
        return AlarmRule(self.channels, self.rate_hz, **settings).fit(self.validation)


def fold_residuals(cfg: RunConfig, ds: Dataset, k: int = 4, seed: int = 0) -> list[FoldResiduals]:
    """Train one detector per fold (test flights of a fixed split are never loaded into it)."""
    folds = recording_folds(ds, k, seed)
    out = []
    for held in range(k):
        val = (held + 1) % k
        side = {
            f: "test" if i == held else "validation" if i == val else "train"
            for f, i in folds.items()
        }
        fold_ds = dataclasses.replace(
            ds, flights=[f for f in ds.flights if f.flight_id in side], fixed_split=side
        )
        trial = run_trial(cfg, fold_ds)
        p = trial.pipeline
        validation = [p.residuals(f.normal_prefix()) for f in trial.split.validation]
        held_out = [(f, *p.residuals(f.values), forced(p, f.values)) for f in trial.split.test]
        out.append(
            FoldResiduals(
                p.residual_channels,
                p.sample_rate_hz,
                validation,
                held_out,
                p.detector.signed_residuals,
            )
        )
    return out


def forced(pipeline, values) -> np.ndarray | None:
    """The frozen check's rows: it does not depend on the rule's settings, so it is run once."""
    if pipeline.frozen is None:
        return None
    return pipeline.frozen.stream().feed(values).any(axis=1)


JUDGED = (
    "flight_f1",
    "flight_precision",
    "flight_recall",
    "detection_delay_seconds",
    "false_alarms_per_hour",
    "auc_roc",
)


def judge_rules(
    folds: list[FoldResiduals], grid: dict[str, list], timeout_s: float = 5.0
) -> pd.DataFrame:
    """Every combination of alarm-rule settings in `grid` (AlarmRule keywords), judged with the
    per-flight protocol over all held-out flights; one row per combination, best first."""
    rows = []
    keys = list(grid)
    for combo in itertools.product(*grid.values()):
        settings = dict(zip(keys, combo))
        m, outcomes, _ = evaluate_flights(_judged(folds, settings), folds[0].rate_hz, timeout_s)
        rows.append({**settings, **{k: m[k] for k in JUDGED}, "outcomes": outcome_string(outcomes)})
    df = pd.DataFrame(rows)
    order = ["flight_f1", "detection_delay_seconds"]
    return df.sort_values(order, ascending=[False, True]).reset_index(drop=True)


def rank_models(tables: dict[str, pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    """One ranking of rule settings for several models at once, by their mean flight F1, then
    the worse model's F1, then fewer false alarms: a default serves every model, so it is chosen
    on all of them rather than on the one that happened to be tuned. A setting with no F1 for
    some model (no labelled flight) ranks last."""
    cols = ["flight_f1", "flight_precision", "flight_recall", "false_alarms_per_hour"]
    merged = None
    for model, table in tables.items():
        part = table[keys + cols].rename(columns={c: f"{model}_{c}" for c in cols})
        part["setting"] = [json.dumps(_plain(list(r)), default=str) for r in table[keys].to_numpy()]
        if merged is None:
            merged = part
            continue
        merged = merged.merge(part.drop(columns=keys), on="setting", validate="one_to_one")
    if any(len(merged) != len(t) for t in tables.values()):
        raise ValueError("the models' tables do not hold the same rule settings")
    f1 = merged[[f"{m}_flight_f1" for m in tables]]
    alarms = merged[[f"{m}_false_alarms_per_hour" for m in tables]]
    merged = merged.drop(columns="setting").assign(
        # rounded: equal means of different F1 pairs must tie, not differ in the last bit
        mean_flight_f1=f1.mean(axis=1, skipna=False).round(9),
        worst_flight_f1=f1.min(axis=1, skipna=False).round(9),
        mean_false_alarms_per_hour=alarms.mean(axis=1),
    )
    order = ["mean_flight_f1", "worst_flight_f1", "mean_false_alarms_per_hour"]
    ranked = merged.sort_values(order, ascending=[False, False, True], na_position="last")
    return ranked.reset_index(drop=True)


def _plain(value):
    """Every number as a float, so that 1 and 1.0 name the same setting."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (numbers.Real, np.number)) and not isinstance(value, bool):
        return float(value)
    return value


def outcome_string(outcomes) -> str:
    """T detected, p alarm before onset (or in a fault-free flight), n missed, . no alarm."""
    return "".join({"TP": "T", "FP": "p", "FN": "n", "TN": "."}[o.outcome] for o in outcomes)


def _judged(folds: list[FoldResiduals], settings: dict) -> list[FlightResult]:
    """Every held-out flight of every fold under one rule setting, fitted on its fold."""
    results = []
    for fold in folds:
        rule = fold.rule(settings)
        for flight, res, fresh, frozen in fold.held_out:
            a = rule.stream().feed(res, fresh, frozen)
            results.append(FlightResult(flight, a.statistic, a.contributions, a.flags))
    return results


def per_fault(folds: list[FoldResiduals], settings: dict, timeout_s: float = 5.0) -> pd.DataFrame:
    """Detected / early alarm / missed per fault type for one rule setting."""
    _, outcomes, _ = evaluate_flights(_judged(folds, settings), folds[0].rate_hz, timeout_s)
    table = pd.DataFrame([{"fault_type": o.fault_type, "outcome": o.outcome} for o in outcomes])
    return table.groupby("fault_type")["outcome"].value_counts().unstack(fill_value=0)
