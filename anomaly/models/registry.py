"""Model name -> Detector, used by config, CLI, sweeps and loading."""

from __future__ import annotations

from pathlib import Path

from anomaly.models.base import Detector
from anomaly.models.baselines import IsolationForestDetector, PCADetector
from anomaly.models.deep import DeepDetector
from anomaly.models.lstm_ae import LSTMAEConfig, LSTMAutoencoder
from anomaly.models.transformer_ae import TransformerAEConfig, TransformerAutoencoder

MODELS = ("lstm", "transformer", "iforest", "pca")


def make_detector(name: str, params: dict | None = None, random_state: int = 0) -> Detector:
    """Build an unfitted detector; `params` are the constructor's keyword arguments."""
    params = dict(params or {})
    params["random_state"] = random_state
    if name in ("lstm", "transformer"):
        return DeepDetector(arch=name, **params)
    if name == "iforest":
        return IsolationForestDetector(**params)
    if name == "pca":
        return PCADetector(**params)
    raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def load_detector(name: str, folder: Path, params: dict) -> Detector:
    cls = {
        "lstm": DeepDetector,
        "transformer": DeepDetector,
        "iforest": IsolationForestDetector,
        "pca": PCADetector,
    }
    if name not in cls:
        raise ValueError(f"unknown model {name!r} in saved pipeline")
    return cls[name].load(folder, params)


def count_params(name: str, net: dict, n_features: int) -> int:
    """Parameter count of a network config without training it."""
    if name == "lstm":
        return LSTMAutoencoder(LSTMAEConfig(**{**net, "n_features": n_features})).n_params()
    return TransformerAutoencoder(
        TransformerAEConfig(**{**net, "n_features": n_features})
    ).n_params()


def transformer_for_params(target: int, n_features: int, base: dict | None = None) -> dict:
    """Transformer config whose parameter count is closest to `target`, varying d_model.

    Used by the parameter-scaling arm: Transformers at about 1x, 4x and 16x the LSTM's size.
    """
    base = dict(base or {})
    heads = base.get("n_heads", 4)
    best, best_gap = None, None
    for d in range(heads, 513, heads):
        cfg = {**base, "d_model": d, "dim_feedforward": base.get("ff_mult", 2) * d}
        cfg.pop("ff_mult", None)
        gap = abs(count_params("transformer", cfg, n_features) - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = cfg, gap
    return best
