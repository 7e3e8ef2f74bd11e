"""The LightningDataModule that serves prepared windows to the Trainer (training only)."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, RandomSampler, TensorDataset


class WindowDataModule(pl.LightningDataModule):
    """Serves prepared windows; shuffling is seeded so a run repeats exactly.

    With `steps_per_epoch`, an epoch is that many batches drawn from back-to-back reshuffled
    passes over the windows (without replacement within a pass): a small set is repeated, a large
    one cut, each epoch starting a fresh pass.
    """

    def __init__(
        self,
        train_windows: np.ndarray,
        val_windows: np.ndarray,
        batch_size: int = 128,
        seed: int = 0,
        steps_per_epoch: int | None = None,
    ):
        super().__init__()
        self.train_windows, self.val_windows = train_windows, val_windows
        self.batch_size, self.seed, self.steps_per_epoch = batch_size, seed, steps_per_epoch

    def train_dataloader(self) -> DataLoader:
        ds = TensorDataset(torch.from_numpy(self.train_windows))
        gen = torch.Generator().manual_seed(self.seed)
        if self.steps_per_epoch is None:
            return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=gen)
        # each batch full, so an epoch is exactly steps_per_epoch optimizer steps
        batch = min(self.batch_size, len(ds))
        sampler = RandomSampler(ds, num_samples=self.steps_per_epoch * batch, generator=gen)
        return DataLoader(ds, batch_size=batch, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        windows = (
            self.val_windows if len(self.val_windows) else self.train_windows[: self.batch_size]
        )
        return DataLoader(TensorDataset(torch.from_numpy(windows)), batch_size=1024)
