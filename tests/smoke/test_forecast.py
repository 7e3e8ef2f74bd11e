"""Forecast mode: the deep models predict a window's last steps from the steps before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomaly.detect.streaming import StreamScorer
from anomaly.models.registry import make_detector
from anomaly.study.trial import run_trial
from tests.helpers import quick_config


def test_only_forecast_steps_get_errors():
    rng = np.random.default_rng(0)
    t = np.arange(16)[None, :, None] * 0.3 + rng.uniform(0, 6, size=(128, 1, 1))
    w = np.sin(t + np.arange(3)).astype(np.float32)
    det = make_detector(
        "lstm", {"net": {"hidden_size": 16, "latent_size": 8}, "max_epochs": 3, "horizon": 4}
    )
    det.fit(w, w[:32])
    err = det.error_map(w[:10])
    assert np.isnan(err[:, :12]).all() and np.isfinite(err[:, 12:]).all()
    spiked = w[:10].copy()
    spiked[6, 13, :] += 20.0
    assert int(np.argmax(np.nanmean(det.error_map(spiked), axis=(1, 2)))) == 6


def test_forecast_pipeline_streams_like_one_pass(easy_dir):
    cfg = quick_config(str(easy_dir), "lstm", train={"max_epochs": 2, "horizon": 8})
    out = run_trial(cfg)
    pipe = out.pipeline
    assert out.metrics["auc_pr"] > 0
    frame = pd.read_csv(sorted((easy_dir / "flights").glob("*.csv"))[0])
    values = frame[pipe.channels].to_numpy(np.float32)
    whole = pipe.score_rows(values)
    assert np.isfinite(whole.score).all()
    assert (whole.score[: pipe.window_len - 8] == 0).all()  # no history to forecast from
    assert (whole.score[pipe.window_len :] > 0).all()
    scorer = StreamScorer(pipe)
    blocks = []
    for i in range(0, len(values), 150):
        blocks += list(scorer.feed(frame["time"].to_numpy()[i : i + 150], values[i : i + 150]))
    blocks += list(scorer.close())
    np.testing.assert_allclose(
        np.concatenate([b.score for b in blocks]), whole.score, rtol=1e-6, atol=1e-9
    )


def test_stride_beyond_horizon_is_refused(easy_dir):
    with pytest.raises(ValueError, match="score_stride 8 > train.horizon 4"):
        run_trial(quick_config(str(easy_dir), "lstm", train={"horizon": 4}))
