"""Heavy libraries are imported only where they are needed: the CLI starts fast, and scoring
never imports Lightning (nor MLflow for a local model folder)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from anomaly.study.trial import run_trial
from tests.helpers import quick_config

HEAVY = ("torch", "pytorch_lightning", "lightning", "mlflow", "sklearn", "pandas")


def _heavy_modules_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_building_the_parser_imports_no_heavy_library():
    assert _heavy_modules_after("import anomaly.cli\nanomaly.cli.build_parser()") == []


@pytest.mark.slow
def test_scoring_with_a_local_folder_needs_neither_lightning_nor_mlflow(easy_dir, tmp_path):
    folder = run_trial(quick_config(str(easy_dir), "lstm")).pipeline.save(tmp_path / "model")
    log = sorted((easy_dir / "flights").glob("*.csv"))[0]
    args = ["score", str(log), "--model", str(folder), "--out", str(tmp_path / "out"), "--quiet"]
    loaded = _heavy_modules_after(f"import anomaly.cli\nassert anomaly.cli.main({args!r}) == 0")
    assert "torch" in loaded  # the network itself runs
    assert not {"pytorch_lightning", "lightning", "mlflow", "sklearn"} & set(loaded)


@pytest.mark.slow
def test_scoring_a_runs_uri_of_a_local_store_does_not_import_mlflow(
    easy_dir, tmp_path, mlflow_store, capsys
):
    from anomaly.cli import main

    train = ["train", "--data", str(easy_dir), "--model", "pca", "--experiment", "startup"]
    assert main(train) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    assert uri.startswith("runs:/")
    log = sorted((easy_dir / "flights").glob("*.csv"))[0]
    args = ["score", str(log), "--model", uri, "--out", str(tmp_path / "out"), "--quiet"]
    fresh_cache = f"import os\nos.environ['ANOMALY_CACHE'] = {str(tmp_path / 'cache')!r}"
    loaded = _heavy_modules_after(
        f"{fresh_cache}\nimport anomaly.cli\nassert anomaly.cli.main({args!r}) == 0"
    )
    assert "mlflow" not in loaded
    assert not (tmp_path / "cache").exists()  # read in place, not downloaded


def test_the_model_cache_tells_stores_and_registered_versions_apart(tmp_path, monkeypatch):
    # two folders with their own `sqlite:///mlflow.db` are two stores; a registered version
    # deleted and registered again under the same number is another model
    import sqlite3

    from anomaly.track.model_cache import cache_path

    monkeypatch.setenv("ANOMALY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    run_uri = "runs:/" + "a" * 32 + "/model"
    keys = []
    for name in ("p1", "p2"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        keys.append(cache_path(run_uri))
    assert keys[0] != keys[1]
    db = tmp_path / "p2" / "mlflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE model_versions (name, version, creation_time, run_id)")
    assert cache_path("models:/fl/1") is None  # not registered: MLflow says so
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO model_versions VALUES ('fl', 1, 100, 'r1')")
    first = cache_path("models:/fl/1")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE model_versions SET creation_time = 200, run_id = 'r2'")
    assert first is not None and cache_path("models:/fl/1") not in (None, first)


def test_a_relative_sqlite_store_gets_an_absolute_artifact_folder(tmp_path, monkeypatch):
    from anomaly.track.tracker import artifact_location

    monkeypatch.chdir(tmp_path)
    assert artifact_location("sqlite:///mlflow.db") == (tmp_path / "mlartifacts").as_uri()
