"""The smoke sweep end to end: children under one parent, resumable, failures recorded, report."""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
import shutil
from pathlib import Path

import mlflow
import pytest

from anomaly.cli import main
from anomaly.config import build_config
from anomaly.data.datasets import load_dataset
from anomaly.data.splits import split_flights
from anomaly.data.synthetic import CHANNELS
from anomaly.models.registry import count_params
from anomaly.study import cell as cell_module
from anomaly.study import sweep as runner
from anomaly.study.archive import read_archive
from anomaly.study.spec import SweepSpec, expand
from anomaly.track.tracker import Tracker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def smoke_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "experiments" / "smoke.yaml", tmp_path / "smoke.yaml")
    return tmp_path / "smoke.yaml"


def _children(parent: str):
    return mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )


def _training_ids(ds, cell) -> tuple[str, ...]:
    """The training flights a cell's trial draws (what run_trial calls)."""
    split = split_flights(ds, cell.config.seed, cell.config.data.train_flights)
    return tuple(f.flight_id for f in split.train)


def test_cells_share_flight_subsets_across_models(synth_dir):
    spec = SweepSpec.from_yaml(REPO / "experiments" / "smoke.yaml")
    cells = expand(spec, n_features=10)
    expected = sum(len(a.sizes or spec.train_sizes) * len(a.seeds or spec.seeds) for a in spec.arms)
    assert len(cells) == expected and len({c.key for c in cells}) == len(cells)
    ds = load_dataset(str(synth_dir / "flights"))  # plain logs: subsets drawn by seed
    by_pair: dict[tuple[int, int], set] = {}
    for c in cells:
        by_pair.setdefault((c.train_flights, c.seed), set()).add(_training_ids(ds, c))
    # every arm trains on the very same flights at a given size and seed ...
    assert all(len(ids) == 1 for ids in by_pair.values())
    # ... of the right number, and another seed draws another subset
    for (size, _seed), ids in by_pair.items():
        assert len(next(iter(ids))) == size
    for size in spec.train_sizes:
        assert len({next(iter(by_pair[(size, s)])) for s in spec.seeds}) > 1


def test_transformer_arm_is_sized_on_the_channels_it_uses():
    spec = SweepSpec.from_yaml(REPO / "experiments" / "smoke.yaml")
    t = next(c for c in expand(spec, n_features=10) if c.arm == "transformer").config.model_params
    lstm = count_params("lstm", spec.arms[0].settings["model_params"], 10, 16)
    assert abs(count_params("transformer", t, 10, 16) / lstm - 1) < 0.25
    spec.base = {**spec.base, "data": {**spec.base["data"], "channels": ["a", "b", "c"]}}
    t3 = next(c for c in expand(spec, n_features=10) if c.arm == "transformer").config.model_params
    lstm3 = count_params("lstm", spec.arms[0].settings["model_params"], 3, 16)
    assert abs(count_params("transformer", t3, 3, 16) / lstm3 - 1) < 0.25


