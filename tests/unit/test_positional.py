"""The learned position table is sized to the window and every parameter counted is used."""

from __future__ import annotations

import pytest
import torch

from anomaly.errors import UserError
from anomaly.models.registry import build_network, count_params, network_config


@pytest.mark.parametrize("name, tables", [("transformer", 1), ("transformer_ae", 2)])
def test_learned_table_has_window_len_rows_and_is_counted_once(name, tables):
    F, T = 5, 24
    net = build_network(name, network_config(name, {"positional": "learned"}, F, T))
    d = net.cfg.d_model
    learned = [m.table for m in net.modules() if getattr(m, "kind", "") == "learned"]
    assert len(learned) == tables and all(t.shape == (T, d) for t in learned)
    plain = count_params(name, {"positional": "sinusoidal"}, F, T)  # a table, not parameters
    assert count_params(name, {"positional": "learned"}, F, T) == plain + tables * T * d
    # n_params counts only what the forward pass uses: every parameter gets a gradient
    net(torch.randn(3, T, F)).pow(2).sum().backward()
    unused = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not unused


@pytest.mark.parametrize("name", ["transformer", "transformer_ae"])
@pytest.mark.parametrize("positional", ["none", "sinusoidal", "learned", "alibi"])
def test_scoring_computes_what_training_computed(name, positional):
    # eval mode under no_grad is how every window is scored; with dropout 0 it must give the
    # training-mode output (PyTorch's inference fast path once dropped ALiBi's per-head mask)
    torch.manual_seed(0)
    config = network_config(name, {"positional": positional, "dropout": 0.0}, 5, 24)
    if name == "transformer_ae" and positional in ("none", "alibi"):
        # its decoder's rows are one latent copied: without position vectors every row would
        # be rebuilt as the same vector, so the choice is refused
        with pytest.raises(UserError, match="no positions"):
            build_network(name, config)
        return
    net = build_network(name, config)
    x = torch.randn(3, 24, 5)
    net.train()
    with torch.no_grad():
        trained = net(x)
    net.eval()
    with torch.no_grad():
        scored = net(x)
    assert torch.allclose(scored, trained, atol=1e-5)
    assert torch.backends.mha.get_fastpath_enabled()  # switched back on after the call


@pytest.mark.parametrize("kind", ["none", "alibi"])
@pytest.mark.parametrize("causal", [False, True])
def test_the_attention_mask_is_built_on_the_inputs_device(kind, causal):
    # built on the CPU whatever the inputs, it stopped a Transformer autoencoder and an ALiBi
    # forecaster training on a GPU (the meta device stands in for one here)
    from anomaly.models.positional import attention_mask

    mask = attention_mask(kind, 2, 6, causal, torch.device("meta"))
    assert mask.device.type == "meta"
    assert attention_mask(kind, 2, 6, causal).device.type == "cpu"


@pytest.mark.parametrize("name", ["lstm", "transformer", "linear_rnn"])
def test_a_forecaster_needs_a_window_of_two_rows(name):
    # with one row there is nothing to predict from: it trained on a NaN loss without a word
    with pytest.raises(UserError, match="window.window_len 1: model .* needs 2 rows or more"):
        network_config(name, {}, 3, 1)
    network_config("lstm_ae", {}, 3, 1)  # an autoencoder reconstructs a row from itself
