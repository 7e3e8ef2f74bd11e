"""Study specs: a YAML file -> the cells (arm x training size x seed x split) a study runs.

A spec holds only data: the base config, the arms (a model with its settings, frozen from the
tuning search, per training size if the search chose differently at small and large sizes),
the sizes and seeds, the statistics' settings (primary metric, equivalence margin), and the
factorial of claim 4 (positional encoding x readout), which expands into arms.
"""

from __future__ import annotations

import functools
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
    """One model variant.

    Parameters
    ----------
    model : registry name.
    settings : config overrides (model_params, train, window, ...).
    by_size : {size: overrides} applied at that training size and above (the search's choice at
        a small and at a large size).
    params_x : size a Transformer to this multiple of the LSTM arm's parameters (claim 3).
    sizes, seeds : where the arm runs (None: the spec's).
    shuffle : also score temporal-order flights with each window's rows shuffled (the order
        control of claim 4).
    """

    name: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    by_size: dict[int, dict] = field(default_factory=dict)
    params_x: float | None = None
    sizes: list[int] | None = None
    seeds: list[int] | None = None
    shuffle: bool = False

    def overrides(self, size: int) -> dict:
        """Settings at a training size (0: every training flight, the largest)."""
        out = dict(self.settings)
        for threshold in sorted(self.by_size):
            if size == 0 or size >= threshold:
                out = merge(out, self.by_size[threshold])
        return out


def factorial_arm_name(base: str, positional: str, readout: str) -> str:
    """One name for a factorial cell's arm, shared by the sweep and its report."""
    return f"{base}-{positional}-{readout}"


# threshold-free metrics, so a verdict is about the model, not the threshold's calibration
PRIMARY = ("vus_pr", "vus_roc", "auc_pr", "auc_roc")


@dataclass
class SweepSpec:
    name: str
    experiment: str
    base: dict
    train_sizes: list[int]
    seeds: list[int]
    arms: list[Arm]
    synth: dict | None = None  # generator settings when the data is a generated folder
    compare: list[str] = field(default_factory=lambda: ["lstm", "transformer"])  # the pair
    primary: str = "vus_pr"  # the metric verdicts are called on
    margin: float = 0.03  # equivalence margin of the primary metric (TOST)
    scaling: list[str] = field(default_factory=list)  # arms with params_x (claim 3)
    factorial: dict | None = None  # {base, sizes, seeds, positional: [...], readout: [...]}
    splits: str = "fixed"  # or 'leave_one_campaign_out' (ALFA: train on two, test on the third)
    lens_seeds: list[int] = field(default_factory=lambda: [0])  # cells that log W(t, k)
    workers: int = 1
    description: str = ""
    source: str = ""

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        d = load_yaml(path)
        compared = "compare" in d  # the default pair may simply not be in a user's spec
        missing = [k for k in ("name", "base", "train_sizes", "seeds", "arms") if k not in d]
        if missing:
            raise UserError(f"{path}: study spec lacks {', '.join(missing)}")
        try:
            arms = [Arm(**a) for a in d.pop("arms")]
            d.setdefault("experiment", f"study-{d['name']}")
            spec = cls(arms=arms, source=str(path), **d)
        except TypeError as exc:
            raise UserError(f"{path}: {exc}") from None
        if spec.primary not in PRIMARY:
            raise UserError(f"{path}: primary must be one of {PRIMARY}, got {spec.primary!r}")
        if not (isinstance(spec.margin, (int, float)) and 0 < spec.margin < 1):
            raise UserError(f"{path}: margin must be a number in (0, 1), got {spec.margin!r}")
        if spec.synth is not None:
            from anomaly.data.synthetic import SynthConfig

            if not isinstance(spec.synth, dict):
                raise UserError(f"{path}: synth must be a mapping of generator settings")
            known = set(SynthConfig.__dataclass_fields__)
            if unknown := sorted(set(spec.synth) - known):
                raise UserError(
                    f"{path}: synth.{unknown[0]} is no generator setting ({', '.join(sorted(known))})"
                )
        f = spec.factorial or {}
        numbers = [("train_sizes", spec.train_sizes), ("seeds", spec.seeds)]
        numbers += [("lens_seeds", spec.lens_seeds), ("factorial: sizes", f.get("sizes", [0]))]
        numbers += [("factorial: seeds", f.get("seeds"))]
        numbers += [
            (f"arms: {a.name}: {k}", getattr(a, k)) for a in spec.arms for k in ("sizes", "seeds")
        ]
        for key, values in numbers:
            if key == "lens_seeds" and values == []:  # no cell logs W(t, k)
                continue
            # an arm's or the factorial's own may be left out, or empty: the spec's then
            _whole_numbers(path, key, values, optional=key.startswith(("arms", "factorial")))
        names = [a.name for a in spec.arms]
        if f:
            missing = [k for k in ("base", "sizes", "positional", "readout") if k not in f]
            if missing:
                raise UserError(f"{path}: factorial lacks {', '.join(missing)}")
            if f["base"] not in names:
                raise UserError(f"{path}: factorial: base {f['base']!r} is no arm; arms: {names}")
        spec.arms += spec.factorial_arms()
        names = [a.name for a in spec.arms]
        if len(set(names)) != len(names):
            raise UserError(f"{path}: arm names must be unique, got {names}")
        if compared and (
            not isinstance(spec.compare, list)
            or len(spec.compare) != 2
            or any(c not in names for c in spec.compare)
        ):
            raise UserError(f"{path}: compare must name two arms of {names}, got {spec.compare!r}")
        return spec

    def factorial_arms(self) -> list[Arm]:
        """Claim 4: the base arm with every positional encoding x readout, order control on."""
        f = self.factorial
        if not f:
            return []
        base = next(a for a in self.arms if a.name == f["base"])
        arms = []
        for pe in f["positional"]:
            for ro in f["readout"]:
                params = {"model_params": {"positional": pe, "readout": ro}}
                arms.append(
                    Arm(
                        factorial_arm_name(base.name, pe, ro),
                        base.model,
                        merge(base.settings, params),
                        {k: merge(v, params) for k, v in base.by_size.items()},
                        sizes=f["sizes"],
                        seeds=f.get("seeds"),
                        shuffle=True,
                    )
                )
        return arms

    def describe(self) -> str:
        """The MLflow experiment's description."""
        return self.description or (
            f"Study '{self.name}' (spec {Path(self.source).name}): one parent run per version of "
            f"the grid, with a child run per cell (arm x training flights x seed). "
            f"`anomaly report --sweep {self.experiment} --out DIR` rebuilds its report."
        )

    def data_spec(self) -> str:
        return str((self.base.get("data") or {}).get("data", "synthetic"))

    def data_options(self) -> dict[str, Any]:
        """How the base reads the logs (delimiter, time and label columns, gap limit), as every
        cell's config says; channels are each cell's own choice, made after reading."""
        options = build_config(self.base, {}).data.format_options()
        return {k: v for k, v in options.items() if k != "channels"}


