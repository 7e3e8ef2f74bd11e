"""The LightningDataModule that serves prepared windows to the Trainer (training only)."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class WindowDataModule(pl.LightningDataModule):
    """Serves prepared windows; shuffling is seeded so a run repeats exactly."""

    def __init__(
        self,
        train_windows: np.ndarray,
        val_windows: np.ndarray,
        batch_size: int = 128,
        seed: int = 0,
    ):
        super().__init__()
        self.train_windows, self.val_windows = train_windows, val_windows
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self) -> DataLoader:
        ds = TensorDataset(torch.from_numpy(self.train_windows))
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=gen)

    def val_dataloader(self) -> DataLoader:
        windows = (
            self.val_windows if len(self.val_windows) else self.train_windows[: self.batch_size]
        )
        return DataLoader(TensorDataset(torch.from_numpy(windows)), batch_size=1024)
