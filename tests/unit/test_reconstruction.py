"""Autoencoders rebuild a window around its own mean and score a row by its window's last rows."""

from __future__ import annotations

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
    np.testing.assert_allclose(row_error(r, 10), row_error(r, None))  # at most the window


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
@pytest.mark.parametrize("error_rows", [0, -2, 2.5, True])
def test_a_bad_error_rows_is_named(name, error_rows):
    with pytest.raises(UserError, match="error_rows"):
        _network(name, error_rows=error_rows)
