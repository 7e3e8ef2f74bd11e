"""LSTM forecaster: reads a flight row by row and predicts the next row from its recurrent state.

The online objective: the residual of row t is measured minus predicted from rows before t only,
and the state carries the whole past forward, so streaming costs one recurrent step per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LSTMForecasterConfig:
    n_features: int = 10
    hidden_size: int = 32  # width of the recurrent state
    num_layers: int = 1
    dropout: float = 0.0  # between stacked layers (num_layers > 1)


class LSTMForecaster(nn.Module):
    """LSTM -> linear head predicting the change to the next row (persistence plus correction).

    Predicting the change rather than the value keeps the easy part (most rows repeat the last
    one: slow channels are forward-filled) out of what the network must learn.
    """

    config_class = LSTMForecasterConfig
    objective = "forecast"

    def __init__(self, cfg: LSTMForecasterConfig):
        super().__init__()
        self.cfg = cfg
        dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.lstm = nn.LSTM(
            cfg.n_features, cfg.hidden_size, cfg.num_layers, batch_first=True, dropout=dropout
        )
        self.head = nn.Linear(cfg.hidden_size, cfg.n_features)

    def forward(self, x: torch.Tensor, state: tuple | None = None) -> torch.Tensor:
        """(B, T, F) -> (B, T, F): output t predicts row t + 1."""
        return self.step(x, state)[0]

    def step(self, x: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        """Like `forward`, from a carried (h, c) state; returns the new state too."""
        out, state = self.lstm(x, state)  # out: (B, T, H)
        return x + self.head(out), state  # (B, T, F)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
