"""Helpers the tests import: tiny logs and quick configs (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.config import RunConfig, build_config, merge


def write_log(path: Path, n: int = 200, channels: int = 3, seed: int = 0, **kw) -> Path:
    """A 20 Hz log of `channels` Gaussian channels with a `time` column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(n, channels)), columns=[f"ch{i}" for i in range(channels)]
    )
    frame.insert(0, "time", np.arange(n) / 20.0)
    frame.to_csv(path, index=False, **kw)
    return path


QUICK_NETWORKS = {
    "lstm": {"hidden_size": 16},
    "transformer": {"d_model": 16, "dim_feedforward": 32, "n_layers": 1},
    "lstm_ae": {"hidden_size": 16, "latent_size": 8},
    "transformer_ae": {"d_model": 16, "dim_feedforward": 32, "n_layers": 1},
}


def quick_config(data: str, model: str = "lstm", **over) -> RunConfig:
    """A config that trains in seconds: 2 epochs, 16-row windows, small networks."""
    base = {
        "data": {"data": data},
        "model": model,
        "train": {"max_epochs": 2, "patience": 2},
        "window": {"window_len": 16, "stride": 8, "score_stride": 8},
    }
    if model in QUICK_NETWORKS:
        base["model_params"] = QUICK_NETWORKS[model]
    return build_config(merge(base, over))


def needs_alfa() -> None:
    """Skip a test that reads the real ALFA flights where they are not on this machine (they
    live outside the repository; CI has them): said, never silent."""
    import pytest

    from anomaly.data.datasets import alfa_dir

    if not (alfa_dir() / "flights").is_dir():
        pytest.skip(f"ALFA flights not found in {alfa_dir()} (set ALFA_DIR)")