@pytest.mark.slow
def test_smoke_sweep_resumes_and_reports(smoke_spec, mlflow_store, tmp_path, monkeypatch, capsys):
    spec = SweepSpec.from_yaml(smoke_spec)
    spec.experiment = "study-smoke-resume"
    real = runner._run_cell
    calls = {"n": 0}

    def interrupted(cell):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt  # the process is killed mid-sweep
        return real(cell)

    monkeypatch.setattr(runner, "_run_cell", interrupted)
    log_params = Tracker.log_params  # the first run's parent as a sweep before the arms were logged

    def without_arms(self, run_id, params):
        log_params(self, run_id, {k: v for k, v in params.items() if k != "arms"})

    monkeypatch.setattr(Tracker, "log_params", without_arms)
    with pytest.raises(KeyboardInterrupt):
        runner.run_sweep(spec, workers=1, progress=False)
    monkeypatch.setattr(runner, "_run_cell", real)
    monkeypatch.setattr(Tracker, "log_params", log_params)
    parent, counts = runner.run_sweep(spec, workers=1, progress=False)
    assert counts["skipped"] == 5 and counts["finished"] == counts["cells"] - 5
    children = _children(parent)
    assert len(children) == counts["cells"]
    logged = {"f1_point", "vus_pr", "fit_seconds", "validate_seconds", "checkpoint_seconds",
              "hit_max_epochs", "best_epoch", "steps", "n_params", "vus_pr_order"}  # fmt: skip
    assert {f"metrics.{m}" for m in logged} <= set(children.columns)
    deep = children[children["params.model"] != "pca"]
    assert deep["metrics.hit_max_epochs"].notna().all() and (deep["metrics.fit_seconds"] > 0).all()
    factorial = children[children["tags.anomaly.arm"].str.startswith("transformer-none")]
    assert factorial["metrics.vus_pr_order_shuffled"].notna().all()
    # paired cells: every arm trained on the same flights (by id) at a given size and seed
    pairs = children.groupby(["tags.anomaly.train_flights", "tags.anomaly.seed"])
    assert all(g["params.train_flights"].nunique() == 1 for _, g in pairs)
    assert children["params.train_flights"].nunique() > 1
    exp = mlflow.MlflowClient().get_experiment_by_name(spec.experiment)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "smoke" in exp.tags["mlflow.note.content"]
    # the parent holds the spec's arm order for the report (one from before gets it on resuming)
    client = mlflow.MlflowClient()
    arms = client.get_run(parent).data.params["arms"]
    # when it was swept: `report --sweep EXPERIMENT` reads the parent swept last
    from anomaly.track.tracker import SWEPT_AT

    assert int(client.get_run(parent).data.tags[SWEPT_AT]) > 0
    assert arms == ",".join(a.name for a in spec.arms) and arms.startswith("lstm,transformer,")
    # a second run adds no child
    _, again = runner.run_sweep(spec, workers=1, progress=False)
    assert again["skipped"] == counts["cells"] and len(_children(parent)) == counts["cells"]
    out = tmp_path / "report"
    assert main(["report", "--sweep", spec.experiment, "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    for section in ("## Training", "## Claim 1", "## Claim 2", "## Claim 3", "## Claim 4",
                    "## What each model looks at", "## Verdicts"):  # fmt: skip
        assert section in text, section
    assert "| lstm |" in text and "hit the epoch cap" in text
    # the stopping rule is quoted from the settings the cells were trained with
    assert "an epoch is 4 optimizer steps" in text and "no fall of more than 1.0%" in text
    assert re.search(r"\| lstm \| 4 \| 2 \| \d+ \| 8 \| 100% \|", text)  # 2 epochs of 4 steps
    for png in ("metric_vs_training_flights.png", "paired.png", "lens.png"):
        assert (out / png).stat().st_size > 1000
    arts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent, "report")}
    assert "report/report.md" in arts and "report/cells.jsonl.gz" in arts
    _resumes_on_a_fresh_machine(spec, out, tmp_path, monkeypatch)


