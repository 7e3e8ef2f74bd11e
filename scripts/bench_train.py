"""Training throughput per model and the Lightning loop's overhead against a bare PyTorch loop.

Same network, same windows, same batch size and epochs; the bare loop does what the Lightning
loop does per step (forward, MSE, backward, gradient clipping, Adam step) and a validation pass
per epoch. Prints windows per second and the overhead ratio. Not a test: timings vary by machine.
"""

from __future__ import annotations

import time

import numpy as np
import pytorch_lightning as pl
import torch

from anomaly.data.datamodule import WindowDataModule
from anomaly.models.system import ReconstructionSystem

N_WINDOWS, T, F, BATCH, EPOCHS = 8192, 32, 10, 128, 3


def _loss(system: ReconstructionSystem, x: torch.Tensor) -> torch.Tensor:
    """The Lightning module's own objective: a forecaster's output t against row t + 1."""
    out = system(x)
    if system.net.objective == "forecast":
        out, x = out[:, :-1], x[:, 1:]
    return torch.nn.functional.mse_loss(out, x)


def bare_loop(arch: str, windows: np.ndarray, val: np.ndarray) -> float:
    torch.manual_seed(0)
    system = ReconstructionSystem(arch, {"n_features": F})
    opt = system.configure_optimizers()
    dm = WindowDataModule(windows, val, BATCH, 0)
    t0 = time.perf_counter()
    for _ in range(EPOCHS):
        system.train()
        for (x,) in dm.train_dataloader():
            loss = _loss(system, x)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(system.parameters(), 1.0)
            opt.step()
        system.eval()
        with torch.no_grad():
            for (x,) in dm.val_dataloader():
                _loss(system, x)
    return time.perf_counter() - t0


def lightning_loop(arch: str, windows: np.ndarray, val: np.ndarray) -> float:
    pl.seed_everything(0, verbose=False)
    system = ReconstructionSystem(arch, {"n_features": F})
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        num_sanity_val_steps=0,
    )
    t0 = time.perf_counter()
    trainer.fit(system, datamodule=WindowDataModule(windows, val, BATCH, 0))
    return time.perf_counter() - t0


def main() -> None:
    rng = np.random.default_rng(0)
    windows = rng.normal(size=(N_WINDOWS, T, F)).astype(np.float32)
    val = rng.normal(size=(1024, T, F)).astype(np.float32)
    print(
        f"{N_WINDOWS} windows of {T}x{F}, batch {BATCH}, {EPOCHS} epochs, {torch.get_num_threads()} threads"
    )
    print(f"{'model':<12}{'bare s':>9}{'lightning s':>13}{'windows/s':>11}{'overhead':>10}")
    for arch in ("lstm", "transformer"):
        bare_loop(arch, windows[:512], val[:128])  # warm-up
        bare = min(bare_loop(arch, windows, val) for _ in range(2))
        light = min(lightning_loop(arch, windows, val) for _ in range(2))
        rate = N_WINDOWS * EPOCHS / light
        print(f"{arch:<12}{bare:>9.2f}{light:>13.2f}{rate:>11.0f}{(light / bare - 1):>10.1%}")


if __name__ == "__main__":
    main()
