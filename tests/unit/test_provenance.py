"""What a run records of the code and the model it ran: the commit alone reruns it only when
git_dirty is false, and the logged model's example is one the model accepts."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from anomaly.track import tracker
from anomaly.track.trials import model_example


@pytest.fixture
def repo(tmp_path, monkeypatch):
    package = tmp_path / "anomaly"
    package.mkdir()
    (package / "model.py").write_text("x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=tmp_path, check=True)
    monkeypatch.setattr(tracker, "PACKAGE_DIR", package)
    return tmp_path


def test_a_new_module_in_the_package_is_dirty_a_users_file_beside_it_is_not(repo):
    assert tracker.git_dirty() == "false"
    (repo / "my_flight.csv").write_text("time,a\n")  # a user's log beside the code
    assert tracker.git_dirty() == "false"
    (repo / "anomaly" / "new_model.py").write_text("y = 2\n")  # ran, but not in the commit
    assert tracker.git_dirty() == "true"


def test_a_changed_tracked_file_is_dirty(repo):
    (repo / "anomaly" / "model.py").write_text("x = 2\n")
    assert tracker.git_dirty() == "true"


def _flight(rows: int, rate: float = 20.0):
    return SimpleNamespace(
        n_rows=rows, values=np.ones((rows, 2)), time=np.arange(rows) / rate, sample_rate_hz=rate
    )


def _example(test, train, time_col=None):
    split = SimpleNamespace(test=test, validation=[], train=train)
    pipeline = SimpleNamespace(
        window_len=16, channels=["a", "b"], sample_rate_hz=20.0, log_format={"time_col": time_col}
    )
    return model_example(SimpleNamespace(split=split, pipeline=pipeline))


def test_the_models_example_is_a_flight_the_model_accepts():
    # the first test flight shorter than a window, the next at another rate: the model would
    # refuse either as its example, and training would fail after its metrics were logged
    example = _example([_flight(10), _flight(40, rate=5.0), _flight(50)], [_flight(90)])
    assert list(example.columns) == ["time", "a", "b"] and len(example) == 50
    assert example["time"].iloc[-1] == 49 / 20
    assert list(_example([_flight(50)], [], time_col="ts").columns) == ["ts", "a", "b"]
    # no flight at the model's rate: an example without time, taken at the model's rate
    assert list(_example([_flight(50, rate=5.0)], []).columns) == ["a", "b"]


def test_the_example_is_judged_on_its_first_rows_as_the_model_judges_them():
    # a flight at 20 Hz by its median, whose first rows came at 10 Hz: the model would refuse
    # its example, so the next flight is taken
    mixed = _flight(200)
    mixed.time = np.concatenate([np.arange(64) / 10, 6.4 + np.arange(1, 137) / 20])
    example = _example([mixed, _flight(80)], [])
    assert len(example) == 64 and example["time"].iloc[1] == 1 / 20