def _resumes_on_a_fresh_machine(spec, out: Path, tmp_path: Path, monkeypatch) -> None:
    """The report's archive carries every cell to an empty store: the sweep there runs nothing
    and the report built there reads the same, bar its time stamp and the archive note."""
    archive = out / "cells.jsonl.gz"
    before = archive.read_bytes()
    real = runner._run_cell
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setattr(runner, "_run_cell", lambda cell: pytest.fail(f"{cell.key} ran again"))
    parent, counts = runner.run_sweep(spec, workers=1, progress=False, resume_from=archive)
    assert counts["imported"] == counts["cells"] == counts["skipped"]
    sources = _children(parent)["tags.anomaly.source"]
    assert sources.str.fullmatch(r"archive cells\.jsonl\.gz \(smoke, [0-9a-f]{12}\)").all()
    again = tmp_path / "report-fresh"
    assert main(["report", "--sweep", spec.experiment, "--out", str(again)]) == 0
    assert (again / "cells.jsonl.gz").read_bytes() == before  # same cells, same bytes

    def body(folder: Path) -> list[str]:
        return (folder / "report.md").read_text().splitlines()[3:]  # past the provenance line

    assert body(again) == body(out)
    assert (
        f"{counts['cells']} from archive cells.jsonl.gz (smoke, "
        in (again / "report.md").read_text()
    )
    _, counts = runner.run_sweep(spec, workers=1, progress=False, resume_from=archive)
    assert counts["imported"] == 0 and counts["skipped"] == counts["cells"]  # none twice
    # an archive of part of the design: its cells are imported, the rest run
    with gzip.open(archive, "rt") as f:
        header, *cells = [json.loads(line) for line in f]
    part = tmp_path / "part.jsonl.gz"
    with gzip.open(part, "wt") as f:
        kept = cells[::2]
        f.writelines(json.dumps(x) + "\n" for x in [{**header, "cells": len(kept)}, *kept])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'part.db'}")
    ran = []
    monkeypatch.setattr(runner, "_run_cell", lambda cell: ran.append(cell.key) or real(cell))
    parent, counts = runner.run_sweep(spec, workers=1, progress=False, resume_from=part)
    assert counts["imported"] == len(kept) and counts["finished"] == counts["cells"] - len(kept)
    assert set(ran).isdisjoint(c["key"] for c in kept) and len(_children(parent)) == counts["cells"]
    # an archive of the grid before one arm was refrozen: only the cells the change touches run
    # (the LSTM's, and the Transformers sized on the LSTM's parameters)
    changed = copy.deepcopy(spec)
    lstm = next(a for a in changed.arms if a.name == "lstm")
    lstm.settings = {"model_params": {"hidden_size": 8}}
    old_keys = {c.key for c in expand(spec, len(CHANNELS))}
    new_cells = expand(changed, len(CHANNELS))
    new_keys = {c.key for c in new_cells}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'refrozen.db'}")
    ran.clear()
    parent, counts = runner.run_sweep(changed, workers=1, progress=False, resume_from=archive)
    assert set(ran) == new_keys - old_keys
    assert {"lstm", "transformer"} <= {c.arm for c in new_cells if c.key in ran}
    assert counts["imported"] == len(new_keys & old_keys) > 0
    assert len(_children(parent)) == counts["cells"]


def test_a_store_that_cannot_log_stops_the_sweep_before_the_queued_cells_run(
    smoke_spec, mlflow_store, monkeypatch
):
    import time
    from concurrent.futures import ThreadPoolExecutor

    class InProcessPool(ThreadPoolExecutor):  # the pool's protocol without spawning workers
        def __init__(self, workers, ctx, initializer, initargs):
            super().__init__(workers)

    ran = []

    def cell_runs(cell):
        ran.append(cell.key)
        if len(ran) > 1:  # the other worker stays busy until the sweep has given up
            time.sleep(2)
        return runner.CellResult(cell, None, None, None, 0.0)

    def log_fails(tracker, parent_id, res):
        raise RuntimeError("the tracking store is gone")

    monkeypatch.setattr(runner, "ProcessPoolExecutor", InProcessPool)
    monkeypatch.setattr(runner, "_run_cell", cell_runs)
    monkeypatch.setattr(runner, "log_cell", log_fails)
    spec = SweepSpec.from_yaml(smoke_spec)
    with pytest.raises(RuntimeError, match="store is gone"):
        runner.run_sweep(spec, workers=2, progress=False)
    assert len(expand(spec, n_features=10)) > 10
    assert len(ran) <= 3  # the cells already started, not the whole queue


@pytest.mark.slow
def test_failed_cell_is_recorded_and_redone(smoke_spec, mlflow_store, monkeypatch):
    spec = SweepSpec.from_yaml(smoke_spec)
    spec.experiment = "study-smoke-fail"
    spec.arms = [a for a in spec.arms if a.model == "pca"]  # fast
    real = cell_module.run_trial

    def flaky_trial(cfg, dataset=None, progress=False):
        if cfg.seed == 1:
            raise ValueError("boom")
        return real(cfg, dataset, progress)

    monkeypatch.setattr(cell_module, "run_trial", flaky_trial)
    parent, counts = runner.run_sweep(spec, workers=1, progress=False)
    assert counts["failed"] == 2 and counts["finished"] == 2
    kids = _children(parent)
    failed = kids[kids["status"] == "FAILED"]
    assert len(failed) == 2 and failed["tags.error"].str.contains("boom").all()
    # a failure records what it ran on, as a finished cell does
    assert failed["params.git_commit"].notna().all() and failed["params.machine"].notna().all()
    assert failed["params.data.content_hash"].str.len().gt(0).all()
    assert "metrics.f1_point" not in failed.columns or failed["metrics.f1_point"].isna().all()
    for run_id in failed["run_id"]:  # the whole traceback, not just the message
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/error.txt")
        assert "Traceback" in text and "flaky_trial" in text and "boom" in text
    from anomaly.study.records import load_records

    assert load_records(parent)[2].unfinished == 2
    monkeypatch.setattr(cell_module, "run_trial", real)
    _, counts = runner.run_sweep(spec, workers=1, progress=False)
    assert counts["skipped"] == 2 and counts["finished"] == 2 and counts["failed"] == 0
    # the report counts cells still to run, not the runs a later sweep redid
    assert load_records(parent)[2].unfinished == 0


