"""Sweep specs: a YAML file -> the grid of cells (arm x training size x seed) a study runs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly.config import RunConfig, build_config, load_yaml, merge
from anomaly.errors import UserError
from anomaly.models.registry import count_params


@dataclass
class Arm:
    """One model variant. `params_x` sizes a Transformer to that multiple of the LSTM's parameters."""

    name: str
    model: str
    model_params: dict[str, Any] = field(default_factory=dict)
    params_x: float | None = None
    sizes: list[int] | None = None  # training sizes this arm runs at (None: all)
    seeds: list[int] | None = None


@dataclass
class SweepSpec:
    name: str
    experiment: str
    base: dict
    train_sizes: list[int]
    seeds: list[int]
    arms: list[Arm]
    synth: dict | None = None  # generator settings when the data is a generated folder
    compare: list[str] = field(default_factory=lambda: ["lstm", "transformer"])  # the paired pair
    scaling_arms: list[str] = field(default_factory=list)
    positional_arms: list[str] = field(default_factory=list)
    workers: int = 1
    source: str = ""

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        d = load_yaml(path)
        missing = [k for k in ("name", "base", "train_sizes", "seeds", "arms") if k not in d]
        if missing:
            raise UserError(f"{path}: sweep spec lacks {', '.join(missing)}")
        arms = [Arm(**a) for a in d.pop("arms")]
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise UserError(f"{path}: arm names must be unique, got {names}")
        d.setdefault("experiment", f"study-{d['name']}")
        return cls(arms=arms, source=str(path), **d)

    def describe(self) -> str:
        """The MLflow experiment's description."""
        return (
            f"Study '{self.name}' (spec {Path(self.source).name}): one parent run per version of "
            f"the grid, with a child run per cell (arm x training flights x seed). "
            f"`anomaly report --sweep {self.experiment} --out DIR` rebuilds its report."
        )

    def data_spec(self) -> str:
        return str((self.base.get("data") or {}).get("data", "synthetic"))


@dataclass
class Cell:
    arm: str
    train_flights: int
    seed: int
    config: RunConfig
    key: str  # hash of everything that defines the cell: rerunning the same key is a no-op


def cell_key(sweep_name: str, cfg: RunConfig) -> str:
    blob = json.dumps({"sweep": sweep_name, **cfg.flat()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def transformer_for_params(
    target: int, n_features: int, window_len: int, base: dict | None = None
) -> dict:
    """Transformer config whose parameter count is closest to `target`, varying d_model.

    Used by the parameter-scaling arm: Transformers at about 1x, 4x and 16x the LSTM's size.
    """
    base = dict(base or {})
    heads = base.get("n_heads", 4)
    best, best_gap = None, None
    for d in range(heads, 513, heads):
        cfg = {**base, "d_model": d, "dim_feedforward": base.get("ff_mult", 2) * d}
        cfg.pop("ff_mult", None)
        gap = abs(count_params("transformer", cfg, n_features, window_len) - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = cfg, gap
    return best


def resolve_params(spec: SweepSpec, arm: Arm, n_features: int, window_len: int) -> dict:
    """Arm params with `params_x` turned into a concrete Transformer size, counted on the
    channels and window the cells really use."""
    if arm.params_x is None:
        return dict(arm.model_params)
    lstm = next((a for a in spec.arms if a.model == "lstm"), None)
    lstm_params = count_params("lstm", lstm.model_params if lstm else {}, n_features, window_len)
    return transformer_for_params(
        int(arm.params_x * lstm_params), n_features, window_len, arm.model_params
    )


def expand(spec: SweepSpec, n_features: int) -> list[Cell]:
    """Every cell, with the same flight subsets for every arm at a given size and seed.

    `n_features` is the dataset's channel count; a spec (or its preset) that picks channels
    sizes its arms on those.
    """
    base = build_config(spec.base)
    n_features = len(base.data.channels) if base.data.channels else n_features
    cells = []
    for arm in spec.arms:
        params = resolve_params(spec, arm, n_features, base.window.window_len)
        for size in arm.sizes or spec.train_sizes:
            for seed in arm.seeds or spec.seeds:
                over = {
                    "model": arm.model,
                    "model_params": params,
                    "seed": seed,
                    "experiment": spec.experiment,
                    "data": {"train_flights": size},
                }
                cfg = build_config(merge(spec.base, over))
                cells.append(Cell(arm.name, size, seed, cfg, cell_key(spec.name, cfg)))
    return cells
