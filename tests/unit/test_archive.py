"""A sweep archive of other flights is never used, and a file that is not an
archive stops the sweep before any cell runs (the round trip itself: tests/smoke/test_sweep.py)."""

from __future__ import annotations

import gzip
import json
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


CELL = {"key": "k", "tags": {"anomaly.cell": "k"}, "params": {}, "metrics": {}, "history": {},
        "per_flight": "flight_id,vus_pr\n"}  # fmt: skip
HEADER = {"format": FORMAT, "version": VERSION, "grid": "g1", "data_hash": "d1", "cells": 1}


def test_an_archive_of_other_flights_is_refused(tmp_path):
    archive = read_archive(_write(tmp_path / "cells.jsonl.gz", HEADER, CELL))
    assert archive.header["grid"] == "g1" and [c["key"] for c in archive.cells] == ["k"]
    # a tracker is never touched: None would fail on the first run it opened
    with pytest.raises(UserError, match="cells.jsonl.gz: cells of other flights"):
        import_archive(None, "parent", archive, "d2", {"k"})
    with pytest.raises(UserError, match="data d1; this sweep: data d2"):
        import_archive(None, "parent", archive, "d2", {"k"})
    # of another grid on the same flights: only cells whose keys the sweep wants are logged
    assert import_archive(None, "parent", archive, "d1", {"other"}) == 0


@pytest.mark.parametrize(
    "lines, message",
    [
        ([["a list"]], "not a sweep archive"),
        ([HEADER, "text"], "line 2: not a cell object"),
        ([HEADER, {**CELL, "key": None}], "line 2: field 'key' missing"),
        ([HEADER, {k: v for k, v in CELL.items() if k != "per_flight"}], "field 'per_flight'"),
        ([HEADER, {**CELL, "key": "other"}], "line 2: key other differs from its anomaly.cell"),
        ([{**HEADER, "cells": 2}, CELL], "announces 2 cells, the file holds 1"),
    ],
)
def test_a_damaged_archive_is_named_with_its_line(tmp_path, lines, message):
    path = _write(tmp_path / "cells.jsonl.gz", *lines)
    with pytest.raises(UserError, match=message):
        read_archive(path)


def test_an_archive_of_undecodable_bytes_is_a_user_error(tmp_path):
    path = tmp_path / "bytes.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\xff\xfe\x00garbage\n")
    with pytest.raises(UserError, match="bytes.jsonl.gz: not a readable sweep archive"):
        read_archive(path)


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
