"""Training end to end on synthetic flights, tracked in MLflow, reloaded and re-scored."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
from anomaly.cli.score import load_pipeline
from anomaly.config import PRESETS
from anomaly.data.schema import LogError
from anomaly.detect.scoring import score_frame
from anomaly.models import registry
from anomaly.models.registry import MODELS, make_detector
from anomaly.study.trial import run_trial
from tests.helpers import needs_alfa, quick_config

REQUIRED_PARAMS = {
    "model",
    "seed",
    "window.window_len",
    "window.stride",
    "data.data",
    "data.content_hash",
    "train_flights",
    "test_flights",
    "detect.threshold",
    "package_version",
    "git_commit",
    "git_dirty",
    "libraries",
    "machine",
    "model_params.hidden_size",
}
REQUIRED_METRICS = {
    "fit_seconds",
    "validate_seconds",
    "checkpoint_seconds",
    "total_seconds",
    "steps",
    "best_epoch",
    "hit_max_epochs",
    "vus_roc",
    "f1_point",
    "precision_point",
    "recall_point",
    "auc_pr",
    "auc_roc",
    "vus_pr",
    "f1_event",
    "flight_recall",
    "flight_precision",
    "false_alarms_per_hour",
    "f1_point_adjusted",
    "train_seconds",
    "n_params",
    "epochs",
}


@pytest.mark.slow
@pytest.mark.parametrize("arch", [m for m in MODELS if registry.get(m).deep])
def test_each_deep_model_overfits_one_tiny_batch(arch):
    """Eight windows of sinusoids with random phases and frequencies: every network, the linear
    one included, can learn them far below their energy."""
    rng = np.random.default_rng(0)
    t = np.arange(12)[None, :, None]
    w = np.sin(0.3 * (1 + rng.random((8, 1, 3))) * t + rng.uniform(0, 6, (8, 1, 3)))
    w = w.astype(np.float32)
    det = make_detector(arch, {"max_epochs": 300, "patience": 300, "lr": 1e-2, "batch_size": 8})
    det.fit(w, w)
    assert det.score(w).mean() < 0.25 * float((w**2).mean())


@pytest.mark.parametrize("model", MODELS)
def test_easy_faults_beat_a_random_score(easy_dir, model):
    out = run_trial(quick_config(str(easy_dir), model))
    labels = np.concatenate([r.flight.labels for r in out.results])
    assert 0 < labels.mean() < 1
    assert (
        out.metrics["auc_pr"] > labels.mean() + 0.1
    )  # a random score's AUC-PR is the positive rate


@pytest.mark.slow
def test_same_seed_same_metrics(easy_dir):
    a = run_trial(quick_config(str(easy_dir), "lstm", seed=3))
    b = run_trial(quick_config(str(easy_dir), "lstm", seed=3))
    for k in ("f1_point", "auc_pr", "vus_pr", "threshold"):
        assert abs(a.metrics[k] - b.metrics[k]) <= 1e-6


@pytest.mark.slow
def test_train_logs_everything_and_model_reloads(
    easy_dir, mlflow_store, tmp_path, capsys, monkeypatch
):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "window: {window_len: 16, stride: 8, score_stride: 8}\nmodel_params: {hidden_size: 16}\n"
        "detect: {baseline_s: 2.0, baseline_lag_s: 0.5}\n"
    )
    args = [
        "train",
        "--data",
        str(easy_dir),
        "--model",
        "lstm",
        "--config",
        str(cfg),
        "--max-epochs",
        "2",
        "--experiment",
        "smoke-train",
        "--register",
        "smoke_lstm",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    uri = out[-1]
    assert uri.startswith("runs:/") and uri.endswith("/model")
    assert any("F1 (point)" in line for line in out)
    run_id = uri.split("/")[1]
    run = mlflow.MlflowClient().get_run(run_id)
    assert REQUIRED_PARAMS <= set(run.data.params)
    assert REQUIRED_METRICS <= set(run.data.metrics)
    m = run.data.metrics
    # the level the alarms were judged against is said, as logged
    assert f"decision level {m['threshold']:.3f} (rule fa_per_hour:" in "\n".join(out)
    # fit time is optimizer steps only: validation and set-up are counted apart
    assert 0 < m["fit_seconds"] < m["total_seconds"] and m["validate_seconds"] > 0
    assert m["checkpoint_seconds"] > 0  # the best weights were written and reloaded
    assert m["fit_seconds"] + m["validate_seconds"] + m["checkpoint_seconds"] < m["total_seconds"]
    assert m["train_seconds"] == m["fit_seconds"]
    exp = mlflow.MlflowClient().get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert exp.tags["mlflow.note.content"]
    assert run.data.params["window.window_len"] == "16"
    # the settings the config left at their defaults are logged too, as the model ran them
    params = run.data.params
    assert params["network.hidden_size"] == "16" and params["network.num_layers"] == "1"
    assert params["detector.max_epochs"] == "2" and params["detector.arch"] == "lstm"
    assert run.info.run_name.startswith("lstm-") and run.data.tags["anomaly.role"] == "train"
    history = mlflow.MlflowClient().get_metric_history(run_id, "val_loss")
    assert len(history) == int(run.data.metrics["epochs"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {
        "test_flight.png",
        "alarm_rule.json",
        "split.json",
        "per_flight.csv",
        "events.csv",
        "detection_delay_by_fault.png",
        "flights",
    } <= artifacts
    split = mlflow.artifacts.load_dict(f"runs:/{run_id}/split.json")
    assert ",".join(split["test_flights"]) == run.data.params["test_flights"]
    # the logged model scores a flight exactly as the pipeline does, one row per input row
    frame = pd.read_csv(sorted((easy_dir / "flights").glob("*.csv"))[0])
    model = mlflow.pyfunc.load_model(uri)
    pred = model.predict(frame)
    assert len(pred) == len(frame)
    assert list(pred.columns) == ["score", "is_anomaly", "top_channel"]
    pipe = load_pipeline(uri)
    # the whole alarm rule survives the round trip
    assert pipe.rule.baseline_rows > 0 and pipe.rule.baseline_lag_rows > 0
    np.testing.assert_allclose(pred["score"], score_frame(pipe, frame)["score"], rtol=1e-6)
    # a channel logged as whole numbers (read by pandas as int64) is read as `anomaly score`
    # reads it, not refused by the signature's types; text in a channel is the reader's error
    whole = frame.assign(**{pipe.channels[0]: frame[pipe.channels[0]].round().astype("int64")})
    np.testing.assert_allclose(
        model.predict(whole)["score"], score_frame(pipe, whole)["score"], rtol=1e-6
    )
    text = frame.astype({pipe.channels[1]: object})
    text.loc[5, pipe.channels[1]] = "oops"
    with pytest.raises(LogError, match=f"{pipe.channels[1]}.*row 7"):
        model.predict(text)
    # its time column reaches the model, whatever its case, and is checked as a log's is
    with pytest.raises(LogError, match="column 'Time', row 2: sample rate 10 Hz is far"):
        model.predict(frame.rename(columns={"time": "Time"}).assign(Time=frame["time"] * 2))
    # the logged model raises, on every test flight, the first alarm the run's evaluation
    # reported (per_flight.csv): what was logged is what was judged
    judged = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/per_flight.csv")))
    assert set(judged["flight_id"]) == set(split["test_flights"])
    # the one per-flight table of training runs and study cells: verdict, alarm and VUS
    assert {"outcome", "delay_s", "first_alarm_s", "onset_s", "vus_pr", "vus_roc"} <= set(judged)
    for row in judged.itertuples():
        flight = pd.read_csv(easy_dir / "flights" / f"{row.flight_id}.csv")
        flags = model.predict(flight)["is_anomaly"].to_numpy(bool)
        first = flight["time"].to_numpy()[flags.argmax()] if flags.any() else np.nan
        assert first == pytest.approx(row.first_alarm_s, nan_ok=True), row.flight_id
    # and the registered alias resolves to the same model
    alias = mlflow.pyfunc.load_model("models:/smoke_lstm@champion")
    # the registry says what the alias points at, and a later version that takes the alias
    # says which one it left
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("smoke_lstm", "champion")
    assert version.tags["model"] == "lstm" and version.tags["run_id"] == run_id
    assert float(version.tags["vus_pr"]) == pytest.approx(m["vus_pr"], rel=1e-3)
    assert version.tags["data.content_hash"] == run.data.params["data.content_hash"]
    from anomaly.track.tracker import Tracker

    again, before = Tracker("smoke-train").register(uri, "smoke_lstm", {"model": "lstm"})
    assert (before, again) == (str(version.version), str(int(version.version) + 1))
    np.testing.assert_allclose(alias.predict(frame)["score"], pred["score"], rtol=1e-6)
    # `anomaly score` with the alias downloads it into a temporary folder it then removes
    import glob
    import tempfile

    left = f"{tempfile.gettempdir()}/anomaly-model-*"
    before = set(glob.glob(left))
    via_alias = load_pipeline("models:/smoke_lstm@champion")
    assert set(glob.glob(left)) == before
    np.testing.assert_allclose(score_frame(via_alias, frame)["score"], pred["score"], rtol=1e-6)
    # an artifact that is no pipeline is refused as such, and not cached
    with pytest.raises(FileNotFoundError, match="no anomaly pipeline inside"):
        load_pipeline(f"runs:/{run_id}/alarm_rule.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_train_logs_to_a_real_mlflow_server(easy_dir, tmp_path, monkeypatch, capsys):
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start within 90 s")
        time.sleep(1.0)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert (
            main(["train", "--data", str(easy_dir), "--model", "pca", "--experiment", "served"])
            == 0
        )
        run_id = capsys.readouterr().out.strip().splitlines()[-1].split("/")[1]
        run = mlflow.MlflowClient(uri).get_run(run_id)
        assert "f1_point" in run.data.metrics and "n_params" in run.data.metrics
        assert (tmp_path / "artifacts").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_alfa_preset_trains_one_epoch():
    needs_alfa()
    cfg = quick_config(
        "alfa",
        "lstm",
        train={"max_epochs": 1},
        window={"window_len": 40, "stride": 8, "score_stride": 8},
    )
    out = run_trial(cfg)
    assert out.metrics["epochs"] == 1
    assert len(out.results) == 20 and 0 < out.metrics["auc_roc"] <= 1
    assert out.pipeline.channels == PRESETS["alfa"]["data"]["channels"]
    assert out.pipeline.log_format["time_col"] == "%time"  # scoring reads ALFA logs alike