def test_a_sweep_of_plain_logs_resumes_its_own_parent(
    synth_dir, smoke_spec, mlflow_store, monkeypatch
):
    # a parent of plain logs is resumed only when it records their split: without the record
    # every rerun would start a new parent
    spec = SweepSpec.from_yaml(smoke_spec)
    spec.synth, spec.experiment = None, "study-plain-resume"
    spec.base = {**spec.base, "data": {**spec.base["data"], "data": str(synth_dir / "flights")}}
    spec.arms = [a for a in spec.arms if a.model == "pca"][:1]
    monkeypatch.setattr(runner, "_run_cell", lambda c: runner.CellResult(c, None, None, None, 0.0))
    monkeypatch.setattr(runner, "log_cell", lambda *a: None)
    first, _ = runner.run_sweep(spec, workers=1, progress=False)
    again, _ = runner.run_sweep(spec, workers=1, progress=False)
    assert again == first
    assert mlflow.get_run(first).data.params["data.split"] == "shuffled by seed 0"


def test_a_last_cell_run_in_process_keeps_the_threads_its_workers_had(
    smoke_spec, mlflow_store, monkeypatch
):
    # a resumed sweep with one cell left runs it in this process: with the spec's 2 workers it
    # must still run on 1 torch thread, or its recorded machine parts it from its pair
    import torch

    spec = SweepSpec.from_yaml(smoke_spec)
    spec.arms = [a for a in spec.arms if a.model == "pca"][:1]
    spec.train_sizes, spec.seeds = spec.train_sizes[:1], spec.seeds[:1]
    assert len(expand(spec, n_features=10)) == 1
    seen = []

    def init(data, options, threads):  # as the real one: this process's threads set
        seen.append(threads)
        torch.set_num_threads(threads)

    monkeypatch.setattr(runner, "_worker_init", init)
    monkeypatch.setattr(runner, "_run_cell", lambda c: runner.CellResult(c, None, None, None, 0.0))
    monkeypatch.setattr(runner, "log_cell", lambda *a: None)
    before = torch.get_num_threads()
    runner.run_sweep(spec, workers=2, progress=False)
    assert seen == [1] and torch.get_num_threads() == before
    runner.run_sweep(spec, workers=1, progress=False)
    assert seen[-1] == (os.cpu_count() or 1)


@pytest.mark.slow
def test_changed_settings_start_a_new_parent(smoke_spec, mlflow_store):
    spec = SweepSpec.from_yaml(smoke_spec)
    spec.experiment = "study-smoke-grid"
    spec.arms = [a for a in spec.arms if a.model == "pca"]
    spec.seeds = [0]
    first, _ = runner.run_sweep(spec, workers=1, progress=False)
    spec.base = {**spec.base, "window": {**spec.base["window"], "window_len": 12}}
    second, counts = runner.run_sweep(spec, workers=1, progress=False)
    assert second != first and counts["skipped"] == 0
    assert len(_children(second)) == counts["cells"]


