"""Transformer forecaster: causal self-attention over a window predicts each next row.

The online objective as in the LSTM forecaster, but with no state: each row's prediction is
recomputed from the window of rows before it, and a causal mask keeps every position from
seeing later rows. Attention is order-blind: the positional encoding is its only notion of time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from anomaly.errors import UserError
from anomaly.models.transformer_ae import PositionalEncoding


@dataclass
class TransformerForecasterConfig:
    n_features: int = 10
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2
    dim_feedforward: int = 64
    dropout: float = 0.0
    positional: str = "sinusoidal"  # "sinusoidal" | "learned" | "none"
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
        self.head = nn.Linear(cfg.d_model, cfg.n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, F): output t predicts row t + 1 from rows <= t."""
        T = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device)
        h = self.encoder(self.pos(self.in_proj(x)), mask=mask, is_causal=True)  # (B, T, d)
        return x + self.head(h)  # (B, T, F)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
