"""Transformer autoencoder with the same bottleneck as the LSTM-AE, so only the sequence mixer differs.

Attention is order-blind: the positional encoding (anomaly.models.positional) is the model's
only notion of time, which is what the study's positional-encoding arms vary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from anomaly.errors import UserError
from anomaly.models.positional import PositionalEncoding, attention_mask, batched, encode
from anomaly.models.reconstruction import check_settings, window_level


@dataclass
class TransformerAEConfig:
    n_features: int = 10
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2  # encoder layers; the decoder has as many
    dim_feedforward: int = 64
    latent_size: int = 16
    dropout: float = 0.0  # small data, short training: dropout only slows convergence here
    positional: str = "sinusoidal"  # "sinusoidal" | "learned": the decoder needs positions
    window_len: int = 32  # rows of the position table: exactly the window, so every row is used
    center: bool = True  # rebuild the window around its own mean (models/reconstruction.py)
    error_rows: int | None = 8  # the window's last rows whose error scores row t; None: all


class TransformerAutoencoder(nn.Module):
    """Input projection + PE -> encoder layers -> mean pool -> latent -> broadcast + PE -> decoder
    layers -> reconstruction head."""

    config_class = TransformerAEConfig
    objective = "reconstruct"

    def __init__(self, cfg: TransformerAEConfig):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise UserError(f"d_model {cfg.d_model} must be divisible by n_heads {cfg.n_heads}")
        if cfg.positional not in ("sinusoidal", "learned"):
            # the decoder starts from one latent copied to every row: without position vectors
            # its rows are identical and every row is rebuilt as the same vector
            raise UserError(
                f"transformer_ae: positional {cfg.positional!r} gives its decoder no positions; "
                "use 'sinusoidal' or 'learned'"
            )
        check_settings(cfg.center, cfg.error_rows, cfg.window_len)
        self.cfg = cfg
        self.in_proj = nn.Linear(cfg.n_features, cfg.d_model)
        self.pos_enc = PositionalEncoding(cfg.positional, cfg.d_model, cfg.window_len)
        self.pos_dec = PositionalEncoding(cfg.positional, cfg.d_model, cfg.window_len)

        def layers() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(
                cfg.d_model,
                cfg.n_heads,
                cfg.dim_feedforward,
                cfg.dropout,
                batch_first=True,
                norm_first=True,
            )
            return nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)

        self.encoder = layers()
        self.to_latent = nn.Linear(cfg.d_model, cfg.latent_size)
        self.from_latent = nn.Linear(cfg.latent_size, cfg.d_model)
        self.decoder = layers()
        self.head = nn.Linear(cfg.d_model, cfg.n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape  # (B, T, F)
        level = window_level(x, self.cfg.center)  # (B, 1, F)
        mask = batched(attention_mask(self.cfg.positional, self.cfg.n_heads, T, False, x.device), B)
        h = encode(self.encoder, self.pos_enc(self.in_proj(x - level)), mask)  # (B, T, d)
        z = self.to_latent(h.mean(dim=1))  # (B, latent)
        seed = self.from_latent(z).unsqueeze(1).expand(B, T, -1)  # (B, T, d)
        return self.head(encode(self.decoder, self.pos_dec(seed), mask)) + level  # (B, T, F)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
