"""Training on labelled logs without a manifest, end to end: their fault type is unknown, and
its per-fault metrics must still be names MLflow takes."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import mlflow
import pandas as pd
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


# what a user types first: their own folder, unlabelled, no manifest, a small quick model
QUICK_YAML = """
window: {window_len: 16, stride: 8}
train: {max_epochs: 2, patience: 2}
model_params: {hidden_size: 16}
"""


@pytest.fixture(scope="module")
def my_logs(tmp_path_factory) -> Path:
    dataset = tmp_path_factory.mktemp("dataset")
    write_dataset(dataset, SynthConfig(n_flights=6, seed=5, min_duration_s=40, max_duration_s=50))
    logs = tmp_path_factory.mktemp("my_logs")
    for log in sorted((dataset / "flights").glob("*.csv")):
        pd.read_csv(log).drop(columns=["label"]).to_csv(logs / log.name, index=False)
    return logs


@pytest.fixture(scope="module")
def my_model(my_logs, tmp_path_factory, mlflow_store) -> str:
    config = tmp_path_factory.mktemp("config") / "quick.yaml"
    config.write_text(QUICK_YAML)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        argv = ["train", "--data", str(my_logs), "--model", "lstm", "--config", str(config)]
        assert main([*argv, "--experiment", "my-logs"]) == 0
    uri = printed.getvalue().strip().splitlines()[-1]
    assert uri.startswith("runs:/") and uri.endswith("/model")
    # no label anywhere: the run says so rather than leaving its metrics silently empty
    assert "test flights have no labels" in printed.getvalue()
    tags = mlflow.MlflowClient().get_run(uri.split("/")[1]).data.tags
    assert "flight_precision" in tags["anomaly.missing_metrics"].split(",")
    assert tags["anomaly.unlabelled_test_flights"]
    return uri


@pytest.mark.slow
def test_a_folder_of_unlabelled_logs_goes_through_every_command(my_logs, my_model, tmp_path):
    logs = sorted(my_logs.glob("*.csv"))
    assert not (my_logs / "manifest.csv").exists() and len(logs) == 6
    assert main(["validate", str(my_logs)]) == 0
    out = tmp_path / "scored"
    assert main(["score", "--model", my_model, str(my_logs), "--out", str(out), "--quiet"]) == 0
    for log in logs:
        scored = pd.read_csv(out / f"{log.stem}.scored.csv")
        assert len(scored) == len(pd.read_csv(log)) and {"score", "is_anomaly"} <= set(scored)
    # watch raises the alarms score raised, on the same rows: the log score alarmed on most
    batch = pd.read_csv(out / "events.csv")
    batch["name"] = [Path(f).name for f in batch["file"]]
    busiest = batch["name"].value_counts().index[0]
    events = tmp_path / "events.csv"
    argv = ["watch", str(my_logs / busiest), "--model", my_model, "--once", "--events", str(events)]
    assert main(argv) == 0
    watched, scored = pd.read_csv(events), batch[batch["name"] == busiest]
    assert len(watched) == len(scored) > 0
    assert watched["start"].tolist() == pytest.approx(scored["start"].tolist(), abs=1e-6)
    assert watched["channel"].tolist() == scored["channel"].tolist()
    drawn = tmp_path / "explain"
    argv = ["explain", str(logs[0]), "--model", my_model, "--at", "5", "--out", str(drawn)]
    assert main(argv) == 0
    pngs = list(drawn.iterdir())
    assert len(pngs) == 1 and pngs[0].name.startswith(logs[0].stem)
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# validate reports each file on stdout; score's batch goes on past a refused file and ends with
# exit 1 (README, "Errors and exit codes"); the others stop with exit 2 and one line on stderr
@pytest.mark.slow
@pytest.mark.parametrize(
    "command, code, stream",
    [("validate", 2, "out"), ("train", 2, "err"), ("score", 1, "err"), ("watch", 2, "err")]
    + [("explain", 2, "err")],
)
def test_a_bad_cell_is_one_line_naming_file_column_and_row(
    command, code, stream, my_logs, my_model, tmp_path, capsys
):
    folder = tmp_path / "logs"
    folder.mkdir()
    frame = pd.read_csv(sorted(my_logs.glob("*.csv"))[0])
    channel = frame.columns[2]
    frame[channel] = frame[channel].astype(object)
    frame.loc[10, channel] = "oops"  # data row 11: row 12 with the header as row 1
    bad = folder / "bad.csv"
    frame.to_csv(bad, index=False)
    written = bad.read_bytes()
    capsys.readouterr()
    argv = {
        "validate": ["validate", str(bad)],
        "train": ["train", "--data", str(folder), "--model", "pca", "--experiment", "bad"],
        "score": ["score", "--model", my_model, str(bad), "--out", str(tmp_path / "o"), "--quiet"],
        "watch": ["watch", str(bad), "--model", my_model, "--once"],
        "explain": ["explain", str(bad), "--model", my_model, "--out", str(tmp_path / "e")],
    }[command]
    assert main(argv) == code
    printed = capsys.readouterr()
    lines = [line for line in getattr(printed, stream).splitlines() if str(bad) in line]
    assert len(lines) == 1 and "Traceback" not in printed.err, printed
    assert f"{bad}, column '{channel}', row 12: non-numeric value 'oops'" in lines[0]
    if stream == "err":
        assert printed.err.strip() == lines[0]  # and nothing else
    assert bad.read_bytes() == written  # the input is untouched
