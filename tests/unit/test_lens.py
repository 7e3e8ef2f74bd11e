"""The lens W(t, k): autograd against finite differences, the linear RNN's closed form, and the
summaries on networks whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from anomaly.evaluate.lens import (
    attention_maps,
    attention_rollout,
    effective_memory,
    effective_weights,
    lag_dependence_index,
    lag_profile,
    lens,
)
from anomaly.models.linear_rnn import LinearRNN, LinearRNNConfig


class TinyNet(nn.Module):
    """A hand-built nonlinear network: out[t] = tanh(a * u[t] + u[t-1] M) + c * u[0]**2, with a
    non-symmetric channel mix M, so that swapped time or channel axes show."""

    MIX = torch.tensor([[0.3, 0.5, 0.0], [-0.2, 0.3, 0.1], [0.0, 0.4, 0.3]])

    def forward(self, x):
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return torch.tanh(0.7 * x + prev @ self.MIX.to(x.dtype)) + 0.1 * x[:, :1] ** 2


def test_jacobian_matches_finite_differences():
    net = TinyNet()
    # 11 windows: more than one vectorised chunk, so each window's W stays its own
    u = np.random.default_rng(0).normal(size=(11, 6, 3)).astype(np.float64)
    W = effective_weights(net, u.astype(np.float32))  # (B, T, T, F, F)
    eps = 1e-3
    for b in (0, 7, 8, 10):
        for k in range(6):
            for j in range(3):
                up, down = u.copy(), u.copy()
                up[b, k, j] += eps
                down[b, k, j] -= eps
                with torch.no_grad():
                    diff = net(torch.tensor(up)) - net(torch.tensor(down))
                fd = (diff[b] / (2 * eps)).numpy()  # (T, F_out)
                np.testing.assert_allclose(W[b, :, k, :, j], fd, atol=2e-3)


def test_linear_rnn_closed_form_equals_autograd_and_depends_on_lag_only():
    torch.manual_seed(0)
    net = LinearRNN(LinearRNNConfig(n_features=4, state_size=6))
    u = np.random.default_rng(1).normal(size=(5, 20, 4)).astype(np.float32)
    W = effective_weights(net, u)
    closed = net.closed_form_weights(20).numpy()
    np.testing.assert_allclose(W, np.broadcast_to(closed, W.shape), atol=1e-6)
    assert lag_dependence_index(W) == pytest.approx(1.0, abs=1e-9)


def test_content_dependent_weights_have_a_low_index():
    class Gate(nn.Module):  # weight of u[k] on out[t] set by the sign of u[k] alone
        def forward(self, x):
            return torch.cumsum(torch.relu(x) ** 2, dim=1)

    u = np.random.default_rng(2).normal(size=(64, 12, 1)).astype(np.float32)
    assert lag_dependence_index(effective_weights(Gate(), u)) < 0.2


def test_lag_profile_and_memory_by_hand():
    W = np.zeros((1, 4, 4, 1, 1))
    for t in range(4):
        for k in range(t + 1):
            W[0, t, k, 0, 0] = 0.5 ** (t - k)
    np.testing.assert_allclose(lag_profile(W), [1.0, 0.5, 0.25, 0.125])
    assert effective_memory(np.array([1.0, 0.5, 0.25, 0.125])) == 2  # 1.75 / 1.875 >= 0.9
    # a map with no weight, or a broken one, has no memory and no index: NaN, not a number
    assert np.isnan(effective_memory(np.zeros(4))) and np.isnan(
        effective_memory(np.full(4, np.nan))
    )
    assert np.isnan(lag_dependence_index(np.zeros((2, 4, 4, 1, 1))))
    summary = lens(LinearRNN(LinearRNNConfig(2, 3)), np.zeros((2, 8, 2), np.float32))
    assert summary.weight_map.shape == (8, 8) and summary.lag_profile.shape == (8,)


def test_attention_maps_are_causal_distributions_and_rollout_keeps_them():
    from anomaly.models.transformer_forecaster import (
        TransformerForecaster,
        TransformerForecasterConfig,
    )

    torch.manual_seed(0)
    net = TransformerForecaster(TransformerForecasterConfig(n_features=3, window_len=12)).eval()
    windows = np.random.default_rng(0).normal(size=(5, 12, 3)).astype(np.float32)
    maps = attention_maps(net, windows)
    assert len(maps) == net.cfg.n_layers
    for a in maps:
        assert a.shape == (5, net.cfg.n_heads, 12, 12)
        np.testing.assert_allclose(a.sum(axis=-1), 1.0, atol=1e-5)
        assert np.abs(np.triu(a, k=1)).max() == 0.0  # no query attends to a later row
    rollout = attention_rollout(maps)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(rollout, k=1)).max() < 1e-7
    # the network's forward is its own again once the maps are read
    with torch.no_grad():
        before = net(torch.as_tensor(windows))
    assert all("forward" not in vars(layer.self_attn) for layer in net.encoder.layers)
    with torch.no_grad():
        assert torch.equal(before, net(torch.as_tensor(windows)))
    assert torch.backends.mha.get_fastpath_enabled()


@pytest.mark.parametrize("name", ["lstm", "transformer", "lstm_ae"])
def test_explain_reads_the_output_that_estimated_the_scored_row(name):
    # the scored row is a window's last; a forecaster estimated it with the output before the
    # last, which gives that row itself no weight; an autoencoder with the last, which does
    from anomaly.evaluate.lens import estimating_output
    from anomaly.models.registry import build_network, network_config

    torch.manual_seed(0)
    T, F = 12, 3
    net = build_network(name, network_config(name, {}, F, T)).eval()
    W = effective_weights(net, torch.randn(1, T, F).numpy())[0]  # (T, T, F, F)
    row = estimating_output(net, T)
    on_scored_row = np.abs(W[row, T - 1]).sum()
    if name == "lstm_ae":
        assert row == T - 1 and on_scored_row > 0
    else:
        assert row == T - 2 and on_scored_row == 0


@pytest.mark.parametrize("chunk", [1, 37, 500])
def test_linear_rnn_streams_the_recurrence_row_by_row_in_float32(chunk):
    # h_t = lam h_{t-1} + B u_t summed in row order, however the stream is cut: the filter that
    # runs it must give a plain loop's float32 sums bit for bit
    torch.manual_seed(0)
    net = LinearRNN(LinearRNNConfig(n_features=5, state_size=8)).eval()
    x = torch.randn(2, 500, 5) * 3
    with torch.inference_mode():
        # B u_t as the stream computes it, chunk by chunk (a matrix product rounds by shape)
        v = torch.cat([net.B(x[:, i : i + chunk]) for i in range(0, 500, chunk)], dim=1)
        lam, h, rows = net.decay, torch.zeros(2, 8), []
        for t in range(500):
            h = lam * h + v[:, t]
            rows.append(h)
        expected = x + net.C(torch.stack(rows, dim=1)) + net.D(x)
        got, state = [], None
        for i in range(0, 500, chunk):
            out, state = net.step(x[:, i : i + chunk], state)
            got.append(out)
        assert torch.equal(state, h)
        if chunk == 500:  # the output layers round by batch shape; the state never does
            assert torch.equal(torch.cat(got, dim=1), expected)
