"""The equal-budget search: the same space for every architecture, never a test flight."""

from types import SimpleNamespace

import optuna
import pytest

from anomaly.data.datasets import Dataset
from anomaly.errors import UserError
from anomaly.study.search import suggest, validation_halves


def drawn(model: str, n: int = 10) -> list[dict]:
    """The first `n` points a seeded TPE search draws for `model` (objective: constant)."""
    points = []

    def objective(trial: optuna.Trial) -> float:
        points.append(suggest(trial, model))
        return 0.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=n)
    return points


def test_lstm_and_transformer_are_tried_on_the_same_candidates():
    lstm, transformer = drawn("lstm"), drawn("transformer")
    for a, b in zip(lstm, transformer, strict=True):
        assert a["model_params"]["hidden_size"] == b["model_params"]["d_model"]
        assert a["model_params"]["num_layers"] == b["model_params"]["n_layers"]
        assert a["model_params"]["dropout"] == b["model_params"]["dropout"]
        assert (a["train"], a["window"]) == (b["train"], b["window"])
        assert b["model_params"]["dim_feedforward"] == 2 * b["model_params"]["d_model"]


def test_the_linear_rnn_searches_width_rate_warmup_and_window_only():
    for point in drawn("linear_rnn", 3):
        assert set(point["model_params"]) == {"state_size"}
        assert set(point["train"]) == {"lr", "warmup_steps"}
        assert 3e-4 <= point["train"]["lr"] <= 1e-2
        assert point["window"]["window_len"] in (16, 32, 64)


def test_a_model_without_a_search_space_is_named():
    with pytest.raises(UserError, match="no search space for model 'pca'"):
        drawn("pca", 1)


def test_validation_flights_split_in_two_and_test_flights_never_enter():
    split = {"t1": "train", "t2": "train", "v1": "validation", "v2": "validation",
             "v3": "validation", "x1": "test", "x2": "test"}  # fmt: skip
    flights = [SimpleNamespace(flight_id=f) for f in split]
    halves = validation_halves(Dataset("d", "src", flights, fixed_split=split))
    assert halves.fixed_split == {"t1": "train", "t2": "train", "v1": "validation",
                                  "v2": "test", "v3": "validation"}  # fmt: skip
    assert [f.flight_id for f in halves.flights] == ["t1", "t2", "v1", "v2", "v3"]


def test_a_search_needs_two_validation_flights():
    split = {"t1": "train", "v1": "validation", "x1": "test"}
    flights = [SimpleNamespace(flight_id=f) for f in split]
    with pytest.raises(UserError, match="validation flights in its split.csv; a search needs"):
        validation_halves(Dataset("d", "src", flights, fixed_split=split))