def test_changed_generator_settings_regenerate_the_flights_and_start_a_new_parent(
    smoke_spec, mlflow_store
):
    spec = SweepSpec.from_yaml(smoke_spec)
    spec.experiment = "study-smoke-data"
    spec.arms = [a for a in spec.arms if a.model == "pca"]
    spec.seeds, spec.train_sizes = [0], [1]
    first, _ = runner.run_sweep(spec, workers=1, progress=False)
    again, counts = runner.run_sweep(spec, workers=1, progress=False)  # same flights: resumed
    assert again == first and counts["skipped"] == counts["cells"]
    flights = Path(spec.data_spec()) / "flights"
    spec.synth = {**spec.synth, "n_flights": 16, "n_test": 4}  # the same grid on fewer flights
    second, counts = runner.run_sweep(spec, workers=1, progress=False)
    assert second != first and counts["skipped"] == 0
    assert len(list(flights.glob("*.csv"))) == 16  # no flight of the old settings is left
    assert not list(flights.parent.parent.glob(f".{flights.parent.name}-*"))  # nor a temp folder


@pytest.mark.slow
def test_search_logs_one_parent_with_a_child_per_trial(smoke_spec, mlflow_store, capsys):
    code = main(["search", str(smoke_spec), "--arm", "lstm", "--size", "1", "--trials", "2"])
    assert code == 0
    parents = mlflow.search_runs(
        experiment_names=["study-smoke-search"], filter_string="tags.`anomaly.role` = 'search'"
    )
    assert len(parents) == 1 and parents["status"].iloc[0] == "FINISHED"
    parent = parents["run_id"].iloc[0]
    kids = _children(parent)
    assert len(kids) == 2 and (kids["status"] == "FINISHED").all()
    # validation flights' VUS-PR, never under the name a test flights' VUS-PR has
    assert "metrics.vus_pr" not in kids and kids["params.train.lr"].notna().all()
    assert kids["metrics.validation_vus_pr"].notna().all()
    # each trial logs the whole config it ran and what it cost, as a training run does
    assert kids["params.model"].notna().all() and kids["params.seed"].notna().all()
    assert kids["params.data.train_flights"].notna().all()
    assert kids["params.data.content_hash"].notna().all() and kids["metrics.n_params"].gt(0).all()
    assert (kids["tags.anomaly.role"] == "search-trial").all()
    best = mlflow.artifacts.load_dict(f"runs:/{parent}/best.json")
    assert best["value"] == pytest.approx(kids["metrics.validation_vus_pr"].max())
    # the parent records what it ran on and with, as a training run does
    assert {"params.data.content_hash", "params.git_commit", "params.libraries"} <= set(parents)
    out = capsys.readouterr().out
    assert "best vus_pr" in out and "\n1:\n" in out  # the settings to freeze, keyed by size
    assert re.findall(r"^trial (\d+): vus_pr ", out, re.M) == ["0", "1"]  # a line per trial


def test_a_search_that_cannot_run_says_so_and_prints_no_best(
    smoke_spec, mlflow_store, capsys, monkeypatch
):
    # a size the pool cannot give, or trials that all fail, printed "best vus_pr nan" and a
    # setting for the spec, exit 0; a model without a search space was found after the data
    from anomaly.study import search as search_module

    def search_runs():
        names = "tags.mlflow.runName = 'search-lstm-n50'"
        return mlflow.search_runs(experiment_names=["study-smoke-search"], filter_string=names)

    argv = ["search", str(smoke_spec), "--arm", "lstm", "--trials", "2"]
    assert main([*argv, "--size", "50"]) == 2
    err = capsys.readouterr().err
    assert "--size 50: the training pool has" in err and search_runs().empty
    assert main(["search", str(smoke_spec), "--arm", "pca", "--size", "1"]) == 2
    assert "which has no search space" in capsys.readouterr().err

    def fails(cfg, ds):
        raise search_module.UserError("the window is longer than every flight")

    monkeypatch.setattr(search_module, "run_trial", fails)
    assert main([*argv, "--size", "1"]) == 2
    captured = capsys.readouterr()
    assert "no trial of 2 gave a vus_pr" in captured.err and "best" not in captured.out


