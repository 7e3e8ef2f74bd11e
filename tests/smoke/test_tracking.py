"""What the tracker records beyond plain values: undefined metrics and the experiment's kind."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from anomaly.track.tracker import Tracker


def test_an_undefined_metric_is_named_not_dropped(mlflow_store):
    tracker = Tracker("tracking-missing", description="holds one test run")
    with tracker.run("r") as run_id:
        tracker.log_metrics(run_id, {"f1_point": 0.5, "flight_recall": float("nan")})
        tracker.log_metrics(run_id, {"vus_pr": float("nan")})
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.metrics == {"f1_point": 0.5}
    assert run.data.tags["anomaly.missing_metrics"] == "flight_recall,vus_pr"


def test_every_experiment_opens_on_the_runs_table(mlflow_store):
    client = mlflow.MlflowClient()
    client.create_experiment("made-elsewhere")  # an experiment our tool did not create
    Tracker("made-elsewhere")
    Tracker("ours", description="what ours holds")
    for name in ("made-elsewhere", "ours"):
        tags = client.get_experiment_by_name(name).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert client.get_experiment_by_name("ours").tags["mlflow.note.content"] == "what ours holds"


def test_a_training_history_keeps_every_epoch_as_a_step(mlflow_store):
    tracker = Tracker("tracking-history", description="holds one test run")
    history = [
        {"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 2.0 / (e + 1)} for e in range(600)
    ]
    history[3]["val_loss"] = float("nan")  # an epoch without a validation loss
    with tracker.run("r") as run_id:
        tracker.log_history(run_id, history)  # 1,199 values: more than one MLflow batch
    client = mlflow.MlflowClient()
    train = client.get_metric_history(run_id, "train_loss")
    assert sorted(m.step for m in train) == list(range(600))
    assert {m.step: m.value for m in train}[7] == 1.0 / 8
    assert sorted(m.step for m in client.get_metric_history(run_id, "val_loss")) == [
        e for e in range(600) if e != 3
    ]
    assert client.get_run(run_id).data.tags["anomaly.missing_metrics"] == "val_loss"


def test_an_experiment_created_by_another_process_meanwhile_is_opened(mlflow_store, monkeypatch):
    # the other process creates it between this one's lookup (nothing yet) and its create
    Tracker("made-meanwhile")
    real = MlflowClient.get_experiment_by_name
    calls = []

    def late(self, name):
        calls.append(name)
        return None if len(calls) == 1 else real(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", late)
    second = Tracker("made-meanwhile")
    assert second.experiment_id == mlflow.get_experiment_by_name("made-meanwhile").experiment_id
    assert calls[:2] == ["made-meanwhile"] * 2  # looked up again after the failed create


def test_a_create_that_fails_for_another_reason_is_raised(mlflow_store, monkeypatch):
    Tracker("exists-but-unseen")  # the create below fails; the lookup still finds nothing
    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", lambda self, name: None)
    with pytest.raises(MlflowException):
        Tracker("exists-but-unseen")
