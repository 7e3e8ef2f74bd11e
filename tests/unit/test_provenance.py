"""What a run records of the code it ran: the commit alone reruns it only when git_dirty is
false."""

from __future__ import annotations

import subprocess

import pytest

from anomaly.track import tracker


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
