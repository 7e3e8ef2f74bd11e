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
