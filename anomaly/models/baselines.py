"""scikit-learn baselines behind the Detector contract, on flattened windows."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from anomaly.models.base import Detector


def _flat(windows: np.ndarray) -> np.ndarray:
    return windows.reshape(len(windows), -1)  # (n, T * F)


class PCADetector(Detector):
    """Reconstruction error after projecting flattened windows on their principal components.

    Parameters
    ----------
    n_components : int, or float in (0, 1) for the share of variance kept.
    """

    def __init__(self, n_components: float | int = 0.95, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, windows: np.ndarray, val_windows: np.ndarray | None = None) -> PCADetector:
        from sklearn.decomposition import PCA  # here, not at import: scoring needs no sklearn

        windows = self._check_windows(windows)
        n_comp = self.n_components
        if isinstance(n_comp, int):
            n_comp = min(n_comp, *_flat(windows).shape)
        pca = PCA(n_components=n_comp, random_state=self.random_state).fit(_flat(windows))
        self.mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        self.n_features_in_ = windows.shape[2]
        self.n_params_ = self.mean_.size + self.components_.size
        return self

    def residuals(self, windows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        windows = self._check_windows(windows)
        centred = _flat(windows) - self.mean_
        recon = centred @ self.components_.T @ self.components_
        return (centred - recon).reshape(windows.shape)

    def save(self, folder: Path) -> None:
        np.savez(
            Path(folder) / "pca.npz",
            mean=self.mean_,
            components=self.components_,
            n_features_in=self.n_features_in_,
        )

    @classmethod
    def load(cls, folder: Path, params: dict) -> PCADetector:
        det = cls(**params)
        with np.load(Path(folder) / "pca.npz") as z:
            det.mean_, det.components_ = z["mean"], z["components"]
            det.n_features_in_ = int(z["n_features_in"])
        det.n_params_ = det.mean_.size + det.components_.size
        return det


class IsolationForestDetector(Detector):
    """IsolationForest on flattened windows; one unsigned score per window, no per-channel blame
    (its single residual channel is that score)."""

    has_attribution = False
    signed_residuals = False

    def __init__(
        self, n_estimators: int = 100, max_samples: int | str = 256, random_state: int = 0
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(
        self, windows: np.ndarray, val_windows: np.ndarray | None = None
    ) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest

        windows = self._check_windows(windows)
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(windows))
            if isinstance(self.max_samples, int)
            else self.max_samples,
            random_state=self.random_state,
        ).fit(_flat(windows))
        self.n_features_in_ = windows.shape[2]
        self.n_params_ = sum(est.tree_.node_count for est in self.forest_.estimators_)
        return self

    def residuals(self, windows: np.ndarray) -> np.ndarray:
        """One channel: the window's anomaly score on its last step, NaN on the others."""
        out = np.full((*windows.shape[:2], 1), np.nan, dtype=np.float32)
        out[:, -1, 0] = self.last_residuals(windows)[:, 0]
        return out

    def last_residuals(self, windows: np.ndarray) -> np.ndarray:
        self._check_fitted()
        windows = self._check_windows(windows)
        # score_samples is higher for normal points and lies in [-1, 0): flip its sign so that
        # higher means more anomalous, as everywhere else in the package.
        return (-self.forest_.score_samples(_flat(windows))).astype(np.float32)[:, None]

    def save(self, folder: Path) -> None:
        # scikit-learn forests have no weights-only format; this one file is a pickle
        with open(Path(folder) / "iforest.pkl", "wb") as fh:
            pickle.dump((self.forest_, self.n_features_in_), fh)

    @classmethod
    def load(cls, folder: Path, params: dict) -> IsolationForestDetector:
        det = cls(**params)
        with open(Path(folder) / "iforest.pkl", "rb") as fh:
            det.forest_, det.n_features_in_ = pickle.load(fh)
        det.n_params_ = sum(est.tree_.node_count for est in det.forest_.estimators_)
        return det
