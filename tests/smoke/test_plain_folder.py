"""Training on labelled logs without a manifest, end to end: their fault type is unknown, and
its per-fault metrics must still be names MLflow takes."""

from __future__ import annotations

import shutil

import mlflow
import pytest

from anomaly.cli import main
from anomaly.data.synthetic import SynthConfig, write_dataset


@pytest.mark.slow
def test_train_on_a_plain_folder_of_labelled_logs(tmp_path, mlflow_store, capsys):
    dataset = tmp_path / "dataset"
    write_dataset(dataset, SynthConfig(n_flights=6, seed=5, min_duration_s=40, max_duration_s=50))
    plain = tmp_path / "plain"
    plain.mkdir()
    for log in (dataset / "flights").glob("*.csv"):
        shutil.copy(log, plain / log.name)
    assert not (plain / "manifest.csv").exists()
    argv = ["train", "--data", str(plain), "--model", "pca", "--experiment", "x"]
    assert main(argv) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    assert uri.startswith("runs:/") and uri.endswith("/model")
    metrics = mlflow.MlflowClient().get_run(uri.split("/")[1]).data.metrics
    assert "fault/unknown/f1_point" in metrics
