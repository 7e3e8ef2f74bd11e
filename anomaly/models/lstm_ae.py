"""LSTM autoencoder: a window is squeezed through a latent vector and unrolled back by recurrence."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from anomaly.models.reconstruction import check_settings, window_level


@dataclass
class LSTMAEConfig:
    n_features: int = 10
    hidden_size: int = 32  # width of encoder and decoder LSTMs
    latent_size: int = 16  # bottleneck: what the window must be summarised into
    num_layers: int = 1
    center: bool = True  # rebuild the window around its own mean (models/reconstruction.py)
    error_rows: int | None = None  # the window's last rows whose error scores row t; None: all


class LSTMAutoencoder(nn.Module):
    """Encoder LSTM -> last hidden state -> latent -> repeated over time -> decoder LSTM -> head.

    The decoder is told nothing about position; recurrence alone orders the reconstruction.
    """

    config_class = LSTMAEConfig
    objective = "reconstruct"

    def __init__(self, cfg: LSTMAEConfig):
        super().__init__()
        check_settings(cfg.center, cfg.error_rows)
        self.cfg = cfg
        self.encoder = nn.LSTM(cfg.n_features, cfg.hidden_size, cfg.num_layers, batch_first=True)
        self.to_latent = nn.Linear(cfg.hidden_size, cfg.latent_size)
        self.from_latent = nn.Linear(cfg.latent_size, cfg.hidden_size)
        self.decoder = nn.LSTM(cfg.hidden_size, cfg.hidden_size, cfg.num_layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden_size, cfg.n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape  # (B, T, F)
        level = window_level(x, self.cfg.center)  # (B, 1, F)
        _, (h, _) = self.encoder(x - level)  # h: (num_layers, B, H)
        z = self.to_latent(h[-1])  # (B, latent)
        seed = self.from_latent(z).unsqueeze(1).expand(B, T, -1)  # (B, T, H)
        out, _ = self.decoder(seed)  # (B, T, H)
        return self.head(out) + level  # (B, T, F)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
