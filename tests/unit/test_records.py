"""A sweep's records as the report reads them back from MLflow."""

from __future__ import annotations

from anomaly.study.records import load_records
from anomaly.track.tracker import Tracker


def test_each_epoch_keeps_its_own_fit_time_beside_the_total(mlflow_store):
    # a cell logs its total fit time as a metric (step 0) and the running time per epoch as a
    # curve, whose epoch 0 is step 0 too: time to quality must see epoch 0's time, not the total
    tracker = Tracker("records-curves")
    with tracker.run("sweep", tags={"anomaly.role": "parent", "anomaly.sweep": "x"}) as parent:
        pass
    tags = {"anomaly.cell": "k", "anomaly.arm": "lstm", "anomaly.train_flights": "1",
            "anomaly.seed": "0", "anomaly.held_out": ""}  # fmt: skip
    with tracker.run("cell", parent, tags) as run_id:
        tracker.log_params(run_id, {"model": "lstm"})
        tracker.log_metrics(run_id, {"fit_seconds": 10.0})
        tracker.log_history(
            run_id,
            [
                {"epoch": 0, "fit_seconds": 1.0, "val_loss": 5.0},
                {"epoch": 1, "fit_seconds": 10.0, "val_loss": 4.0},
            ],
        )
    _, _, r = load_records(parent)
    assert r.curves.set_index("epoch")["fit_seconds"].to_dict() == {0: 1.0, 1: 10.0}
    assert r.cells["fit_seconds"].tolist() == [10.0] and r.cells["source"].tolist() == [""]


def test_a_cells_table_that_cannot_be_read_stops_the_report(mlflow_store, monkeypatch):
    # absent: None (a cell of a model that logs none); present but unreadable: an error, not a
    # cell quietly left out of the bootstrap's flights
    import mlflow
    import pytest

    from anomaly.track.tracker import artifact_text

    tracker = Tracker("records-artifacts")
    with tracker.run("cell") as run_id:
        tracker.log_text(run_id, "flight,vus_pr\nf0,0.5\n", "per_flight.csv")
    assert artifact_text(run_id, "per_flight.csv").startswith("flight,vus_pr")
    assert artifact_text(run_id, "lens.json") is None

    def unreachable(uri):
        raise OSError("store unreachable")

    monkeypatch.setattr(mlflow.artifacts, "load_text", unreachable)
    with pytest.raises(OSError):
        artifact_text(run_id, "per_flight.csv")


def test_a_param_too_long_for_mlflow_says_it_was_cut(mlflow_store):
    import mlflow

    tracker = Tracker("records-long")
    with tracker.run("cell") as run_id:
        tracker.log_params(
            run_id, {"test_flights": ",".join(f"flight_{i:04d}" for i in range(800))}
        )
    value = mlflow.MlflowClient().get_run(run_id).data.params["test_flights"]
    assert len(value) <= 6000 and value.endswith("(cut: 9599 characters)")


def test_a_sweep_resumes_only_a_parent_of_the_same_logs_and_tables(mlflow_store):
    # another split.csv must start a new parent (its cells would mix two splits in one report);
    # a parent logged before the tables were hashed resumes on its logs' hash, as it did
    from types import SimpleNamespace

    from anomaly.study.sweep import find_parent

    tracker = Tracker("resume-tables")
    spec = SimpleNamespace(name="s")
    tags = {"anomaly.sweep": "s", "anomaly.role": "parent", "anomaly.grid": "g"}
    with tracker.run("old", tags=tags) as old:
        tracker.log_params(old, {"data.content_hash": "logs1"})
    split = {"f": "test"}  # a split.csv's
    ds = SimpleNamespace(content_hash="logs1", tables_hash="t1", fixed_split=split)
    assert find_parent(tracker, spec, "g", ds) == old
    with tracker.run("new", tags=tags) as new:
        tracker.log_params(new, {"data.content_hash": "logs1", "data.tables_hash": "t2"})
    assert find_parent(tracker, spec, "g", ds) == old  # t2's parent is not t1's
    assert (
        find_parent(
            tracker,
            spec,
            "g",
            SimpleNamespace(content_hash="logs1", tables_hash="t2", fixed_split=split),
        )
        == new
    )
    assert (
        find_parent(
            tracker,
            spec,
            "g",
            SimpleNamespace(content_hash="logs2", tables_hash="t1", fixed_split=split),
        )
        is None
    )


def test_a_sweep_of_plain_logs_resumes_only_a_parent_split_as_now(mlflow_store):
    # plain logs were split by each training seed before they were split by one fixed seed: a
    # parent from then holds cells tested on other flights, so it is not resumed
    from types import SimpleNamespace

    from anomaly.data.splits import split_scheme
    from anomaly.study.sweep import find_parent

    tracker = Tracker("resume-plain")
    spec = SimpleNamespace(name="p")
    tags = {"anomaly.sweep": "p", "anomaly.role": "parent", "anomaly.grid": "g"}
    ds = SimpleNamespace(content_hash="logs", tables_hash="none", fixed_split=None)
    with tracker.run("before", tags=tags) as before:
        tracker.log_params(before, {"data.content_hash": "logs", "data.tables_hash": "none"})
    assert find_parent(tracker, spec, "g", ds) is None
    with tracker.run("now", tags=tags) as now:
        params = {"data.content_hash": "logs", "data.tables_hash": "none"}
        tracker.log_params(now, {**params, "data.split": split_scheme(ds)})
    assert find_parent(tracker, spec, "g", ds) == now


def test_report_takes_the_sweep_run_last_not_the_newest_parent(mlflow_store):
    # resuming an older sweep (a spec edited, then put back) makes it the one `report --sweep
    # EXPERIMENT` reads; parents from before the record fall back to their start
    import time

    from anomaly.track.tracker import SWEPT_AT, parent_run

    tracker = Tracker("records-parents")
    parents = []
    for name in ("first", "second"):
        with tracker.run(name, tags={"anomaly.role": "parent", "anomaly.sweep": name}) as run_id:
            parents.append(run_id)
        time.sleep(0.01)  # start times in milliseconds: two apart
    assert parent_run("records-parents")[0] == parents[1]  # no record: the newest start
    tracker.set_tags(parents[1], {SWEPT_AT: "1000"})
    tracker.set_tags(parents[0], {SWEPT_AT: "2000"})
    assert parent_run("records-parents")[0] == parents[0]
