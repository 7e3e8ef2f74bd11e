"""Transformer forecaster: causal self-attention over a window predicts each next row.

The online objective as in the LSTM forecaster, but with no state: each row's prediction is
recomputed from the window of rows before it, and a causal mask keeps every position from
seeing later rows. Attention is order-blind: the positional encoding is its only notion of time,
and the readout says how the rows up to t are summarised into the prediction of row t + 1 (the
last row's state, their mean, or an attention pool): the study varies both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from anomaly.errors import UserError
from anomaly.models.positional import PositionalEncoding, attention_mask, batched, encode

READOUTS = ("last", "mean", "attention")


@dataclass
class TransformerForecasterConfig:
    n_features: int = 10
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2
    dim_feedforward: int = 64
    dropout: float = 0.0
    positional: str = "sinusoidal"  # "none" | "sinusoidal" | "learned" | "alibi"
    readout: str = "last"  # "last" | "mean" | "attention": the rows up to t -> prediction
    window_len: int = 32  # rows of the position table: the window, every row used


class TransformerForecaster(nn.Module):
    """Input projection + positional encoding -> causal encoder layers -> head predicting the
    change to the next row."""

    config_class = TransformerForecasterConfig
    objective = "forecast"

    def __init__(self, cfg: TransformerForecasterConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise UserError(f"d_model {cfg.d_model} must be divisible by n_heads {cfg.n_heads}")
        if cfg.readout not in READOUTS:
            raise UserError(f"readout must be one of {', '.join(READOUTS)}, got {cfg.readout!r}")
        self.cfg = cfg
        self.in_proj = nn.Linear(cfg.n_features, cfg.d_model)
        self.pos = PositionalEncoding(cfg.positional, cfg.d_model, cfg.window_len)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.n_heads,
            cfg.dim_feedforward,
            cfg.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        if cfg.readout == "attention":
            self.query = nn.Linear(cfg.d_model, 1)  # one learned score per row
        self.head = nn.Linear(cfg.d_model, cfg.n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, F): output t predicts row t + 1 from rows <= t."""
        B, T, _ = x.shape
        mask = attention_mask(self.cfg.positional, self.cfg.n_heads, T, True, x.device)
        h = encode(self.encoder, self.pos(self.in_proj(x)), batched(mask, B))  # (B, T, d)
        return x + self.head(self._readout(h))  # (B, T, F)

    def _readout(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, d) per-row states -> (B, T, d): at each t, a summary of rows <= t."""
        if self.cfg.readout == "last":
            return h
        T = h.shape[1]
        if self.cfg.readout == "mean":
            return h.cumsum(dim=1) / torch.arange(1, T + 1, device=h.device)[None, :, None]
        scores = self.query(h).squeeze(-1)  # (B, T): how much each row counts
        later = torch.ones(T, T, dtype=torch.bool, device=h.device).triu(1)
        weights = scores[:, None, :].masked_fill(later, float("-inf")).softmax(dim=-1)  # (B, T, T)
        return weights @ h

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
