"""The Detector contract every model honours, so sweeps, reports and scoring never branch on type.

`fit(windows)` learns from normal windows. `residuals(windows)` returns signed residuals,
measured minus expected, per step and channel: the detection pipeline reads, through
`last_residuals`, the window ending on each row (so a row's residual uses no later row) and
hands them to the alarm rule. `score` reduces a window to one number (higher = more anomalous)
for window-level checks.
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

    #: False where the model has no per-channel residual but one unsigned anomaly score per window
    #: (one residual channel, only the last step): no sensor is blamed, and the alarm rule tests
    #: that score one-sided.
    has_attribution: bool = True
    #: False where a residual is a magnitude (an error >= 0, a window's anomaly score): the alarm
    #: rule tests it one-sided, since only a larger error is anomalous.
    signed_residuals: bool = True

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
    def residuals(self, windows: np.ndarray) -> np.ndarray:
        """(n_windows, window_len, n_features) -> (n_windows, window_len, n_residuals): measured
        minus expected, NaN where the model makes no estimate (a forecaster's first step).
        n_residuals is n_features, or 1 for a model without per-channel estimates."""

    def last_residuals(self, windows: np.ndarray) -> np.ndarray:
        """(n_windows, window_len, n_features) -> (n_windows, n_residuals): what scores each
        window's last row: its own residual here; an autoencoder may read several of the
        window's last rows (anomaly.models.reconstruction), all at or before it."""
        return self.residuals(windows)[:, -1]

    def recurrent_stream(self, min_context: int):
        """A stream that carries state from row to row (see anomaly.models.deep), or None for
        models that score each row from the window ending on it."""
        return None

    def score(self, windows: np.ndarray) -> np.ndarray:
        """(n_windows, window_len, n_features) -> (n_windows,): mean squared residual."""
        r = self.residuals(windows)
        return np.nanmean(r.reshape(len(r), -1) ** 2, axis=1)

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
