"""DeepDetector: the Detector contract around a plain network, trained by ReconstructionSystem.

A network declares its `objective`: "forecast" (output t predicts row t + 1 from rows <= t: the
online objective) or "reconstruct" (output t reproduces row t from the whole window). Lightning is
imported inside `fit` only: loading and scoring run the network as a plain `nn.Module`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anomaly.models.base import Detector
from anomaly.models.reconstruction import check_settings, row_error
from anomaly.models.registry import build_network, network_config

log = logging.getLogger(__name__)
INFER_BATCH = 2048


def residual_map(network, x: torch.Tensor) -> torch.Tensor:
    """(B, T, F) windows -> (B, T, F) measured minus expected; NaN at a forecaster's first step,
    which nothing in the window predicts."""
    out = network(x)
    if network.objective == "reconstruct":
        return x - out
    r = torch.full_like(x, float("nan"))
    r[:, 1:] = x[:, 1:] - out[:, :-1]
    return r


# what an autoencoder saved before its network config was kept whole computed: its settings of
# then, which are no longer the defaults
SAVED_BEFORE_DEFAULTS_KEPT = {
    "lstm_ae": {"center": False, "error_rows": 1},
    "transformer_ae": {"center": False, "error_rows": 1},
}

_THREADS = threading.Lock()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: a recurrent step multiplies one row by the recurrent
    weights, far too small to split, and splitting it costs more than it saves (the LSTM
    forecaster streams 0.98 us a row on one thread against 1.65 on two of the 2-core machine,
    bit for bit the same). The setting is the process's, so streams in several threads take
    turns, and the caller's setting is restored after."""
    with _THREADS:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


