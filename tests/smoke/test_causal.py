"""Causal detection: a row's score and alarm use rows up to it only, for every model, in one pass
and in chunked streaming; chunked streaming gives the one-pass alarms."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from anomaly.detect.pipeline import Pipeline
from anomaly.models.registry import MODELS
from anomaly.study.trial import run_trial
from tests.helpers import quick_config

# every stage of the alarm rule that looks back in time: the flight's own baseline, smoothing,
# alarm holding and warm-up (the defaults leave them off)
EVERY_STAGE = {"baseline_s": 5.0, "baseline_lag_s": 0.5, "smooth_s": [0.0, 1.0], "merge_gap_s": 0.5}


# the second rule trains every model again: slow
RULES = ["default", pytest.param("every_stage", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def pipelines(easy_dir):
    return {m: run_trial(quick_config(str(easy_dir), m)).pipeline for m in MODELS}


@pytest.fixture(scope="module")
def pipelines_every_stage(easy_dir):
    over = {"detect": {**EVERY_STAGE, "warmup_s": 1.0}}
    return {m: run_trial(quick_config(str(easy_dir), m, **over)).pipeline for m in MODELS}


def _pipeline(request, rule: str, model: str):
    """The model's pipeline under the default rule or with every look-back stage on (a fixture
    each: the second trains every model again, so only tests that ask for it pay)."""
    fixture = "pipelines" if rule == "default" else "pipelines_every_stage"
    return request.getfixturevalue(fixture)[model]


def _flight(easy_dir, fault_free: bool = False) -> tuple[np.ndarray, np.ndarray]:
    flights = sorted((easy_dir / "flights").glob("*.csv"))
    if fault_free:  # a step must be caught by itself, not by a fault of the flight's own
        manifest = pd.read_csv(easy_dir / "manifest.csv")
        flights = [
            easy_dir / "flights" / manifest.loc[manifest["fault_type"] == "none", "file"].iloc[0]
        ]
    frame = pd.read_csv(flights[0])
    return frame["time"].to_numpy(), frame.drop(columns=["time", "label"]).to_numpy(np.float32)


def _chunked(pipe, time, values, size):
    stream = pipe.stream()
    blocks = [
        stream.feed(time[i : i + size], values[i : i + size]) for i in range(0, len(time), size)
    ]
    return (
        np.concatenate([b.score for b in blocks]),
        np.concatenate([b.is_anomaly for b in blocks]),
    )


@pytest.mark.parametrize("stride", ["trained", 1])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("model", MODELS)
def test_a_step_at_row_k_changes_nothing_before_it(request, easy_dir, model, rule, stride):
    pipe = _pipeline(request, rule, model)
    if stride != "trained":  # the quick models score every 8th row; the default is every row
        pipe = copy.copy(pipe)
        pipe.score_stride = stride
    time, values = _flight(easy_dir, fault_free=True)
    k = len(values) // 2
    stepped = values.copy()
    stepped[k:] += 5.0 * values.std(axis=0)  # every channel jumps at row k, and stays
    for run in (lambda v: pipe.score(v, time), lambda v: pipe.stream().feed(time, v)):
        before, after = run(values), run(stepped)
        np.testing.assert_array_equal(after.score[:k], before.score[:k])
        np.testing.assert_array_equal(after.is_anomaly[:k], before.is_anomaly[:k])
        # and the step itself is caught within 60 rows (3 s at 20 Hz), by a statistic the flight
        # alone stays below
        # there (these two-epoch models also alarm on some stretches of normal flight)
        assert after.is_anomaly[k : k + 60].any()
        assert after.score[k : k + 60].max() > before.score[k : k + 60].max()
    for size in (1, 37, 500):  # the same chunks with and without the step: to the last bit
        score, flags = _chunked(pipe, time, stepped, size)
        plain_score, plain_flags = _chunked(pipe, time, values, size)
        np.testing.assert_array_equal(flags[:k], plain_flags[:k])
        np.testing.assert_array_equal(score[:k], plain_score[:k])


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("size", [1, 37, 1000])
def test_chunked_streaming_equals_one_pass(request, easy_dir, model, size, rule):
    pipe = _pipeline(request, rule, model)
    time, values = _flight(easy_dir)
    one = pipe.score(values, time)
    score, flags = _chunked(pipe, time, values, size)
    # the rule is exact across chunks (tests/unit/test_detect.py); a model's float32 residuals
    # are not (another batch shape, other rounding), and a flight baseline divides them by the
    # flight's own spread: up to 1e-4 relative there, never a flag
    tol = 1e-5 if rule == "default" else 1e-3
    np.testing.assert_allclose(score, one.score, rtol=tol, atol=1e-5)
    np.testing.assert_array_equal(flags, one.is_anomaly)


@pytest.mark.parametrize("model", ["lstm", "iforest"])
def test_a_frozen_sensor_raises_an_alarm_naming_it(pipelines, easy_dir, model, tmp_path):
    pipe = copy.copy(pipelines[model])
    pipe.rule = copy.deepcopy(pipe.rule)
    pipe.rule.threshold.threshold_ = np.inf  # the residual test is mute: only the check speaks
    manifest = pd.read_csv(easy_dir / "manifest.csv")
    name = manifest.loc[manifest["fault_type"] == "none", "file"].iloc[0]
    frame = pd.read_csv(easy_dir / "flights" / name)
    time, values = frame["time"].to_numpy(), frame[pipe.channels].to_numpy(np.float32)
    k, ch = len(values) // 2, 2
    frozen = values.copy()
    frozen[k:, ch] = frozen[k, ch]  # the sensor holds its value from row k on
    first = k + int(pipe.frozen.limit_rows_[ch]) + pipe.rule.confirm_rows - 1
    block = pipe.score(frozen, time)
    assert np.flatnonzero(block.is_anomaly).tolist() == list(range(first, len(values)))
    if pipe.detector.has_attribution:
        assert (block.channel[first:] == ch).all()
    assert not pipe.score(values, time).is_anomaly.any()
    score, flags = _chunked(pipe, time, frozen, 37)  # the check's state crosses chunks
    np.testing.assert_array_equal(flags, block.is_anomaly)
    if hasattr(pipe.detector, "history_"):  # a diverged epoch's loss is NaN
        pipe.detector = copy.copy(pipe.detector)
        pipe.detector.history_ = [*pipe.detector.history_, {"epoch": 99, "val_loss": np.nan}]
    loaded = Pipeline.load(pipe.save(tmp_path / "saved"))  # the check travels with the model
    if hasattr(pipe.detector, "history_"):
        assert np.isnan(loaded.detector.training_history()[-1]["val_loss"])
    assert (tmp_path / "saved" / "pipeline.json").exists()
    for saved in (tmp_path / "saved").glob("*.json"):  # strict JSON: no NaN or Infinity
        json.loads(saved.read_text(), parse_constant=lambda c, f=saved: pytest.fail(f"{f}: {c}"))
    np.testing.assert_array_equal(loaded.score(frozen, time).is_anomaly, block.is_anomaly)
    pipe.frozen = None
    without = pipe.score(frozen, time)
    assert not without.is_anomaly.any()
    np.testing.assert_array_equal(without.score, block.score)  # flags only, the same score
