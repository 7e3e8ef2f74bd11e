"""The article's lens: every deep model as a weighted sum of past inputs, x_t = sum_k W(t, k) u_k.

W[t, k, i, j] = d out[t, i] / d u[k, j], the Jacobian of a network's output on one window with
respect to its input, computed by autograd. A linear RNN's W depends on the lag t - k alone (its
weights are C A^(t-k) B); attention's depends on the content too. Two numbers summarise it:

* the lag-dependence index: the share of the variance of W, across positions and windows, that
  the lag alone explains (1 for a linear RNN, near 0 for weights set purely by content);
* the effective memory: the smallest lag holding 90 % of the weight (the lag profile's mass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from anomaly.models.reconstruction import window_level

MEMORY_SHARE = 0.9
# windows per vectorised backward pass: the (T*F, windows, T, F) gradients of 8 windows stay in
# cache; all 64 of a study cell's lens windows at once took 1.6x as long for the Transformer
VECTOR_CHUNK = 8


def effective_weights(network, windows: np.ndarray) -> np.ndarray:
    """(B, T, F) windows -> W (B, T, T, F_out, F_in) with W[b, t, k] = d out[b, t] / d u[b, k].

    For a forecaster (output = row t plus a correction) W is the Jacobian of the correction:
    the identity that carries row t forward is the same for every model and would swamp what
    each one learned; likewise a centred autoencoder's W leaves out the window mean it adds
    back. One backward pass per output position and channel, summed over windows (windows are
    independent, so the gradient of their sum is each one's gradient); vectorised over
    positions and channels where the network allows, a few windows at a time.
    """
    x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
    was_training = network.training
    network.eval()
    try:
        if any(isinstance(m, nn.LSTM) for m in network.modules()):
            # the LSTM kernel has no batching rule: vectorised backward passes would be slower
            jac = _jacobian_by_rows(network, x)
        else:
            jac = torch.cat([_jacobian_vectorised(network, c) for c in x.split(VECTOR_CHUNK)])
    finally:  # a network being trained goes back to training, whatever happened here
        network.train(was_training)
    B, T, F = x.shape
    jac = jac.reshape(B, T, F, T, F)  # (B, t, i, k, j)
    return jac.permute(0, 1, 3, 2, 4).numpy()


def _correction(network, x: torch.Tensor) -> torch.Tensor:
    out = network(x)
    if getattr(network, "objective", "") == "forecast":
        return out - x
    # a centred autoencoder adds the window's mean back to every output: 1/T on every row for
    # any such network, which would blur what this one learned
    return out - window_level(x, getattr(getattr(network, "cfg", None), "center", False))


def _jacobian_by_rows(network, x: torch.Tensor) -> torch.Tensor:
    """(B, T, F) -> (B, T * F_out, T, F_in): one backward pass per output position and channel."""
    x = x.clone().requires_grad_(True)
    out = _correction(network, x)
    _, T, F = out.shape
    rows = []
    for t in range(T):
        for i in range(F):
            (g,) = torch.autograd.grad(out[:, t, i].sum(), x, retain_graph=True)
            rows.append(g)  # (B, T, F_in)
    return torch.stack(rows, dim=1).detach()


def _jacobian_vectorised(network, x: torch.Tensor) -> torch.Tensor:
    """(B, T, F) -> (B, T * F_out, T, F_in): every backward pass at once."""
    x = x.clone().requires_grad_(True)
    out = _correction(network, x)
    B, T, F = out.shape
    eye = torch.eye(T * F).reshape(T * F, 1, T, F).expand(T * F, B, T, F)
    (g,) = torch.autograd.grad(out, x, grad_outputs=eye, is_grads_batched=True)
    return g.transpose(0, 1).detach()


def weight_map(W: np.ndarray) -> np.ndarray:
    """(B, T, T, F, F) -> (T, T): the Frobenius norm over channel pairs, averaged over windows."""
    return np.sqrt((W**2).sum(axis=(3, 4))).mean(axis=0)


def lag_profile(W: np.ndarray) -> np.ndarray:
    """(B, T, T, F, F) -> (T,): mean over windows and positions t of |W(t, t - lag)|, per lag."""
    norms = np.sqrt((W**2).sum(axis=(3, 4)))  # (B, T, T)
    T = norms.shape[1]
    return np.array(
        [np.mean(np.diagonal(norms, offset=-lag, axis1=1, axis2=2)) for lag in range(T)]
    )


def lag_dependence_index(W: np.ndarray) -> float:
    """Share of the variance of W over windows and causal positions (k <= t) explained by the
    lag t - k, per channel pair: 1 - within-lag variance / total variance."""
    B, T = W.shape[:2]
    t, k = np.tril_indices(T)
    flat = W[:, t, k].reshape(B, len(t), -1)  # (B, causal pairs, F * F)
    total = ((flat - flat.mean(axis=(0, 1), keepdims=True)) ** 2).sum()
    if not np.isfinite(total) or total <= 0:  # no weight, or a broken map: nothing to explain
        return float("nan")
    within = 0.0
    for ell in range(T):
        sel = flat[:, (t - k) == ell]  # (B, pairs at this lag, F * F)
        within += ((sel - sel.mean(axis=(0, 1), keepdims=True)) ** 2).sum()
    return float(1.0 - within / total)


def effective_memory(profile: np.ndarray, share: float = MEMORY_SHARE) -> float:
    """The smallest lag (rows) holding `share` of the lag profile's weight; NaN for a profile
    with no weight or a non-finite one (a number there would read as a real memory)."""
    total = profile.sum()
    if not np.isfinite(total) or total <= 0:
        return float("nan")
    return float(np.searchsorted(np.cumsum(profile) / total, share))


@dataclass
class Lens:
    """What one model looks at, over a set of windows."""

    weight_map: np.ndarray  # (T, T)
    lag_profile: np.ndarray  # (T,)
    lag_dependence_index: float
    effective_memory_rows: float  # NaN for a map with no weight


def lens(network, windows: np.ndarray) -> Lens:
    W = effective_weights(network, windows)
    profile = lag_profile(W)
    return Lens(weight_map(W), profile, lag_dependence_index(W), effective_memory(profile))


def has_attention(network) -> bool:
    """Whether a network has self-attention encoder layers (the Transformers; an LSTM
    autoencoder's `encoder` is an LSTM)."""
    return isinstance(getattr(network, "encoder", None), torch.nn.TransformerEncoder)


def attention_maps(network, windows: np.ndarray) -> list[np.ndarray]:
    """Per encoder layer of a Transformer network, its attention weights (B, heads, T, T) on the
    windows: the layers' own modules, asked for the weights they otherwise discard."""
    layers = list(network.encoder.layers)
    captured: list[np.ndarray] = []
    originals = []
    for layer in layers:
        attn = layer.self_attn
        original = attn.forward

        def forward(*args, _original=original, **kwargs):
            kwargs["need_weights"], kwargs["average_attn_weights"] = True, False
            out, weights = _original(*args, **kwargs)
            captured.append(weights.detach().numpy())
            return out, weights

        originals.append(attn)
        attn.forward = forward
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # the fused inference kernel would bypass the modules' forward and never report weights
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            network(torch.as_tensor(np.asarray(windows, dtype=np.float32)))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for attn in originals:
            del attn.forward  # the instance attribute; the class's forward shows through again
    return captured


def attention_rollout(maps: list[np.ndarray]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): the layers' head-averaged maps, each mixed with
    the residual path (0.5 I + 0.5 A, rows renormalised), multiplied through. (B, T, T)."""
    rollout = None
    for a in maps:
        mean = a.mean(axis=1)  # (B, T, T)
        T = mean.shape[-1]
        mixed = 0.5 * np.eye(T) + 0.5 * mean
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout


def network_of(pipeline):
    """The trained network of a pipeline's deep model, or None for the other models."""
    return getattr(pipeline.detector, "network_", None)


def window_at(pipeline, values: np.ndarray, row: int) -> np.ndarray:
    """The scaled window (T, F) ending on `row` of a flight's raw rows: the one that scored it."""
    T = pipeline.window_len
    if row < T - 1:
        raise ValueError(f"row {row} has no full window before it ({T} rows)")
    return pipeline.scaler.transform(np.asarray(values[row - T + 1 : row + 1], np.float32))


def flight_windows(pipeline, flights, per_flight: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Windows of normal flight (evenly spread over each flight's normal part) and windows that
    hold a fault onset (ending half a window after it), for the lens of a trained model."""
    T = pipeline.window_len
    normal, onset = [], []
    for f in flights:
        n_normal = len(f.normal_prefix())
        if n_normal >= T:
            for row in np.linspace(T - 1, n_normal - 1, per_flight).astype(int):
                normal.append(window_at(pipeline, f.values, int(row)))
        if f.onset_index is not None and f.onset_index + T // 2 < f.n_rows:
            row = max(f.onset_index + T // 2, T - 1)
            onset.append(window_at(pipeline, f.values, row))
    empty = np.zeros((0, T, len(pipeline.channels)), np.float32)
    return (np.stack(normal) if normal else empty), (np.stack(onset) if onset else empty)


def estimating_output(network, window_len: int) -> int:
    """The output row of a window that estimates its last row: a reconstruction's last output, a
    forecaster's one before it (output t predicts row t + 1). An autoencoder that scores a row by
    the error of several rows (`error_rows`) reads the last of them here."""
    return window_len - 2 if getattr(network, "objective", "") == "forecast" else window_len - 1
