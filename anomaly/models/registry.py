"""Model name -> `ModelSpec`: the one table that config, CLI, sweeps, loading and tests read.

Classes are named as "module:Class" strings and imported on first use, so listing the models (the
CLI's `--help`, config validation) costs no torch or scikit-learn import. Adding a model is one
entry here plus its file; the contract suite in tests/contract runs over every entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anomaly.errors import UserError

if TYPE_CHECKING:
    from pathlib import Path

    from anomaly.config import RunConfig
    from anomaly.models.base import Detector

DEEP = "anomaly.models.deep:DeepDetector"


@dataclass(frozen=True)
class ModelSpec:
    """One model.

    Parameters
    ----------
    name : registry key, also the `model` of a config and of a saved pipeline.
    detector : "module:Class" of its `Detector`.
    network : deep models only: "module:Class" of its `nn.Module`, whose `config_class` attribute
        is the dataclass of its settings (`model_params`).
    summary : one line for `--help` and README.
    """

    name: str
    detector: str
    network: str | None = None
    summary: str = ""

    @property
    def deep(self) -> bool:
        """Trained by Lightning on windows; takes the `train` section of a config."""
        return self.network is not None

    def detector_class(self) -> type[Detector]:
        return _resolve(self.detector)

    def network_class(self) -> type:
        if self.network is None:
            raise ValueError(f"model {self.name!r} has no network")
        return _resolve(self.network)

    def params(self, cfg: RunConfig) -> dict[str, Any]:
        """Constructor arguments from a run config: `model_params` is a deep model's network
        config and the other models' own keyword arguments."""
        if not self.deep:  # its keywords checked with the config (anomaly.config)
            return dict(cfg.model_params)
        t = cfg.train
        return {
            "arch": self.name,
            "net": dict(cfg.model_params),
            "max_epochs": t.max_epochs,
            "patience": t.patience,
            "min_improvement": t.min_improvement,
            "batch_size": t.batch_size,
            "lr": t.lr,
            "grad_clip": t.grad_clip,
            "warmup_steps": t.warmup_steps,
            "steps_per_epoch": t.steps_per_epoch,
            "accelerator": t.accelerator,
        }


def _resolve(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "lstm",
            DEEP,
            "anomaly.models.lstm_forecaster:LSTMForecaster",
            "LSTM forecaster (online: recurrent state, next-row prediction)",
        ),
        ModelSpec(
            "transformer",
            DEEP,
            "anomaly.models.transformer_forecaster:TransformerForecaster",
            "Transformer forecaster (online: causal attention over a window)",
        ),
        ModelSpec(
            "linear_rnn",
            DEEP,
            "anomaly.models.linear_rnn:LinearRNN",
            "linear state-space forecaster (lag-only weights: the article's reference)",
        ),
        ModelSpec("lstm_ae", DEEP, "anomaly.models.lstm_ae:LSTMAutoencoder", "LSTM autoencoder"),
        ModelSpec(
            "transformer_ae",
            DEEP,
            "anomaly.models.transformer_ae:TransformerAutoencoder",
            "Transformer autoencoder",
        ),
        ModelSpec(
            "iforest",
            "anomaly.models.baselines:IsolationForestDetector",
            summary="IsolationForest on flattened windows",
        ),
        ModelSpec(
            "pca",
            "anomaly.models.baselines:PCADetector",
            summary="PCA reconstruction of flattened windows",
        ),
    )
}
MODELS = tuple(REGISTRY)


def get(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise UserError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return REGISTRY[name]


def make_detector(name: str, params: dict | None = None, random_state: int = 0) -> Detector:
    """An unfitted detector; `params` are its constructor's keyword arguments."""
    spec = get(name)
    params = dict(params or {})
    if spec.deep:
        params.setdefault("arch", name)
    return spec.detector_class()(**params, random_state=random_state)


def load_detector(name: str, folder: Path, params: dict) -> Detector:
    return get(name).detector_class().load(folder, params)


def network_config(name: str, net: dict | None, n_features: int, window_len: int) -> dict:
    """A deep model's network config for data of this shape: `n_features` always, `window_len`
    for networks that size something by it (a learned position table)."""
    network = get(name).network_class()
    if network.objective == "forecast" and window_len < 2:  # no earlier row, no loss: NaN
        raise UserError(
            f"window.window_len {window_len}: model {name!r} predicts each row from the rows "
            "before it in its window, so a window needs 2 rows or more"
        )
    fields = network.config_class.__dataclass_fields__
    unknown = sorted(set(net or {}) - set(fields))
    if unknown:
        raise UserError(
            f"model_params: {unknown[0]!r} is not a setting of model {name!r}; "
            f"expected some of {sorted(set(fields) - {'n_features', 'window_len'})}"
        )
    shape = {"n_features": n_features, "window_len": window_len}
    return {**(net or {}), **{k: v for k, v in shape.items() if k in fields}}


def build_network(name: str, net_config: dict):
    """The plain `nn.Module` of a deep model from its full config dict (`network_config`)."""
    cls = get(name).network_class()
    return cls(cls.config_class(**net_config))


def count_params(name: str, net: dict, n_features: int, window_len: int) -> int:
    """Parameter count of a deep model's network config without training it."""
    return build_network(name, network_config(name, net, n_features, window_len)).n_params()