def test_the_primary_pair_runs_first_then_scaling_then_the_rest():
    spec = SweepSpec.from_yaml(REPO / "experiments" / "small_data.yaml")
    order = runner.run_order(spec, expand(spec, n_features=10))
    groups = [0 if c.arm in spec.compare else 1 if c.arm in spec.scaling else 2 for c in order]
    assert groups == sorted(groups) and groups[0] == 0 and 1 in groups and 2 in groups
    pair = [c.train_flights for c in order if c.arm in spec.compare]
    assert pair == sorted(pair, reverse=True)  # slowest first within a group
    assert [c.arm for c in order[-1:]] in (["pca"], ["iforest"])  # baselines last


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "docs" / "results").glob("*/cells.jsonl.gz")),
    ids=lambda p: p.parent.name,
)
def test_each_committed_archive_holds_its_specs_current_grid(path):
    # a spec changed without rerunning its study would leave its committed report describing
    # other settings (`make reproduce-*` would quietly rerun the changed cells)
    archive = read_archive(path)
    spec = SweepSpec.from_yaml(REPO / "experiments" / f"{archive.header['sweep']}.yaml")
    channels = build_config(spec.base, {}).data.channels or CHANNELS
    held_out = sorted({c["tags"]["anomaly.held_out"] for c in archive.cells} - {""})
    assert runner.grid_hash(expand(spec, len(channels), held_out)) == archive.header["grid"]


@pytest.mark.parametrize(
    "path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_study_spec_expands(path):
    spec = SweepSpec.from_yaml(path)
    assert expand(spec, n_features=10, campaigns=["2018-07", "2018-09", "2018-10"])


def test_frozen_search_choices_reach_the_cells_and_the_quick_design_shares_them():
    full = SweepSpec.from_yaml(REPO / "experiments" / "small_data.yaml")
    quick = SweepSpec.from_yaml(REPO / "experiments" / "small_data_quick.yaml")
    cells = {(c.arm, c.train_flights): c.config for c in expand(full, n_features=10)}
    # each arm's choice at 2 flights below 16, its choice at 16 from there on
    for name, small, large in [
        ("transformer", {"d_model": 64}, {"d_model": 16}),
        ("linear_rnn", {"state_size": 32}, {"state_size": 64}),
        ("lstm", {"hidden_size": 64}, {"hidden_size": 64}),  # the same point at both sizes
    ]:
        arm = next(a for a in full.arms if a.name == name)
        for size, choice in [(1, arm.settings), (8, arm.settings), (16, arm.overrides(16))]:
            cfg = cells[(name, size)]
            assert cfg.train.lr == choice["train"]["lr"], (name, size)
            assert cfg.train.warmup_steps == choice["train"]["warmup_steps"], (name, size)
            assert cfg.window.window_len == choice["window"]["window_len"], (name, size)
        assert cells[(name, 1)].model_params.items() >= small.items(), name
        assert cells[(name, 32)].model_params.items() >= large.items(), name
    assert cells[("linear_rnn", 8)].window.window_len == 64  # the rerun's choice at 2 flights
    assert cells[("transformer-none-last", 16)].train.lr == cells[("transformer", 16)].train.lr
    for name in ("lstm", "transformer", "linear_rnn"):
        a = next(x for x in full.arms if x.name == name)
        b = next(x for x in quick.arms if x.name == name)
        assert (a.settings, a.by_size) == (b.settings, b.by_size), name


@pytest.mark.parametrize("name", ["alfa", "alfa_loco"])
def test_the_alfa_specs_carry_the_synthetic_searchs_choices_at_16_flights(name):
    full = SweepSpec.from_yaml(REPO / "experiments" / "small_data.yaml")
    alfa = SweepSpec.from_yaml(REPO / "experiments" / f"{name}.yaml")
    checked = []
    for arm in alfa.arms:
        if arm.params_x is not None or not arm.settings:
            continue  # sized on the LSTM; the baselines have no search
        checked.append(arm.name)
        choice = next(a for a in full.arms if a.name == arm.name).overrides(16)
        assert arm.settings["model_params"] == choice["model_params"], arm.name
        assert arm.settings["train"] == choice["train"], arm.name
        assert "window" not in arm.settings, arm.name  # the preset's window, chosen on ALFA
    assert checked == ["lstm", "transformer", "linear_rnn"]


def test_the_claim4_spec_is_the_full_designs_factorial_on_the_same_flights():
    full = SweepSpec.from_yaml(REPO / "experiments" / "small_data.yaml")
    claim4 = SweepSpec.from_yaml(REPO / "experiments" / "claim4.yaml")
    assert claim4.synth == full.synth and claim4.base == full.base  # same flights, same rule
    same = ("primary", "margin", "compare", "lens_seeds")
    assert [getattr(claim4, k) for k in same] == [getattr(full, k) for k in same]
    f, c = dict(full.factorial), dict(claim4.factorial)
    assert f.pop("sizes") == [2, 16] and c.pop("sizes") == [2, 8]
    assert f == c
    for name in ("lstm", "transformer", "linear_rnn"):
        a = next(x for x in full.arms if x.name == name)
        b = next(x for x in claim4.arms if x.name == name)
        assert a.settings == b.settings and not b.by_size, name  # the choice below 16 flights
        assert a.shuffle == b.shuffle, name


def test_a_sweep_reads_logs_as_its_base_config_says(tmp_path):
    # a spec naming its logs' label column: the sweep's flights are labelled by it, not given
    # it as a sensor (as one cell's config, read on its own, does)
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(3):
        rows = "".join(f"{i / 10},{i % 5},{k},{int(i > 30)}\n" for i in range(40))
        (logs / f"f{k}.csv").write_text("t_s,a,b,fault\n" + rows)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        f"name: own\nbase:\n  data: {{data: {logs}, label_col: fault, time_col: t_s}}\n"
        "train_sizes: [1]\nseeds: [0]\narms:\n  - {name: pca, model: pca}\n"
    )
    spec = SweepSpec.from_yaml(spec_path)
    ds = runner.prepare_data(spec)
    assert ds.channels == ["a", "b"]
    assert all(f.labels is not None and f.labels.sum() == 9 for f in ds.flights)
    # and so do the workers, which read the flights the cells train on
    import torch

    threads = torch.get_num_threads()
    try:
        runner._worker_init(spec.data_spec(), spec.data_options(), threads)
        assert runner._DATASET.channels == ["a", "b"] and runner._DATASET.flights[0].labels.any()
    finally:
        runner._DATASET = None
        torch.set_num_threads(threads)


