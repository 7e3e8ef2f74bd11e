"""Autoencoders rebuild a window around its own mean and score a row by its window's last rows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from anomaly.errors import UserError
from anomaly.models.deep import DeepDetector
from anomaly.models.reconstruction import row_error
from anomaly.models.registry import build_network, network_config

AUTOENCODERS = ["lstm_ae", "transformer_ae"]
T, F = 16, 3


def _network(name: str, **net):
    torch.manual_seed(0)
    return build_network(name, network_config(name, net, F, T)).eval()


@pytest.mark.parametrize("name", AUTOENCODERS)
@pytest.mark.parametrize("center", [True, False])
def test_a_centred_autoencoder_ignores_the_level_a_window_sits_at(name, center):
    net = _network(name, center=center)
    x = torch.randn(4, T, F)
    shifted = x + torch.tensor([5.0, -3.0, 2.0])  # the same windows at other levels
    with torch.no_grad():
        moved = net(shifted) - net(x)
    if center:  # the reconstruction moves with the level, so the residual does not change
        torch.testing.assert_close(moved, torch.tensor([5.0, -3.0, 2.0]).expand_as(moved))
    else:
        assert not torch.allclose(moved, torch.tensor([5.0, -3.0, 2.0]).expand_as(moved), atol=0.1)


def test_row_error_by_hand():
    r = np.zeros((1, 4, 2))
    r[0, :, 0] = [9.0, 1.0, -3.0, 4.0]
    r[0, :, 1] = [0.0, 0.0, 0.0, -2.0]
    np.testing.assert_array_equal(row_error(r, 1), [[4.0, -2.0]])  # the row's own, signed
    np.testing.assert_allclose(row_error(r, 2), [[np.sqrt(12.5), np.sqrt(2.0)]])
    np.testing.assert_allclose(row_error(r, None), [[np.sqrt(107 / 4), 1.0]])
    huge = np.full((1, 2, 1), 3e19, np.float32)  # its float32 square would overflow
    np.testing.assert_allclose(row_error(huge, None), [[3e19]], rtol=1e-6)


@pytest.mark.parametrize("name, error_rows", [("lstm_ae", None), ("transformer_ae", 8)])
def test_a_row_is_scored_by_the_error_of_its_windows_last_rows(name, error_rows):
    det = DeepDetector(name)
    det.network_, det.n_features_in_, det.window_len_ = _network(name), F, T
    windows = np.random.default_rng(0).normal(size=(5, T, F)).astype(np.float32)
    full = det.residuals(windows)
    tail = full if error_rows is None else full[:, -error_rows:]
    np.testing.assert_allclose(
        det.last_residuals(windows), np.sqrt((tail**2).mean(axis=1)), rtol=1e-6
    )
    det.network_.cfg.error_rows = 1
    np.testing.assert_array_equal(det.last_residuals(windows), full[:, -1])


@pytest.mark.parametrize("name", AUTOENCODERS)
@pytest.mark.parametrize("error_rows", [0, -2, 2.5, True, "8"])
def test_a_bad_error_rows_is_named(name, error_rows):
    with pytest.raises(UserError, match="error_rows"):
        _network(name, error_rows=error_rows)


def _fitted(name: str, **net) -> DeepDetector:
    windows = np.random.default_rng(1).normal(size=(64, T, F)).astype(np.float32)
    return DeepDetector(name, net=net, max_epochs=1).fit(windows)


def test_a_saved_autoencoder_keeps_its_settings_and_an_older_one_its_old_defaults(tmp_path):
    det = _fitted("transformer_ae", d_model=8, n_heads=2, n_layers=1, center=False, error_rows=3)
    det.save(tmp_path)
    windows = np.random.default_rng(2).normal(size=(6, T, F)).astype(np.float32)
    again = DeepDetector.load(tmp_path, {**det.get_params(), "net": {}})  # settings from the file
    assert not again.network_.cfg.center and again.error_rows == 3
    np.testing.assert_allclose(again.last_residuals(windows), det.last_residuals(windows))
    # a model saved before the whole config was kept was uncentred and scored by row t's error
    meta = json.loads((tmp_path / "deep.json").read_text())
    del meta["network"]
    (tmp_path / "deep.json").write_text(json.dumps(meta))
    older = DeepDetector.load(
        tmp_path, {**det.get_params(), "net": {"d_model": 8, "n_heads": 2, "n_layers": 1}}
    )
    assert not older.network_.cfg.center and older.error_rows == 1 and older.signed_residuals


def test_an_autoencoder_error_is_tested_one_sided():
    from anomaly.config import build_config
    from anomaly.study.trial import alarm_rule

    cfg = build_config({}, {"model": "lstm_ae"})
    for error_rows, sides in [(None, "up"), (1, cfg.detect.sides)]:
        det = _fitted("lstm_ae", hidden_size=8, latent_size=4, error_rows=error_rows)
        pipeline = SimpleNamespace(
            residual_channels=["a", "b", "c"], sample_rate_hz=20.0, detector=det
        )
        assert alarm_rule(cfg, pipeline).sides == sides


def test_more_error_rows_than_the_window_is_refused_by_name():
    with pytest.raises(UserError, match="error_rows 20 is more rows than the window's 16"):
        _fitted("lstm_ae", hidden_size=8, latent_size=4, error_rows=20)
    with pytest.raises(UserError, match="error_rows 20 is more rows"):
        _network("transformer_ae", error_rows=20)


@pytest.mark.parametrize("name", AUTOENCODERS)
@pytest.mark.parametrize("center", ["false", 2, None])
def test_a_center_that_is_not_true_or_false_is_refused(name, center):
    with pytest.raises(UserError, match="center must be true or false"):
        _network(name, center=center)
