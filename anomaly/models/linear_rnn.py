"""Linear RNN forecaster: the article's starting point, a linear state-space model.

    h_t = A h_{t-1} + B u_t,    o_t = C h_t + D u_t,    prediction of u_{t+1} = u_t + o_t

Unrolled, the prediction is a weighted sum of past inputs whose weights depend on the lag alone:
d o_t / d u_k = C A^(t-k) B for k < t, and C B + D for k = t. A is diagonal with entries in
(0, 1), so the state is stable over any flight and the weights decay with the lag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

BLOCK = 64  # rows whose recurrence is computed as one matrix product


@dataclass
class LinearRNNConfig:
    n_features: int = 10
    state_size: int = 32  # dimension of h


class LinearRNN(nn.Module):
    """Diagonal linear recurrence -> the change to the next row (persistence plus correction)."""

    config_class = LinearRNNConfig
    objective = "forecast"

    def __init__(self, cfg: LinearRNNConfig):
        super().__init__()
        self.cfg = cfg
        # decay rates spread over (0.5, 0.99) at the start: memories from a few rows to seconds
        rates = torch.linspace(0.5, 0.99, cfg.state_size)
        self.logit_decay = nn.Parameter(torch.log(rates / (1 - rates)))
        self.B = nn.Linear(cfg.n_features, cfg.state_size, bias=False)
        self.C = nn.Linear(cfg.state_size, cfg.n_features, bias=True)
        self.D = nn.Linear(cfg.n_features, cfg.n_features, bias=False)

    @property
    def decay(self) -> torch.Tensor:
        """(state_size,) the diagonal of A."""
        return torch.sigmoid(self.logit_decay)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) -> (B, T, F): output t predicts row t + 1 from rows <= t."""
        return self._scan(x, state, BLOCK)[0]

    def step(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """Like `forward`, from a carried state h (B, state_size); returns the new state too.
        Row by row: the recurrence then adds in the same order however a stream is cut into
        chunks (blocks would restart at every chunk and round differently). Scoring only (no
        gradient): each state dimension is one first-order filter, run by scipy in float32, the
        same sums in the same order as a Python loop over rows at a thirtieth of its cost."""
        from scipy.signal import lfilter

        B, T, _ = x.shape
        n = self.cfg.state_size
        h = x.new_zeros(B, n) if state is None else state
        v = self.B(x).detach().numpy()  # (B, T, n)
        lam = self.decay.detach().numpy()
        start = (self.decay * h).detach().numpy()  # lam h_{-1}, as the loop's first sum has it
        hs = np.empty_like(v)
        for k in range(n):
            a = np.array([1.0, -lam[k]], dtype=v.dtype)
            hs[:, :, k] = lfilter(
                np.ones(1, v.dtype), a, v[:, :, k], axis=1, zi=start[:, k : k + 1]
            )[0]
        hs_t = torch.from_numpy(hs)
        last = hs_t[:, -1] if T else h
        return x + self.C(hs_t) + self.D(x), last

    def _scan(self, x: torch.Tensor, state: torch.Tensor | None, block: int):
        B, T, _ = x.shape
        lam = self.decay  # (n,)
        h = x.new_zeros(B, self.cfg.state_size) if state is None else state
        v = self.B(x)  # (B, T, n)
        out = []
        for s in range(0, T, block):
            vb = v[:, s : s + block]  # (B, L, n)
            L = vb.shape[1]
            j = torch.arange(L, device=x.device)
            lag = (j[:, None] - j[None, :]).clamp(min=0).to(x.dtype)  # (L, L)
            kernel = lam[:, None, None] ** lag * (j[:, None] >= j[None, :])  # (n, L, L)
            hb = torch.einsum("nji,bin->bjn", kernel, vb)  # sum_i<=j lam^(j-i) v_i
            hb = hb + lam ** (j[:, None] + 1).to(x.dtype) * h[:, None, :]  # carried state
            out.append(hb)
            h = hb[:, -1]
        hs = torch.cat(out, dim=1)  # (B, T, n)
        return x + self.C(hs) + self.D(x), h

    @torch.no_grad()
    def closed_form_weights(self, T: int) -> torch.Tensor:
        """(T, T, F, F) W[t, k] = d o_t / d u_k = C A^(t-k) B (+ D at k = t), zero for k > t:
        the correction's weight on each past row, from the parameters alone."""
        lag = torch.arange(T)[:, None] - torch.arange(T)[None, :]  # (T, T) t - k
        powers = self.decay[None, None, :] ** lag.clamp(min=0)[..., None]  # (T, T, n)
        W = torch.einsum("fn,tkn,nj->tkfj", self.C.weight, powers, self.B.weight)
        W = W * (lag >= 0)[..., None, None]
        W[torch.arange(T), torch.arange(T)] += self.D.weight
        return W

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
