"""ReconstructionSystem: the one LightningModule that trains any network of the registry."""

from __future__ import annotations

import logging
import math
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason
from torch import nn

from anomaly.models.registry import build_network

# Lightning sets its own loggers to INFO when imported: its banner (GPU/TPU availability, tips)
# is noise on a CPU tool, in every process a sweep starts; its warnings still show
for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class ReconstructionSystem(pl.LightningModule):
    """Trains any network of the registry with MSE and Adam: a forecaster on each next row of a
    window (output t against row t + 1), an autoencoder on the window itself.

    Receives the network's config, not a built module, and saves it as hyper-parameters, so a
    checkpoint rebuilds alone.
    """

    def __init__(
        self,
        arch: str,
        net_config: dict,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = build_network(arch, net_config)
        self.loss_fn = nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, F)."""
        return self.net(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        (x,) = batch
        out = self(x)
        if self.net.objective == "forecast":
            out, x = out[:, :-1], x[:, 1:]  # output t predicts row t + 1
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
        opt = torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        warmup = self.hparams.warmup_steps
        if not warmup:
            return opt
        # linear warm-up of the learning rate over the first optimizer steps, then constant
        ramp = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": ramp, "interval": "step"}}


class Plateau(EarlyStopping):
    """Early stopping on val/loss at a plateau: progress is measured relative to the best loss,
    so one rule fits losses of any scale, and training never stops while the learning rate is
    still warming up (a model that stalled then stops as soon as the ramp is over).

    Relative progress is judged on log(val/loss): a fall of more than -log(1 - min_improvement)
    there is a fall of more than min_improvement of the best loss. Small falls add up: progress
    is measured from the best loss, not from the previous epoch.

    Parameters
    ----------
    patience : epochs without progress before stopping.
    min_improvement : relative fall of the best loss that counts as progress, in [0, 1).
    warmup_steps : optimizer steps of the learning-rate warm-up, during which no stop is made.
    """

    def __init__(self, patience: int, min_improvement: float = 0.0, warmup_steps: int = 0):
        if not 0 <= min_improvement < 1:
            raise ValueError(f"min_improvement must be in [0, 1), got {min_improvement!r}")
        super().__init__(
            "val/loss", patience=patience, mode="min", min_delta=-math.log1p(-min_improvement)
        )
        self.warmup_steps = warmup_steps
        self._trainer = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._trainer = trainer

    def _evaluate_stopping_criteria(self, current: torch.Tensor):
        stop, reason = super()._evaluate_stopping_criteria(torch.log(current.clamp_min(1e-12)))
        warming = self._trainer is not None and self._trainer.global_step < self.warmup_steps
        if stop and warming and self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED  # a non-finite loss still stops
            return False, None
        return stop, reason


class TimedCheckpoint(ModelCheckpoint):
    """Keeps the best weights on disk, counting the seconds spent writing them, so a model's
    cost can be read as fit, validation and checkpoint time apart."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seconds = 0.0

    def _save_checkpoint(self, trainer, filepath):
        t0 = time.perf_counter()
        super()._save_checkpoint(trainer, filepath)
        self.seconds += time.perf_counter() - t0


class History(Callback):
    """Per-epoch train and validation loss, and where the time went: optimizer steps (forward,
    backward, update) apart from validation passes, so a model's cost is not inflated by how
    often it is validated or checkpointed."""

    def __init__(self):
        self.rows: list[dict] = []
        self.fit_seconds = 0.0
        self.validate_seconds = 0.0
        self._t0 = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.fit_seconds += time.perf_counter() - self._t0

    def on_validation_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        self.validate_seconds += time.perf_counter() - self._t0

    def on_train_epoch_end(self, trainer, pl_module):
        m = trainer.callback_metrics
        # cumulative optimizer-step time: how long a model took to reach each validation loss
        row = {"epoch": trainer.current_epoch, "fit_seconds": self.fit_seconds}
        for key in ("train/loss", "val/loss"):
            if key in m:
                row[key.replace("/", "_")] = float(m[key])
        self.rows.append(row)
