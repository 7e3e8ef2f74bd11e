"""Shared fixtures: tiny logs written by the tests themselves, and one small synthetic dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("PYTHONHASHSEED", "0")


def write_log(path: Path, n: int = 200, channels: int = 3, seed: int = 0, **kw) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(n, channels)), columns=[f"ch{i}" for i in range(channels)]
    )
    frame.insert(0, "time", np.arange(n) / 20.0)
    frame.to_csv(path, index=False, **kw)
    return path


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return write_log(tmp_path / "good.csv")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from anomaly.data.synthetic import SynthConfig, write_dataset

    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, SynthConfig(n_flights=12, seed=3, min_duration_s=40, max_duration_s=70))
    return out


@pytest.fixture(scope="session")
def easy_dir(tmp_path_factory) -> Path:
    """Flights with faults a detector should find: engine loss, stuck aileron, spike bursts."""
    from anomaly.data.synthetic import SynthConfig, write_dataset

    out = tmp_path_factory.mktemp("easy")
    cfg = SynthConfig(
        n_flights=12, seed=11, min_duration_s=50, max_duration_s=80, fault_free_share=0.2,
        fault_types=("engine", "aileron_stuck", "spikes"),
    )  # fmt: skip
    write_dataset(out, cfg)
    return out


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """One embedded MLflow store for the session (creating a SQLite store costs seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old


def quick_config(data: str, model: str = "lstm", **over):
    from anomaly.config import build_config

    base = {
        "data": {"data": data},
        "model": model,
        "train": {"max_epochs": 2, "patience": 2},
        "window": {"window_len": 16, "stride": 8, "score_stride": 8},
    }
    if model == "lstm":
        base["model_params"] = {"hidden_size": 16, "latent_size": 8}
    if model == "transformer":
        base["model_params"] = {"d_model": 16, "dim_feedforward": 32, "n_layers": 1}
    from anomaly.config import merge

    return build_config(merge(base, over))
