"""ReconstructionSystem: the one LightningModule that trains any reconstruction network."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from anomaly.models.lstm_ae import LSTMAEConfig, LSTMAutoencoder
from anomaly.models.transformer_ae import TransformerAEConfig, TransformerAutoencoder

NETWORKS: dict[str, tuple[type, type]] = {
    "lstm": (LSTMAEConfig, LSTMAutoencoder),
    "transformer": (TransformerAEConfig, TransformerAutoencoder),
}


def build_network(arch: str, net_config: dict) -> nn.Module:
    if arch not in NETWORKS:
        raise ValueError(f"unknown network {arch!r}; choose from {sorted(NETWORKS)}")
    cfg_cls, net_cls = NETWORKS[arch]
    return net_cls(cfg_cls(**net_config))


class ReconstructionSystem(pl.LightningModule):
    """MSE reconstruction of windows with Adam, or forecasting of their last `horizon` steps.

    Receives the network's config, not a built module, and saves it as hyper-parameters, so a
    checkpoint rebuilds alone.
    """

    def __init__(
        self,
        arch: str,
        net_config: dict,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        horizon: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_network(arch, net_config)
        self.loss_fn = nn.MSELoss()
        self.horizon = horizon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, F). With a horizon h, the last h steps are hidden from the network
        (zeroed), so its output there is a forecast from the T - h steps before."""
        if self.horizon:
            x = x.clone()
            x[:, -self.horizon :] = 0.0
        return self.net(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        (x,) = batch
        out = self(x)
        if self.horizon:  # forecasting: only the hidden steps are scored
            out, x = out[:, -self.horizon :], x[:, -self.horizon :]
        loss = self.loss_fn(out, x)
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=stage == "val",
            batch_size=len(x),
        )
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