def test_a_second_sweep_of_a_study_on_one_store_is_refused(smoke_spec, mlflow_store):
    from anomaly.errors import UserError

    spec = SweepSpec.from_yaml(smoke_spec)
    with runner.sweep_lock(spec.experiment):  # the first sweep, still running
        with pytest.raises(UserError, match="another sweep of 'study-smoke' is running"):
            runner.run_sweep(spec, workers=1, progress=False)
    with runner.sweep_lock(spec.experiment):  # released when it ends
        pass


@pytest.mark.parametrize(
    "uri, folder",
    [
        ("sqlite:////abs/m.db", "/abs"),
        ("file://localhost/tmp/x", "/tmp/x"),
        ("file:///a%20b", "/a b"),
        ("./mlruns", "mlruns"),
        ("databricks", None),
        ("http://host:5000", None),
    ],
)
def test_the_sweep_lock_lives_beside_a_local_store_only(uri, folder):
    found = runner._local_store(uri)
    assert (None if found is None else str(found)) == folder


def test_a_spec_that_generates_flights_never_replaces_a_users_logs(tmp_path):
    # `synth:` with `data:` naming a folder of one's own logs deleted them all, and `search`
    # checked its --arm only after
    from anomaly.errors import UserError

    logs = tmp_path / "my_logs"
    logs.mkdir()
    for k in range(3):
        (logs / f"f{k}.csv").write_text("t,a\n" + "".join(f"{i / 10},{i % 5}\n" for i in range(40)))
    (logs / "notes.txt").write_text("mine")
    before = sorted((p.name, p.read_bytes()) for p in logs.iterdir())
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        f"name: mine\nsynth: {{n_flights: 4, seed: 0}}\nbase:\n  data: {{data: {logs}}}\n"
        "train_sizes: [1]\nseeds: [0]\narms:\n  - {name: pca, model: pca}\n"
    )
    spec = SweepSpec.from_yaml(spec_path)
    with pytest.raises(UserError, match="holds files but no synth.json, the record a sweep leaves"):
        runner.prepare_data(spec)
    assert main(["search", str(spec_path), "--arm", "nosuch", "--size", "1"]) == 2
    assert main(["search", str(spec_path), "--arm", "pca", "--size", "1"]) == 2
    assert sorted((p.name, p.read_bytes()) for p in logs.iterdir()) == before
