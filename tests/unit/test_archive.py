"""A sweep archive of other flights is never used, and a file that is not an
archive stops the sweep before any cell runs (the round trip itself: tests/smoke/test_sweep.py)."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

import pytest

from anomaly.cli import main
from anomaly.data.datasets import Dataset
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


def _data(content: str = "d1", tables: str = "t1", split: dict | None = None) -> Dataset:
    """The dataset a sweep resumes on: what import_archive reads of it (a split.csv's split,
    by default one that names no flight)."""
    return Dataset("study", "data/study", [], split or {}, content, tables_hash=tables)


class _Store:
    """The tracker calls import_archive makes, recorded."""

    def __init__(self):
        self.runs = {}

    @contextlib.contextmanager
    def run(self, name, parent_id, tags):
        self.runs[name] = {"parent": parent_id, "tags": tags}
        yield name

    def log_params(self, rid, params):
        self.runs[rid]["params"] = params

    def log_metrics(self, rid, metrics):
        self.runs[rid]["metrics"] = metrics

    def log_history(self, rid, rows):
        self.runs[rid]["history"] = rows

    def log_text(self, rid, text, name):
        self.runs[rid][name] = text

    def log_dict(self, rid, data, name):
        self.runs[rid][name] = data


def test_an_archive_of_other_flights_is_refused(tmp_path):
    archive = read_archive(_write(tmp_path / "cells.jsonl.gz", HEADER, CELL))
    assert archive.header["grid"] == "g1" and [c["key"] for c in archive.cells] == ["k"]
    # a tracker is never touched: None would fail on the first run it opened
    with pytest.raises(UserError, match="cells.jsonl.gz: cells of other flights .data d1; this"):
        import_archive(None, "parent", archive, _data("d2"), {"k"})


def test_an_archive_of_an_earlier_grid_fills_the_cells_whose_keys_remain(tmp_path):
    # the grid changed (one arm refrozen): the archive's grid is g1, the sweep's another; the
    # cells whose keys the sweep still wants are logged, the rest left to run
    other = {**CELL, "key": "gone", "tags": {"anomaly.cell": "gone"}}
    path = _write(tmp_path / "cells.jsonl.gz", {**HEADER, "cells": 2}, CELL, other)
    store = _Store()
    assert import_archive(store, "parent", read_archive(path), _data(), {"k", "new"}) == 1
    (run,) = store.runs.values()
    assert run["parent"] == "parent" and run["tags"]["anomaly.cell"] == "k"
    assert run["tags"]["anomaly.source"].startswith("archive cells.jsonl.gz")
    assert run["per_flight.csv"] == CELL["per_flight"]


def test_an_archive_of_another_split_is_refused(tmp_path):
    # the logs are the same (their hash matches) but split.csv moved flights between sides
    split = {"a": "train", "b": "validation", "c": "test", "d": "test"}
    cell = {**CELL, "params": {"train_flights": "a", "validation_flights": "b",
                               "test_flights": "c,d"}}  # fmt: skip
    path = _write(tmp_path / "cells.jsonl.gz", HEADER, cell)
    assert import_archive(_Store(), "p", read_archive(path), _data(split=split), {"k"}) == 1
    # a flight the cell validated on is now tested: refused before any cell is logged, even
    # one of the same split that comes first
    first = {**cell, "key": "a", "tags": {"anomaly.cell": "a"},
             "params": {**cell["params"], "validation_flights": "a"}}  # fmt: skip
    two = _write(tmp_path / "two.jsonl.gz", {**HEADER, "cells": 2}, first, cell)
    moved = {**split, "b": "test"}
    store = _Store()
    with pytest.raises(UserError, match="trained or validated on b, a test flight of this split"):
        import_archive(store, "p", read_archive(two), _data(split=moved), {"a", "k"})
    assert store.runs == {}
    # a list cut to fit MLflow's limit on a param cannot be judged: the tables' hash does that
    cut = {**cell, "params": {**cell["params"], "test_flights": "c,d,e... (cut: 7000 characters)"}}
    long = _write(tmp_path / "long.jsonl.gz", HEADER, cut)
    assert import_archive(_Store(), "p", read_archive(long), _data(split=split), {"k"}) == 1
    fewer = {**split, "d": "train"}  # a flight the cell was tested on is now trained on
    with pytest.raises(UserError, match="tested on d, which this split does not test"):
        import_archive(None, "p", read_archive(path), _data(split=fewer), {"k"})
    # an archive that names its tables is refused on another manifest or split at once
    named = _write(tmp_path / "named.jsonl.gz", {**HEADER, "tables_hash": "t1"}, cell)
    with pytest.raises(UserError, match="another split.csv or manifest.csv .tables t1; this"):
        import_archive(None, "p", read_archive(named), _data(tables="t2", split=split), {"k"})


def test_an_archive_of_plain_logs_split_by_another_seed_is_refused(synth_dir, tmp_path):
    # plain logs are split by one fixed seed now; cells of an archive from when each training
    # seed drew its own split tested other flights
    from anomaly.data.datasets import load_dataset
    from anomaly.data.splits import split_flights

    ds = load_dataset(str(synth_dir / "flights"))
    split = split_flights(ds, 0)
    ids = lambda flights: ",".join(f.flight_id for f in flights)  # noqa: E731
    params = {"train_flights": ids(split.train), "validation_flights": ids(split.validation)}
    header = {**HEADER, "data_hash": ds.content_hash, "tables_hash": ds.tables_hash}
    same = {**CELL, "params": {**params, "test_flights": ids(split.test)}}
    path = _write(tmp_path / "same.jsonl.gz", header, same)
    assert import_archive(_Store(), "p", read_archive(path), ds, {"k"}) == 1
    other = {**CELL, "params": {"test_flights": ids(split.train[:1])}}
    path = _write(tmp_path / "other.jsonl.gz", header, other)
    with pytest.raises(UserError, match="which this split does not test"):
        import_archive(_Store(), "p", read_archive(path), ds, {"k"})


def test_an_archive_of_another_study_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path / "cells.jsonl.gz", {**HEADER, "sweep": "claim4"}, CELL)
    with pytest.raises(UserError, match="cells of the study 'claim4', not 'smoke'"):
        read_archive(path, "smoke")
    spec = REPO / "experiments" / "smoke.yaml"
    assert main(["sweep", str(spec), "--resume-from", str(path)]) == 2
    assert "cells of the study 'claim4', not 'smoke'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "mlflow.db").exists()


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
