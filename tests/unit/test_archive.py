"""A sweep archive that does not belong to the sweep is never used, and a file that is not an
archive stops the sweep before any cell runs (the round trip itself: tests/smoke/test_sweep.py)."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from anomaly.cli import main
from anomaly.errors import UserError
from anomaly.study.archive import FORMAT, VERSION, import_archive, read_archive

REPO = Path(__file__).resolve().parents[2]


def _write(path: Path, *items: dict) -> Path:
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(item) + "\n" for item in items)
    return path


def test_an_archive_of_another_grid_or_other_flights_is_not_used(tmp_path, caplog):
    header = {"format": FORMAT, "version": VERSION, "grid": "g1", "data_hash": "d1", "cells": 1}
    archive = read_archive(_write(tmp_path / "cells.jsonl.gz", header, {"key": "k"}))
    assert archive.header["grid"] == "g1" and [c["key"] for c in archive.cells] == ["k"]
    with caplog.at_level(logging.WARNING):
        # a tracker is never touched: None would fail on the first run it opened
        assert import_archive(None, "parent", archive, "g2", "d1", {"k"}) == 0
        assert import_archive(None, "parent", archive, "g1", "d2", {"k"}) == 0
    assert caplog.text.count("none of them used") == 2


def test_a_file_that_is_not_an_archive_is_named(tmp_path):
    plain = tmp_path / "plain.gz"
    plain.write_text("flight,time\n")
    with pytest.raises(UserError, match="plain.gz: not a readable sweep archive"):
        read_archive(plain)
    other = _write(tmp_path / "other.jsonl.gz", {"format": "something else"})
    with pytest.raises(UserError, match="other.jsonl.gz: not a sweep archive"):
        read_archive(other)
    newer = _write(tmp_path / "newer.jsonl.gz", {"format": FORMAT, "version": VERSION + 1})
    with pytest.raises(UserError, match="newer.jsonl.gz: archive version"):
        read_archive(newer)


def test_sweep_with_a_missing_archive_exits_2_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = REPO / "experiments" / "smoke.yaml"
    assert main(["sweep", str(spec), "--resume-from", "gone.jsonl.gz"]) == 2
    assert "gone.jsonl.gz: no such sweep archive" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()