@dataclass
class Cell:
    arm: str
    train_flights: int
    seed: int
    config: RunConfig
    key: str  # hash of everything that defines the cell: rerunning the same key is a no-op
    held_out: str = ""  # leave-one-campaign-out: the campaign tested
    shuffle: bool = False
    lens: bool = False


def cell_key(
    sweep_name: str, cfg: RunConfig, held_out: str = "", shuffle: bool = False, lens: bool = False
) -> str:
    """Everything that changes what a cell logs: adding the order control or the lens to a
    finished grid reruns the cells it touches."""
    cell = {"sweep": sweep_name, "held_out": held_out}
    # only when set, so the keys of cells without them (and their finished runs) stay valid
    cell.update({k: True for k, on in (("shuffle", shuffle), ("lens", lens)) if on})
    if held_out:  # tested on the held-out campaign's fixed-split test flights only, since then
        cell["held_out_test"] = "fixed-split test flights"
    blob = json.dumps({**cell, **cfg.flat()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def transformer_for_params(
    target: int, n_features: int, window_len: int, base: dict | None = None
) -> dict:
    """Transformer config whose parameter count is closest to `target`, varying d_model.

    Used by the parameter-scaling arms: Transformers at about 1x, 4x and 16x the LSTM's size.
    Every seed of a size asks the same question, and each answer builds dozens of networks, so
    answers are kept.
    """
    key = json.dumps(base or {}, sort_keys=True)
    return dict(_transformer_for_params(target, n_features, window_len, key))


@functools.cache
def _transformer_for_params(target: int, n_features: int, window_len: int, key: str) -> dict:
    base = json.loads(key)
    heads = base.get("n_heads", 4)
    best, best_gap = None, None
    for d in range(heads, 513, heads):
        cfg = {**base, "d_model": d, "dim_feedforward": base.get("ff_mult", 2) * d}
        cfg.pop("ff_mult", None)
        n = count_params("transformer", cfg, n_features, window_len)
        gap = abs(n - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = cfg, gap
        elif n > target:  # the count grows with d_model: past the target it only drifts away
            break
    return best


def arm_config(spec: SweepSpec, arm: Arm, size: int, seed: int, n_features: int) -> RunConfig:
    """The config of one cell; a `params_x` arm sized on the channels and window it uses."""
    over = arm.overrides(size)
    base = build_config(merge(spec.base, over), {"model": arm.model})
    if arm.params_x is not None:
        lstm = next(a for a in spec.arms if a.model == "lstm")
        lstm_cfg = build_config(merge(spec.base, lstm.overrides(size)), {"model": "lstm"})
        f = len(base.data.channels) if base.data.channels else n_features
        target = arm.params_x * count_params(
            "lstm", lstm_cfg.model_params, f, lstm_cfg.window.window_len
        )
        params = transformer_for_params(int(target), f, base.window.window_len, base.model_params)
        over = {**over, "model_params": params}
    cell = {
        "model": arm.model,
        "seed": seed,
        "experiment": spec.experiment,
        "data": {"train_flights": size or None},  # 0: every training flight (a campaign's)
    }
    return build_config(merge(merge(spec.base, over), cell))


def expand(spec: SweepSpec, n_features: int, campaigns: list[str] | None = None) -> list[Cell]:
    """Every cell, with the same flight subsets for every arm at a given size and seed.

    `n_features` is the dataset's channel count (a spec that picks channels sizes its arms on
    those); `campaigns` the held-out campaigns of a leave-one-campaign-out study.
    """
    held = campaigns if spec.splits == "leave_one_campaign_out" else [""]
    cells = []
    for arm in spec.arms:
        for size in arm.sizes or spec.train_sizes:
            for seed in arm.seeds or spec.seeds:
                cfg = arm_config(spec, arm, size, seed, n_features)
                for campaign in held:
                    lens = seed in spec.lens_seeds
                    key = cell_key(spec.name, cfg, campaign, arm.shuffle, lens)
                    cells.append(Cell(arm.name, size, seed, cfg, key, campaign, arm.shuffle, lens))
    return cells


def _whole_numbers(path: str | Path, key: str, values: object, optional: bool) -> None:
    """Sizes and seeds are lists of whole numbers (`seeds: 3` is not three seeds)."""
    if optional and values in (None, []):
        return
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
    ):
        raise UserError(f"{path}: {key} must be a list of whole numbers, got {values!r}")