class RecurrentResiduals:
    """Streams rows through a stateful forecaster: the residual of row t is row t minus the
    prediction made from every row before it, the state carried across chunks, so one row costs
    one recurrent step and chunked streaming equals one pass.

    Rows before `min_context` (the window length, as the windowed models have) get no residual.
    """

    def __init__(self, network, min_context: int):
        self.network, self.min_context = network, min_context
        self.state = None
        self.next_pred: torch.Tensor | None = None  # (F,) prediction of the next row
        self.seen = 0

    @torch.inference_mode()
    def feed(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, F) scaled rows -> residuals (n, F) and fresh (n,) bool."""
        n, F = scaled.shape
        if n == 0:
            return np.zeros((0, F), np.float32), np.zeros(0, bool)
        x = torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))[None]  # (1, n, F)
        with one_thread():
            out, self.state = self.network.step(x, self.state)  # out[0, i] predicts row i + 1
        preds = torch.empty_like(x[0])
        preds[1:] = out[0, :-1]
        preds[0] = self.next_pred if self.next_pred is not None else float("nan")
        self.next_pred = out[0, -1].clone()
        rows = np.arange(self.seen, self.seen + n)
        self.seen += n
        return (x[0] - preds).numpy(), rows >= self.min_context


def best_epoch(val_losses: list[float]) -> float:
    """The epoch whose weights the checkpoint kept: a diverged epoch's NaN loss is never the
    best (np.argmin returns the first NaN)."""
    if not val_losses:
        return float("nan")
    return float(np.argmin(np.nan_to_num(np.asarray(val_losses, float), nan=np.inf)))


class DeepDetector(Detector):
    """A network trained with Lightning: early stopping on validation loss, best weights kept.

    Parameters
    ----------
    arch : registry name of the network ('lstm', 'transformer', ...).
    net : network config overrides (hidden_size, d_model, positional, ...).
    max_epochs, patience : epoch cap and early-stopping patience on val/loss.
    min_improvement : relative fall of val/loss that counts as progress (0: any fall).
    batch_size, lr, grad_clip : optimisation.
    warmup_steps : optimizer steps over which the learning rate ramps up linearly (0: none).
    steps_per_epoch : optimizer steps per epoch (None: one pass over the windows).
    random_state : seeds weights and shuffling.
    progress : show Lightning's progress bar.
    accelerator : Lightning's accelerator for training ('cpu', 'gpu', 'auto'); scoring runs on CPU.
    """

    def __init__(
        self,
        arch: str = "lstm",
        net: dict | None = None,
        max_epochs: int = 30,
        patience: int = 4,
        min_improvement: float = 0.0,
        batch_size: int = 128,
        lr: float = 1e-3,
        grad_clip: float = 1.0,
        warmup_steps: int = 0,
        steps_per_epoch: int | None = None,
        random_state: int = 0,
        progress: bool = False,
        accelerator: str = "cpu",
    ):
        self.arch = arch
        self.net = net
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_improvement = min_improvement
        self.batch_size = batch_size
        self.lr = lr
        self.grad_clip = grad_clip
        self.warmup_steps = warmup_steps
        self.steps_per_epoch = steps_per_epoch
        self.random_state = random_state
        self.progress = progress
        self.accelerator = accelerator

    def fit(self, windows: np.ndarray, val_windows: np.ndarray | None = None) -> DeepDetector:
        import pytorch_lightning as pl

        from anomaly.data.datamodule import WindowDataModule
        from anomaly.models.system import History, Plateau, ReconstructionSystem, TimedCheckpoint

        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be None or >= 1, got {self.steps_per_epoch!r}")
        windows = self._check_windows(windows)
        val = windows[:0] if val_windows is None else self._check_windows(val_windows)
        if not len(val):
            log.warning(
                "no validation windows: early stopping and the kept weights are judged on "
                "training windows, which cannot show overfitting"
            )
        pl.seed_everything(self.random_state, workers=True, verbose=False)
        _, window_len, n_features = windows.shape
        system = ReconstructionSystem(
            self.arch,
            network_config(self.arch, self.net, n_features, window_len),
            lr=self.lr,
            warmup_steps=self.warmup_steps,
        )
        net_cfg = system.net.cfg  # an LSTM autoencoder's config does not know the window
        check_settings(
            getattr(net_cfg, "center", False), getattr(net_cfg, "error_rows", 1), window_len
        )
        dm = WindowDataModule(
            windows, val, self.batch_size, self.random_state, self.steps_per_epoch
        )
        history = History()
        with tempfile.TemporaryDirectory() as ckpt_dir:
            best = TimedCheckpoint(
                dirpath=ckpt_dir, monitor="val/loss", mode="min", save_weights_only=True
            )
            trainer = pl.Trainer(
                max_epochs=self.max_epochs,
                accelerator=self.accelerator,
                devices=1,
                deterministic=True,
                gradient_clip_val=self.grad_clip,
                callbacks=[
                    Plateau(self.patience, self.min_improvement, self.warmup_steps),
                    best,
                    history,
                ],
                logger=False,
                enable_progress_bar=self.progress,
                enable_model_summary=False,
                num_sanity_val_steps=0,
            )
            with warnings.catch_warnings():
                # a tiny training set has fewer batches than the logging interval; nothing to act on
                warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
                warnings.filterwarnings("ignore", message=".*does not have many workers.*")
                # raised inside Lightning itself against newer torch; nothing a user can change
                warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
                try:
                    trainer.fit(system, datamodule=dm)
                except SystemExit:
                    # Lightning answers Ctrl-C or SIGTERM with sys.exit(1) and ignores SIGINT
                    # from then on: give the command its interrupt back (exit 130, clean-up)
                    if not trainer.interrupted:
                        raise
                    _restore_sigint()
                    raise KeyboardInterrupt from None
            if best.best_model_path:
                t0 = time.perf_counter()
                ckpt = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
                system.load_state_dict(ckpt["state_dict"])
                best.seconds += time.perf_counter() - t0
        self.network_ = system.net.cpu().eval()
        self.history_ = history.rows
        self.epochs_ = len(history.rows)
        val_losses = [r.get("val_loss", np.inf) for r in history.rows]
        self.summary_ = {
            "fit_seconds": history.fit_seconds,
            "validate_seconds": history.validate_seconds,
            "checkpoint_seconds": best.seconds,  # writing the best weights, reloading them
            "epochs": float(self.epochs_),
            "steps": float(trainer.global_step),
            "best_epoch": best_epoch(val_losses),
            # early stopping never fired: the model may still have been improving
            "hit_max_epochs": float(self.epochs_ >= self.max_epochs),
        }
        self.n_features_in_, self.window_len_ = n_features, window_len
        self.n_params_ = self.network_.n_params()
        return self

    @torch.inference_mode()
    def residuals(self, windows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        windows = self._check_windows(windows)
        out = np.empty_like(windows)
        for i in range(0, len(windows), INFER_BATCH):
            x = torch.from_numpy(windows[i : i + INFER_BATCH])
            out[i : i + INFER_BATCH] = residual_map(self.network_, x).numpy()
        return out

    @property
    def error_rows(self) -> int | None:
        """The window's last rows whose error scores its last row: an autoencoder's setting
        (anomaly.models.reconstruction), 1 for the forecasters."""
        self._check_fitted()
        return getattr(self.network_.cfg, "error_rows", 1)

    @property
    def signed_residuals(self) -> bool:
        return self.error_rows == 1

    def last_residuals(self, windows: np.ndarray) -> np.ndarray:
        return row_error(self.residuals(windows), self.error_rows)

    def recurrent_stream(self, min_context: int) -> RecurrentResiduals | None:
        self._check_fitted()
        if hasattr(self.network_, "step"):
            return RecurrentResiduals(self.network_, min_context)
        return None

    def training_history(self) -> list[dict]:
        return list(getattr(self, "history_", []))

    def training_summary(self) -> dict[str, float]:
        return dict(getattr(self, "summary_", {}))

    def save(self, folder: Path) -> None:
        self._check_fitted()
        torch.save(self.network_.state_dict(), Path(folder) / "weights.pt")
        meta = {
            "n_features_in": self.n_features_in_,
            "window_len": self.window_len_,
            "epochs": self.epochs_,
            "history": self.history_,
            "summary": self.summary_,
            # every setting of the network, defaults included: a later default never changes
            # what a saved model computes
            "network": dataclasses.asdict(self.network_.cfg),
        }
        # a diverged epoch's loss is NaN: null in strict JSON, NaN again on load
        (Path(folder) / "deep.json").write_text(json.dumps(_nulls(meta), allow_nan=False))

    @classmethod
    def load(cls, folder: Path, params: dict) -> DeepDetector:
        det = cls(**params)
        meta = json.loads((Path(folder) / "deep.json").read_text())
        det.n_features_in_, det.window_len_ = meta["n_features_in"], meta["window_len"]
        network = meta.get("network")
        if network is None:  # saved before the whole config was kept: its defaults then
            net = {**SAVED_BEFORE_DEFAULTS_KEPT.get(det.arch, {}), **(det.net or {})}
            network = network_config(det.arch, net, det.n_features_in_, det.window_len_)
        det.network_ = build_network(det.arch, network)
        # weights only: a state_dict of tensors, nothing else is unpickled
        state = torch.load(Path(folder) / "weights.pt", map_location="cpu", weights_only=True)
        det.network_.load_state_dict(state)
        det.network_.eval()
        det.n_params_ = det.network_.n_params()
        det.epochs_ = meta["epochs"]
        det.history_ = [_nans(row) for row in meta["history"]]
        det.summary_ = _nans(meta["summary"])
        return det


def _restore_sigint() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _nulls(value: Any) -> Any:
    """Non-finite floats (a diverged loss, no best epoch) -> None, through dicts and lists."""
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _nans(numbers: dict) -> dict:
    return {k: float("nan") if v is None else v for k, v in numbers.items()}
