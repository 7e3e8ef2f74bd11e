"""Batch scoring: rows preserved, chunked equals one pass, bad input reported, outputs atomic."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
from anomaly.data.schema import LogError
from anomaly.detect.pipeline import Pipeline
from anomaly.detect.scoring import score_frame
from anomaly.study.trial import run_trial
from tests.helpers import quick_config


@pytest.fixture(scope="module")
def pipeline(easy_dir, tmp_path_factory) -> tuple[Pipeline, Path]:
    out = run_trial(
        quick_config(
            str(easy_dir),
            "lstm",
            detect={"smooth_s": [0, 0.5], "confirm_s": 0.3, "merge_gap_s": 0.2, "warmup_s": 3.0},
        )
    )
    folder = out.pipeline.save(tmp_path_factory.mktemp("model") / "pipeline")
    return out.pipeline, folder


def _score(path, model, out, *extra: str) -> int:
    """`anomaly score PATH --model MODEL --out OUT [extra...]`, returning its exit code."""
    return main(["score", str(path), "--model", str(model), "--out", str(out), *extra])


def _flights(easy_dir) -> list[Path]:
    return sorted((easy_dir / "flights").glob("*.csv"))


@pytest.mark.parametrize("chunk", [37, 1000])
@pytest.mark.parametrize("baseline_s", [0.0, 3.0])
def test_chunked_equals_one_pass(pipeline, easy_dir, chunk, baseline_s):
    pipe = copy.copy(pipeline[0])
    pipe.rule = copy.deepcopy(pipe.rule)
    pipe.rule.baseline_s = baseline_s
    pipe.rule.baseline_rows = int(baseline_s * pipe.sample_rate_hz)
    frame = pd.read_csv(_flights(easy_dir)[0])
    values, time = frame[pipe.channels].to_numpy(np.float32), frame["time"].to_numpy()
    whole = pipe.score(values, time)
    assert pipe.rule.warmup_rows > 0 and not whole.is_anomaly[: pipe.rule.warmup_rows].any()
    stream = pipe.stream()
    blocks = [
        stream.feed(time[i : i + chunk], values[i : i + chunk])
        for i in range(0, len(values), chunk)
    ]
    score = np.concatenate([b.score for b in blocks])
    assert len(score) == len(values)
    np.testing.assert_allclose(score, whole.score, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.concatenate([b.is_anomaly for b in blocks]), whole.is_anomaly)
    np.testing.assert_allclose(
        np.concatenate([b.contributions for b in blocks]), whole.contributions, rtol=1e-5, atol=1e-7
    )


@pytest.mark.slow
def test_score_folder_rows_order_events_summary(pipeline, easy_dir, tmp_path, capsys):
    _, model = pipeline
    out = tmp_path / "out"
    assert _score(easy_dir, model, out, "--chunk-rows", "300", "--quiet") == 0
    for path in _flights(easy_dir):
        src = pd.read_csv(path)
        scored = pd.read_csv(out / f"{path.stem}.scored.csv")
        assert len(scored) == len(src)
        np.testing.assert_allclose(scored["time_s"], src["time"] - src["time"].iloc[0], atol=1e-9)
        assert set(scored.columns) == {"time_s", "score", "is_anomaly", "top_channel"}
        whole = pipeline[0].score(src[pipeline[0].channels].to_numpy(np.float32))
        np.testing.assert_array_equal(scored["is_anomaly"].astype(bool), whole.is_anomaly)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored_files"] == summary["files"] == len(_flights(easy_dir))
    assert summary["rows"] == sum(len(pd.read_csv(p)) for p in _flights(easy_dir))
    events = pd.read_csv(out / "events.csv")
    assert list(events.columns) == [
        "file",
        "start",
        "end",
        "duration_s",
        "peak_score",
        "channel",
        "top_channels",
    ]
    assert len(events) == summary["events"] > 0


def test_cli_matches_pyfunc_path(pipeline, easy_dir, tmp_path):
    pipe, model = pipeline
    path = _flights(easy_dir)[1]
    assert _score(path, model, tmp_path, "--quiet", "--format", "parquet") == 0
    scored = pd.read_parquet(tmp_path / f"{path.stem}.scored.parquet")
    direct = score_frame(pipe, pd.read_csv(path))
    np.testing.assert_allclose(scored["score"], direct["score"], rtol=1e-6)
    np.testing.assert_array_equal(scored["is_anomaly"].astype(bool), direct["is_anomaly"])


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda f: f.assign(time=f["time"] * 2), "column 'time', row 2: sample rate 10 Hz"),
        (lambda f: f.iloc[::-1], "column 'time', row 3: timestamps not sorted"),
        (lambda f: f.assign(time=f["time"].where(f.index != 40, f["time"][39])), "row 42: dup"),
        (lambda f: f.head(5), "5 rows, shorter than one window of the model"),
    ],
)
def test_a_frame_is_refused_where_anomaly_score_refuses_the_log(pipeline, easy_dir, change, needle):
    # the MLflow model's input: once scored whatever its rate, order or length
    pipe, _ = pipeline
    with pytest.raises(LogError, match=needle):
        score_frame(pipe, change(pd.read_csv(_flights(easy_dir)[0])))


def test_a_frames_time_may_be_absent_parsed_or_named_otherwise(pipeline, easy_dir):
    # without it the rows come at the model's rate; parsed datetimes are read as seconds, not
    # as nanoseconds; `Time` is the log reader's `time`; a column named 0 is just ignored
    pipe, _ = pipeline
    frame = pd.read_csv(_flights(easy_dir)[0])
    expected = score_frame(pipe, frame)
    stamps = pd.Timestamp("2024-05-01T10:00:00Z") + pd.to_timedelta(frame["time"], unit="s")
    for other in (
        frame.drop(columns="time"),
        frame.assign(time=stamps),
        frame.assign(time=stamps.dt.tz_localize(None)),
        frame.assign(time=pd.to_timedelta(frame["time"], unit="s")),
        frame.rename(columns={"time": "Time"})
        .assign(**{"0": 1.0})
        .assign(extra=0)
        .rename(columns={"extra": 0}),
    ):
        pd.testing.assert_frame_equal(score_frame(pipe, other), expected)
    with pytest.raises(LogError, match="column 'Time', row 2: sample rate 10 Hz"):
        score_frame(pipe, frame.rename(columns={"time": "Time"}).assign(Time=frame["time"] * 2))
    # the rows come back on the input's index: a slice joins back to its own rows
    later = frame.iloc[100:]
    scored = score_frame(pipe, later)
    assert scored.index.equals(later.index)
    assert later.join(scored)["score"].notna().all()


def test_mixed_batch_scores_good_files_and_exits_1(pipeline, easy_dir, tmp_path, capsys):
    _, model = pipeline
    inp = tmp_path / "in"
    inp.mkdir()
    good = _flights(easy_dir)[:2]
    for p in good:
        (inp / p.name).write_bytes(p.read_bytes())
    src = pd.read_csv(good[0])
    bad_cell = src.copy().astype({"altitude": object})
    bad_cell.loc[200, "altitude"] = "12.3.4"
    bad_cell.to_csv(inp / "bad_cell.csv", index=False)
    src.drop(columns=["airspeed"]).to_csv(inp / "missing_channel.csv", index=False)
    slow = src.copy()
    slow["time"] = slow["time"] * 4  # 5 Hz instead of 20
    slow.to_csv(inp / "slow.csv", index=False)
    (inp / "empty.csv").write_text("")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inp.iterdir()}
    out = tmp_path / "out"
    code = _score(inp, model, out, "--chunk-rows", "400", "--quiet")
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    reasons = {
        Path(line.split()[1].rstrip(",:")).name: line for line in err if line.startswith("FAILED")
    }
    assert (
        "column 'altitude', row 202" in reasons["bad_cell.csv"]
        and "non-numeric" in reasons["bad_cell.csv"]
    )
    assert "column 'airspeed'" in reasons["missing_channel.csv"]
    assert "sample rate" in reasons["slow.csv"]
    assert "empty" in reasons["empty.csv"]
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        [f"{p.stem}.scored.csv" for p in good] + ["events.csv", "summary.json"]
    )  # no partial file
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in inp.iterdir()} == before
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["failed_files"]) == 4


def test_existing_output_needs_overwrite(pipeline, easy_dir, tmp_path, capsys):
    _, model = pipeline
    path = str(_flights(easy_dir)[0])
    args = ["score", path, "--model", str(model), "--out", str(tmp_path), "--quiet"]
    assert main(args) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert main(args) == 2  # checked before anything is scored: nothing is replaced
    assert "--overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert main([*args, "--overwrite"]) == 0


def test_usage_errors_exit_2(pipeline, tmp_path, capsys):
    _, model = pipeline
    assert (
        main(["score", str(tmp_path / "none*.csv"), "--model", str(model), "--out", str(tmp_path)])
        == 2
    )
    assert (
        main(["score", str(tmp_path), "--model", str(tmp_path / "nomodel"), "--out", str(tmp_path)])
        == 2
    )


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("{ not json", "pipeline.json: not a readable saved pipeline"),
        ('{"format_version": 99}', "saved by another version of anomaly (format 99, this one"),
        ('{"format_version": 1}', "saved by an older version of anomaly (format 1, this one"),
    ],
)
def test_a_damaged_or_foreign_model_folder_is_named_in_one_line(
    easy_dir, tmp_path, capsys, spec, needle
):
    model = tmp_path / "model"
    model.mkdir()
    (model / "pipeline.json").write_text(spec)
    assert _score(_flights(easy_dir)[0], model, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and str(model) in err and "\n" not in err


@pytest.mark.slow
def test_registered_alias_uri_scores(easy_dir, mlflow_store, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(easy_dir),
                "--model",
                "pca",
                "--experiment",
                "score-alias",
                "--register",
                "score_pca",
            ]
        )
        == 0
    )
    capsys.readouterr()
    path = str(_flights(easy_dir)[0])
    assert (
        main(
            [
                "score",
                path,
                "--model",
                "models:/score_pca@champion",
                "--out",
                str(tmp_path / "a"),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "score",
                path,
                "--model",
                "models:/score_pca/1",
                "--out",
                str(tmp_path / "b"),
                "--quiet",
            ]
        )
        == 0
    )
    a = pd.read_csv(next((tmp_path / "a").glob("*.scored.csv")))
    b = pd.read_csv(next((tmp_path / "b").glob("*.scored.csv")))
    np.testing.assert_allclose(a["score"], b["score"])
    # the summary names the version the alias pointed at, which can move afterwards
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["model_uri"].startswith("models:/score_pca@champion = models:/score_pca/1 (run ")
    model = mlflow.pyfunc.load_model("models:/score_pca@champion")
    np.testing.assert_allclose(model.predict(pd.read_csv(path))["score"], a["score"], rtol=1e-6)
    # a logged model's id (MLflow 3's models:/m-...) is fixed: scored as it is, not pinned
    run = mlflow.MlflowClient().get_model_version("score_pca", "1").run_id
    exp = mlflow.get_experiment_by_name("score-alias").experiment_id
    logged = mlflow.search_logged_models([exp], f"source_run_id = '{run}'", output_format="list")
    model_id = logged[0].model_id
    assert _score(path, f"models:/{model_id}", tmp_path / "d", "--quiet") == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["model_uri"] == f"models:/{model_id}"
    # a registered name alone is read by MLflow as an id: the message says what was meant
    capsys.readouterr()
    assert _score(path, "models:/score_pca", tmp_path / "e") == 2
    assert "a registered model: models:/score_pca/VERSION or" in capsys.readouterr().err
    assert _score(path, "models:/m-0123456789", tmp_path / "f") == 2  # an id: no such hint
    assert "a registered model" not in capsys.readouterr().err
    # 'latest' can move too: pinned and recorded as the version it was
    assert _score(path, "models:/score_pca/latest", tmp_path / "c", "--quiet") == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["model_uri"].startswith("models:/score_pca/latest = models:/score_pca/1 (run ")


def test_model_cache_trouble_never_stops_or_misleads_scoring(
    easy_dir, mlflow_store, tmp_path, monkeypatch, capsys, caplog
):
    from anomaly.track.model_cache import cache_path

    assert (
        main(["train", "--data", str(easy_dir), "--model", "pca", "--register", "cache_pca"]) == 0
    )
    path = _flights(easy_dir)[0]
    assert cache_path("models:/cache_pca/1") is not None
    # a registry apart from the store: its versions are not the store's, so none is cached
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", f"sqlite:///{tmp_path / 'registry.db'}")
    assert cache_path("models:/cache_pca/1") is None
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    # a cache that cannot be written: the model is scored from its download, with a warning
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("ANOMALY_CACHE", str(tmp_path / "afile"))
    capsys.readouterr()
    assert _score(path, "models:/cache_pca/1", tmp_path / "o", "--quiet") == 0
    assert "not cached" in caplog.text
    # what MLflow cannot find is the user's; any other failure is the tool's own (exit 1)
    from anomaly.track.tracker import download_model

    def broken(**_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        download_model("models:/cache_pca/1", tmp_path / "dl")

    def no_client(**_):  # an s3:// store without boto3 installed here: the user's to install
        raise ModuleNotFoundError("No module named 'botocore'")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", no_client)
    with pytest.raises(FileNotFoundError, match="botocore'; install it to read this store"):
        download_model("models:/cache_pca/1", tmp_path / "dl")


def test_train_refuses_a_deleted_experiment_or_a_bad_name_before_training(
    easy_dir, mlflow_store, capsys, monkeypatch
):
    import anomaly.study.trial as trial

    def never(*_, **__):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(trial, "run_trial", never)
    client = mlflow.MlflowClient()
    client.delete_experiment(client.create_experiment("gone-exp"))
    base = ["train", "--data", str(easy_dir), "--model", "pca"]
    assert main([*base, "--experiment", "gone-exp"]) == 2
    assert "MLflow experiment 'gone-exp' was deleted" in capsys.readouterr().err
    assert main([*base, "--register", "bad/name:x"]) == 2
    assert "--register 'bad/name:x': Invalid model name" in capsys.readouterr().err


def test_train_on_missing_data_leaves_no_store_behind(tmp_path, monkeypatch, capsys):
    # the experiment is checked before training without creating a store: a mistyped --data
    # in an empty folder must not leave an mlflow.db there
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["train", "--data", str(tmp_path / "nope"), "--model", "pca"]) == 2
    assert not (tmp_path / "mlflow.db").exists()
    # nor is a store that cannot be made found only after training
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}")
    assert main(["train", "--data", str(tmp_path / "nope"), "--model", "pca"]) == 2
    assert "no MLflow store can be made at" in capsys.readouterr().err


def test_error_in_a_later_chunk_leaves_no_partial_file(pipeline, easy_dir, tmp_path, capsys):
    _, model = pipeline
    src = pd.read_csv(_flights(easy_dir)[0]).astype({"pitch": object})
    src.loc[len(src) - 5, "pitch"] = "bad"
    path = tmp_path / "late_error.csv"
    src.to_csv(path, index=False)
    out = tmp_path / "out"
    assert _score(path, model, out, "--chunk-rows", "200", "--quiet") == 1
    assert f"row {len(src) - 5 + 2}" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "summary.json"]


def test_a_cut_weights_file_is_named_as_a_damaged_model(pipeline, easy_dir, tmp_path, capsys):
    import shutil

    _, folder = pipeline
    model = shutil.copytree(folder, tmp_path / "model")
    weights = model / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    assert _score(_flights(easy_dir)[0], model, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert "a damaged saved model" in err and str(model) in err and "\n" not in err
    # a baseline's: PCA keeps its components in an .npz
    pca = run_trial(quick_config(str(easy_dir), "pca")).pipeline.save(tmp_path / "pca")
    (npz,) = pca.glob("*.npz")
    npz.write_bytes(npz.read_bytes()[:100])
    assert _score(_flights(easy_dir)[0], pca, tmp_path / "out2") == 2
    assert "a damaged saved model" in capsys.readouterr().err


def test_scoring_never_reads_the_label_column(pipeline, easy_dir, tmp_path, capsys):
    # a label cell scoring has no use for ('yes', a blank) refused the whole log
    _, model = pipeline
    src = pd.read_csv(_flights(easy_dir)[0]).astype({"label": object})
    src.loc[7, "label"], src.loc[9, "label"] = "yes", None
    src.to_csv(tmp_path / "odd_label.csv", index=False)
    assert _score(tmp_path / "odd_label.csv", model, tmp_path / "out") == 0
    assert (tmp_path / "out" / "odd_label.scored.csv").exists()
    # where labels are read, a blank one is named rather than read as normal
    from anomaly.data.logs import read_flight_log
    from anomaly.data.schema import LogError

    with pytest.raises(LogError, match=r"column 'label', row 11: empty label"):
        src.loc[7, "label"] = 0
        src.to_csv(tmp_path / "blank.csv", index=False)
        read_flight_log(tmp_path / "blank.csv")


def test_an_output_that_cannot_be_written_is_named_not_an_internal_failure(
    pipeline, easy_dir, tmp_path, capsys
):
    # a file where the batch's subfolder goes: reported as an internal failure, its cause masked
    # by the clean-up of a temporary file in a folder that was never made
    _, model = pipeline
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.csv").write_bytes(_flights(easy_dir)[0].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("in the way")
    inputs = [str(tmp_path / sub / "x.csv") for sub in ("a", "b")]
    assert main(["score", *inputs, "--model", str(model), "--out", str(out)]) == 1
    printed = capsys.readouterr()
    assert "a/x.csv: its output" in printed.out + printed.err
    assert "a/x.scored.csv cannot be written (a file stands where its folder goes)" in (
        printed.out + printed.err
    )
    assert "internal failure" not in printed.out + printed.err
    assert (out / "b" / "x.scored.csv").exists() and (out / "a").read_text() == "in the way"
    # a folder where an output goes is refused before anything is scored, --overwrite or not
    (out / "a").unlink()
    (out / "a" / "x.scored.csv").mkdir(parents=True)
    assert main(["score", *inputs, "--model", str(model), "--out", str(out), "--overwrite"]) == 2
    assert "x.scored.csv is a folder; move it away" in capsys.readouterr().err


def test_a_model_uri_that_cannot_be_found_says_why(tmp_path, monkeypatch, capsys):
    # no store here: MLflow made an empty mlflow.db in the working folder, then said the run
    # was not found; a run without its model's path, or a bare id, got MLflow's own words
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    log = str(_flights_of(tmp_path))
    cases = {
        "runs:/abc123/model": "no MLflow store at",
        "runs:/abc123": "name the model in the run: runs:/abc123/model",
        "models:/m@champion": "no MLflow store at",
        "models:/m/latest": "no MLflow store at",
        "models:/m": "no MLflow store at",
        "abc123": "neither a saved pipeline folder nor an MLflow model URI",
    }
    for uri, needle in cases.items():
        assert main(["score", log, "--model", uri, "--out", str(tmp_path / "o")]) == 2
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def _flights_of(folder):
    from tests.helpers import write_log

    return write_log(folder / "x.csv")
