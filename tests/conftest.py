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
    frame = pd.DataFrame(rng.normal(size=(n, channels)), columns=[f"ch{i}" for i in range(channels)])
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
