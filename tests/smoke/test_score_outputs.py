"""Batch scoring never loses anything: outputs unique per input, a bad --out refused before any
work, --overwrite over every file, temporary files of killed runs cleaned, SIGTERM handled, a
model reading logs as it was trained."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
from anomaly.study.trial import run_trial
from tests.helpers import quick_config


@pytest.fixture(scope="module")
def model(easy_dir, tmp_path_factory) -> Path:
    trial = run_trial(quick_config(str(easy_dir), "pca"))
    return trial.pipeline.save(tmp_path_factory.mktemp("pca") / "model")


def _flights(easy_dir) -> list[Path]:
    return sorted((easy_dir / "flights").glob("*.csv"))


def _score(*args) -> int:
    return main(["score", *map(str, args), "--quiet"])


def test_same_names_in_two_folders_and_gz_get_their_own_outputs(easy_dir, model, tmp_path):
    src = _flights(easy_dir)[0]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(src, tmp_path / folder / "x.csv")
    with gzip.open(tmp_path / "a" / "x.csv.gz", "wb") as fh:
        fh.write(src.read_bytes())
    inputs = [tmp_path / "a" / "x.csv", tmp_path / "a" / "x.csv.gz", tmp_path / "b" / "x.csv"]
    out = tmp_path / "out"
    assert _score(*inputs, "--model", model, "--out", out) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.scored.csv"))
    assert written == ["a/x.csv.gz.scored.csv", "a/x.csv.scored.csv", "b/x.scored.csv"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored_files"] == 3 and len(set(summary["outputs"].values())) == 3
    events = pd.read_csv(out / "events.csv")
    assert set(events["file"]) <= {str(p) for p in inputs}


def test_a_file_whose_output_cannot_be_written_does_not_stop_the_batch(
    easy_dir, model, tmp_path, capsys, monkeypatch
):
    # out/a is a file, so a/x.csv's output folder cannot be made: that file fails with the
    # cause named, b/x.csv is scored all the same; and a failure inside the tool whose
    # traceback cannot be kept (ANOMALY_CACHE names a file) stops the batch no more
    src = _flights(easy_dir)[0]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(src, tmp_path / folder / "x.csv")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("in the way")
    monkeypatch.setenv("ANOMALY_CACHE", str(out / "a"))
    monkeypatch.setattr("tempfile.tempdir", str(out / "a"))
    assert (
        _score(tmp_path / "a" / "x.csv", tmp_path / "b" / "x.csv", "--model", model, "--out", out)
        == 1
    )
    assert (out / "b" / "x.scored.csv").exists() and (out / "a").read_text() == "in the way"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored_files"] == 1 and summary["failed_files"][0]["file"].endswith("a/x.csv")
    assert (
        "cannot be written (a file stands where its folder goes)"
        in (summary["failed_files"][0]["reason"])
    )
    from anomaly.detect import batch

    real = batch.score_file

    def broken_on_a(pipeline, path, *args, **kwargs):
        if path.parent.name == "a":
            raise ValueError("a bug of the tool's")
        return real(pipeline, path, *args, **kwargs)

    monkeypatch.setattr(batch, "score_file", broken_on_a)
    inputs = [tmp_path / "a" / "x.csv", tmp_path / "b" / "x.csv"]
    assert _score(*inputs, "--model", model, "--out", tmp_path / "out2") == 1
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert (
        summary["scored_files"] == 1
        and "a bug of the tool's" in (summary["failed_files"][0]["reason"])
    )
    assert "could not be kept" in summary["failed_files"][0]["reason"]
    capsys.readouterr()


def test_a_log_whose_name_is_not_utf8_is_scored(easy_dir, model, tmp_path, capsys):
    # a logger's SD card in Latin-1: the name reaches Python as surrogates, which pyarrow's own
    # file opening and pandas' text columns both refuse
    logs = tmp_path / "latin"
    logs.mkdir()
    name = os.fsdecode(b"caf\xe9.csv")
    shutil.copy(_flights(easy_dir)[0], logs / name)
    out = tmp_path / "out"
    assert _score(logs, "--model", model, "--out", out) == 0
    assert os.fsencode(out / os.fsdecode(b"caf\xe9.scored.csv")) in map(os.fsencode, out.iterdir())
    events = pd.read_csv(out / "events.csv")
    assert len(events) and set(events["file"]) == {str(logs / "caf\\xe9.csv")}  # escaped
    assert json.loads((out / "summary.json").read_text())["scored_files"] == 1


@pytest.mark.parametrize("case", ["a file", "under a file", "cannot be created"])
def test_a_bad_out_is_one_line_and_exit_2(easy_dir, model, tmp_path, capsys, case):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = {
        "a file": blocker,
        "under a file": blocker / "sub",
        "cannot be created": Path("/proc/anomaly-out/sub"),  # not even root can create it
    }[case]
    assert _score(_flights(easy_dir)[0], "--model", model, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {out}") and "\n" not in err and blocker.read_text() == "x"


def test_a_batch_of_awkward_logs_scores_the_good_ones_and_names_the_bad(
    easy_dir, model, tmp_path, capsys
):
    """Zoned ISO times and padded headers score; a .gz that is not gzip is refused, alone."""
    logs = tmp_path / "logs"
    logs.mkdir()
    frame = pd.read_csv(_flights(easy_dir)[0])
    zoned = frame.copy()
    start = pd.Timestamp("2024-05-01T10:00:00Z")
    zoned["time"] = [(start + pd.Timedelta(seconds=t)).isoformat() for t in frame["time"]]
    zoned.to_csv(logs / "zoned.csv", index=False)
    frame.rename(columns=lambda c: f"  {c} ").to_csv(logs / "padded.csv", index=False)
    (logs / "fake.csv.gz").write_text("time,a\n0,1\n")
    out = tmp_path / "out"
    assert _score(logs, "--model", model, "--out", out) == 1
    err = capsys.readouterr().err
    assert "fake.csv.gz" in err and "cannot read" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scored_files"] == 2 and len(summary["failed_files"]) == 1
    scored = {p.name: pd.read_csv(p) for p in out.glob("*.scored.csv")}
    assert set(scored) == {"zoned.scored.csv", "padded.scored.csv"}
    np.testing.assert_allclose(
        scored["zoned.scored.csv"]["score"], scored["padded.scored.csv"]["score"], rtol=1e-6
    )


def test_overwrite_governs_summary_and_events_too(easy_dir, model, tmp_path, capsys):
    out = tmp_path / "out"
    assert _score(_flights(easy_dir)[0], "--model", model, "--out", out) == 0
    before = (out / "summary.json").read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("time,x\n0,1\n")
    assert _score(bad, "--model", model, "--out", out) == 2  # would replace summary and events
    assert (out / "summary.json").read_text() == before
    assert "--overwrite" in capsys.readouterr().err


def test_temporary_files_of_killed_runs_are_removed(easy_dir, model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dead = [
        out / f".{name}.999999999.tmp"  # no such process
        for name in ("flight.scored.csv", "summary.json", "events.csv")
    ]
    mine = out / f".other.scored.csv.{os.getpid()}.tmp"  # a live process's: kept
    not_ours = out / ".mysummary.json.999999999.tmp"  # a name the tool never writes: kept
    for path in (*dead, mine, not_ours):
        path.write_text("half")
    assert _score(_flights(easy_dir)[0], "--model", model, "--out", out) == 0
    assert not any(p.exists() for p in dead) and mine.exists() and not_ours.exists()


def test_scoring_into_the_input_folder_does_not_read_its_outputs(easy_dir, model, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for p in _flights(easy_dir)[:2]:
        shutil.copy(p, folder / p.name)
    assert _score(folder, "--model", model, "--out", folder) == 0
    assert _score(folder, "--model", model, "--out", folder, "--overwrite") == 0
    assert json.loads((folder / "summary.json").read_text())["files"] == 2


def test_a_residual_that_is_not_finite_is_an_error_naming_the_row(
    easy_dir, model, tmp_path, capsys, monkeypatch
):
    from anomaly.detect.pipeline import Pipeline

    real = Pipeline._residual_stream

    def broken(self):
        stream = real(self)
        feed = stream.feed

        def nan_once_fresh(scaled):
            res, fresh = feed(scaled)
            res[fresh] = np.nan
            return res, fresh

        stream.feed = nan_once_fresh
        return stream

    from anomaly.cli.score import load_pipeline

    first = load_pipeline(model).window_len - 1  # the first row with a full window: fresh
    monkeypatch.setattr(Pipeline, "_residual_stream", broken)
    out = tmp_path / "out"
    assert _score(_flights(easy_dir)[0], "--model", model, "--out", out) == 1
    assert f"row {first + 2}: the model's residual is not finite" in capsys.readouterr().err
    assert not list(out.rglob("*.scored.csv"))


def test_a_failure_inside_the_tool_exits_1_and_the_batch_goes_on(
    easy_dir, model, tmp_path, capsys, monkeypatch
):
    from anomaly.detect.pipeline import PipelineStream

    real, calls = PipelineStream.feed, []

    def first_file_breaks(self, time, values):
        if not calls or calls[0] is self:
            calls.append(self)
            raise RuntimeError("an internal bug")
        return real(self, time, values)

    monkeypatch.setattr(PipelineStream, "feed", first_file_breaks)
    out = tmp_path / "out"
    assert _score(easy_dir / "flights", "--model", model, "--out", out) == 1
    err = capsys.readouterr().err
    assert "internal failure (RuntimeError: an internal bug); traceback in" in err
    assert len(list(out.glob("*.scored.csv"))) == len(_flights(easy_dir)) - 1


def test_a_model_reads_logs_the_way_it_was_trained(easy_dir, tmp_path, mlflow_store, capsys):
    """Trained on logs whose time column needs --time-col, it scores the same kind of log
    without the flag."""
    logs = tmp_path / "logs"
    logs.mkdir()
    for p in _flights(easy_dir):
        frame = pd.read_csv(p).rename(columns={"time": "clock", "label": "fault"})
        frame.to_csv(logs / p.name, sep=";", index=False)
    args = [
        "train",
        "--data",
        logs,
        "--model",
        "pca",
        "--time-col",
        "clock",
        "--label-col",
        "fault",
    ]
    assert main([*map(str, args), "--experiment", "format"]) == 0
    uri = capsys.readouterr().out.strip().splitlines()[-1]
    out = tmp_path / "out"
    assert _score(logs / _flights(easy_dir)[0].name, "--model", uri, "--out", out) == 0


@pytest.mark.slow
def test_sigterm_leaves_no_partial_file_and_says_so(easy_dir, model, tmp_path):
    frame = pd.read_csv(_flights(easy_dir)[0])
    big = pd.concat([frame] * 60, ignore_index=True)
    big["time"] = np.arange(len(big)) / 20.0
    log = tmp_path / "big.csv"
    big.to_csv(log, index=False)
    out = tmp_path / "out"
    score = ["score", str(log), "--model", str(model), "--out", str(out), "--chunk-rows", "500"]
    cmd = [sys.executable, "-m", "anomaly.cli", *score]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(out.glob(".*.tmp")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert not list(out.glob(".*.tmp")) and not list(out.glob("*.scored.csv"))
