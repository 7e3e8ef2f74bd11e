"""Shared fixtures: tiny logs written by the tests themselves, and small synthetic datasets."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.helpers import write_log

os.environ.setdefault("PYTHONHASHSEED", "0")
# downloaded models are cached per user; tests keep theirs apart
os.environ["ANOMALY_CACHE"] = tempfile.mkdtemp(prefix="anomaly-cache-")


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
        n_flights=12,
        seed=11,
        min_duration_s=50,
        max_duration_s=80,
        fault_free_share=0.2,
        fault_types=("engine", "aileron_stuck", "spikes"),
    )
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
