"""Choosing alarm settings by cross-validation: every setting judged on held-out flights, and one
ranking for several models."""

import numpy as np
import pandas as pd
import pytest

from anomaly.data.schema import Flight
from anomaly.study.tuning import FoldResiduals, judge_rules, rank_models

RATE = 10.0


def flight(name: str, onset: int | None, shift: float, rng: np.random.Generator):
    """A 1-channel flight of 600 rows whose residual shifts by `shift` from `onset` on."""
    n = 600
    res = rng.normal(0.0, 1.0, (n, 1))
    labels = np.zeros(n, np.int8)
    if onset is not None:
        res[onset:] += shift
        labels[onset:] = 1
    f = Flight(
        name,
        np.arange(n) / RATE,
        np.zeros((n, 1), np.float32),
        ["a"],
        labels,
        "none" if onset is None else "offset",
    )
    return f, res, np.ones(n, bool), None


def test_judge_rules_ranks_the_setting_that_finds_the_faults_first():
    rng = np.random.default_rng(0)
    validation = [(rng.normal(0.0, 1.0, (3000, 1)), np.ones(3000, bool)) for _ in range(4)]
    held = [flight(f"f{i}", 300, 3.0, rng) for i in range(4)]
    held += [flight(f"n{i}", None, 0.0, rng) for i in range(4)]
    fold = FoldResiduals(["a"], RATE, validation, held)
    # a decision level the shift never reaches misses every fault
    grid = {"drift": [1.0], "threshold": ["fa_per_hour:0.5", "fixed:1e9"]}
    table = judge_rules([fold], grid)
    assert list(table["threshold"]) == ["fa_per_hour:0.5", "fixed:1e9"]
    best, never = table.iloc[0], table.iloc[1]
    assert best["flight_recall"] == 1.0 and best["flight_precision"] == 1.0
    assert never["flight_recall"] == 0.0
    assert best["outcomes"] == "TTTT...."


def test_judge_rules_tests_magnitudes_one_sided_as_the_trial_does():
    # a residual that falls is a fault only if the residual is signed: a smaller error over a
    # window is not anomalous, whatever `sides` the grid asks for (study.trial.alarm_rule)
    rng = np.random.default_rng(1)
    validation = [(rng.normal(0.0, 1.0, (3000, 1)), np.ones(3000, bool)) for _ in range(4)]
    held = [flight(f"f{i}", 300, -3.0, rng) for i in range(4)]
    grid = {"drift": [1.0], "sides": ["two"]}
    signed = judge_rules([FoldResiduals(["a"], RATE, validation, held)], grid)
    magnitude = judge_rules([FoldResiduals(["a"], RATE, validation, held, signed=False)], grid)
    assert signed["outcomes"][0] == "TTTT" and magnitude["outcomes"][0] == "nnnn"


def f1_table(f1s, alarms=(0.0, 0.0, 0.0)):
    return pd.DataFrame(
        {
            "drift": [1.0, 2.0, 3.0],
            "smooth_s": [[0.0], [0.0], [0.0]],
            "flight_f1": f1s,
            "flight_precision": f1s,
            "flight_recall": f1s,
            "false_alarms_per_hour": list(alarms),
        }
    )


KEYS = ["drift", "smooth_s"]


def test_rank_models_orders_by_mean_f1_then_the_worse_model():
    # equal means from different pairs (2/11 + 8/11 and 4/11 + 6/11 differ in the last bit)
    lstm, transformer = f1_table([2 / 11, 4 / 11, 0.9]), f1_table([8 / 11, 6 / 11, 0.0])
    ranked = rank_models({"lstm": lstm, "transformer": transformer}, KEYS)
    assert list(ranked["drift"]) == [2.0, 1.0, 3.0]  # the worse model's F1 breaks the tie
    assert ranked["smooth_s"][0] == [0.0] and "transformer_flight_precision" in ranked
    assert list(ranked["worst_flight_f1"]) == pytest.approx([4 / 11, 2 / 11, 0.0])
    # then fewer false alarms; the order of the models does not matter
    a, b = f1_table([0.5, 0.5, 0.1], (3.0, 1.0, 0.0)), f1_table([0.5, 0.5, 0.1])
    for tables in ({"a": a, "b": b}, {"b": b, "a": a}):
        assert list(rank_models(tables, KEYS)["drift"]) == [2.0, 1.0, 3.0]


def test_rank_models_puts_a_setting_without_f1_last_and_refuses_unequal_grids():
    ranked = rank_models({"a": f1_table([0.9, 0.5, 0.4]), "b": f1_table([np.nan, 0.5, 0.4])}, KEYS)
    assert list(ranked["drift"]) == [2.0, 3.0, 1.0]
    # the same settings read as ints in one table and floats in the other are the same
    as_ints = f1_table([0.9, 0.5, 0.4]).assign(drift=[1, 2, 3], smooth_s=[[0], [0], [0]])
    assert len(rank_models({"a": as_ints, "b": f1_table([0.9, 0.5, 0.4])}, KEYS)) == 3
    with pytest.raises(ValueError, match="same rule settings"):
        rank_models({"a": f1_table([0.9, 0.5, 0.4]), "b": f1_table([0.9, 0.5, 0.4])[:2]}, KEYS)
