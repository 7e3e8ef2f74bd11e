"""The Detector contract every model honours, so sweeps, reports and scoring never branch on type.

`fit(windows)` learns from normal windows; `error_map(windows)` returns per-step, per-channel
errors (higher = more anomalous) from which rows get scores and channels get blame; `score`
reduces that to one number per window.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class NotFittedError(RuntimeError):
    """A detector was used before `fit`."""


class Detector(ABC):
    """Base class. `__init__` stores its keyword arguments unchanged (as scikit-learn estimators
    do), so `get_params` and `set_params` need no per-model code."""

    #: False where the model has no per-channel errors (its error map is the window score spread
    #: evenly), so reports do not pretend to know which sensor is to blame.
    has_attribution: bool = True

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self) -> dict:
        """Constructor arguments, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Detector:
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; expected one of {known}"
                )
            setattr(self, name, value)
        return self

    @abstractmethod
    def fit(self, windows: np.ndarray, val_windows: np.ndarray | None = None) -> Detector:
        """windows: (n_windows, window_len, n_features) of normal data. Returns self."""

    @abstractmethod
    def error_map(self, windows: np.ndarray) -> np.ndarray:
        """(n_windows, window_len, n_features) -> same shape, non-negative."""

    def score(self, windows: np.ndarray) -> np.ndarray:
        """(n_windows, window_len, n_features) -> (n_windows,), higher is more anomalous."""
        return self.error_map(windows).mean(axis=(1, 2))

    @property
    def n_params(self) -> int:
        self._check_fitted()
        return int(self.n_params_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def _check_windows(self, windows: np.ndarray) -> np.ndarray:
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 3:
            raise ValueError(
                f"windows must be (n_windows, window_len, n_features), got shape {windows.shape}"
            )
        if hasattr(self, "n_features_in_") and windows.shape[2] != self.n_features_in_:
            raise ValueError(
                f"windows have {windows.shape[2]} features, the detector was fitted on "
                f"{self.n_features_in_}"
            )
        return windows

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write fitted state into `folder` (created by the caller)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, params: dict) -> Detector:
        """Rebuild from `save`'s files and the constructor params recorded beside them."""

    def training_history(self) -> list[dict]:
        """Per-epoch losses, for models trained by epochs."""
        return []

    def training_summary(self) -> dict[str, float]:
        """How training went (time in optimizer steps and in validation, epochs, steps, ...),
        for models trained by epochs; the caller times the others."""
        return {}
