"""Typed run configuration: defaults < preset defaults < experiment file < command-line flags.

Experiment files hold only what differs from the defaults, with the same nesting as here:
`data`, `window`, `train`, `detect`, plus `model`, `model_params`, `seed`, `experiment`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anomaly.errors import UserError


@dataclass
class DataConfig:
    data: str = "synthetic"  # preset ('synthetic', 'alfa'), dataset folder, file or glob
    sep: str | None = None
    time_col: str | None = None
    label_col: str | None = None
    channels: list[str] | None = None
    max_gap_rows: int | None = None  # None: the format's own (10 rows)
    train_flights: int | None = None  # None: every training flight

    def format_options(self) -> dict[str, Any]:
        """How to read the logs (`LogFormat.with_options` keywords); None means not given.
        A user's logs are read for the chosen channels only (a column left out cannot fail
        them); presets read all of theirs and are cut to them after (`Dataset.select`)."""
        return {
            "sep": self.sep,
            "time_col": self.time_col,
            "label_col": self.label_col,
            "channels": self.channels,
            "max_gap_rows": self.max_gap_rows,
        }


@dataclass
class WindowConfig:
    window_len: int = 32  # samples
    stride: int = 4  # between training windows
    # rows between scoring windows of a windowed model: with s > 1 a row waits up to s - 1 rows
    # for the window that ends on it (a recurrent model scores every row as it comes)
    score_stride: int = 1
    scaler: str = "standard"  # 'standard' | 'robust'


@dataclass
class TrainConfig:
    max_epochs: int = 30  # cap; a run stopped by it is logged with hit_max_epochs = 1
    patience: int = 4  # epochs without progress on val/loss before early stopping
    # relative fall of val/loss that counts as progress: at 0.005 a run creeping down by less
    # than 0.5 % over `patience` epochs has reached its plateau instead of running to the cap
    min_improvement: float = 0.0
    batch_size: int = 128
    lr: float = 1e-3
    grad_clip: float = 1.0
    warmup_steps: int = 0  # linear learning-rate warm-up over this many optimizer steps
    # optimizer steps per epoch (None: one pass over the training windows); fixed, an epoch is
    # the same amount of training at every data size, so patience, the cap and the warm-up mean
    # the same thing for one flight as for thirty-two
    steps_per_epoch: int | None = None
    accelerator: str = "cpu"  # Lightning's: 'cpu', 'gpu' or 'auto' (scoring always runs on CPU)


@dataclass
class DetectConfig:
    """How residuals become alarms (anomaly.detect.alarms): settings in seconds."""

    # decision level of the sequential test, fitted on validation normal flights only:
    # 'fa_per_hour:R' (about R false alarms per hour of normal flight), 'quantile:Q', 'fixed:X'
    threshold: str = "fa_per_hour:0.5"
    # CUSUM drift, in standard deviations of the normalised residual; drift, confirmation and
    # the single row time scale chosen by cross-validation on the synthetic preset's training
    # and validation flights (README, "Detection")
    drift: float = 2.0
    # 'two', 'up' (measured above expected) or 'down', or {channel: side} with the rest two-sided
    sides: str | dict[str, str] = "two"
    # time scales: each gets CUSUMs on the trailing mean of the residual over it (0: the row)
    smooth_s: float | list[float] = 0.0
    confirm_s: float = 0.5  # the statistic stays above the level this long before an alarm
    merge_gap_s: float = 0.0  # an alarm is held this long after the statistic drops
    # no alarm in a flight's first seconds (start-up transients); rows are still scored
    warmup_s: float = 0.0
    # > 0: judge each channel against the same flight's residuals over this many seconds, ending
    # baseline_lag_s earlier (causal): minus their median, over their spread
    baseline_s: float = 0.0
    baseline_lag_s: float = 1.0
    # a channel that stops changing for twice its longest still run in the normal rows of the
    # training and validation flights (at least 1 s; runs where it rests, a throttle at full
    # power, are neither counted nor judged) raises an alarm too (anomaly.detect.frozen): a
    # frozen sensor is invisible to a forecaster's residuals
    frozen_check: bool = True
    timeout_s: float = 5.0  # per-flight protocol: the first alarm after onset must come within this
    # VUS buffer, in seconds (README, "Metrics"): about the published real-time detector's delay
    vus_window_s: float = 2.0


@dataclass
class RunConfig:
    model: str = "lstm"
    model_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    experiment: str = "anomaly"
    data: DataConfig = field(default_factory=DataConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)

    def flat(self) -> dict[str, Any]:
        """Dotted keys -> values, for MLflow params and config hashes."""
        out: dict[str, Any] = {}

        def walk(prefix: str, obj: Any) -> None:
            if isinstance(obj, dict):
                for k in sorted(obj):
                    walk(f"{prefix}{k}.", obj[k])
            else:
                out[prefix[:-1]] = obj

        walk("", dataclasses.asdict(self))
        return out


# Settings each preset carries; chosen on training and validation flights only (see README).
PRESETS: dict[str, dict[str, Any]] = {
    "synthetic": {},
    "alfa": {
        # chosen by cross-validation over the training and validation flights only, 4 folds by
        # recording (scripts/tune_detection.py --data alfa; docs/results/alfa/tuning_cv.txt).
        # The channels are what an engine failure disturbs first: sink rate against the
        # commanded one, thrust, pitch and altitude error (9 tracking errors: flight F1 0.19).
        "data": {
            "channels": [
                "delta_z",
                "field.twist.linear.z",
                "field.linear_acceleration.x",
                "delta_pitch",
                "field.alt_error",
            ],
        },
        "window": {"window_len": 40, "stride": 4, "scaler": "robust"},
        "detect": {
            "drift": 3.0,
            "confirm_s": 0.25,
            "baseline_s": 60.0,
            "baseline_lag_s": 1.0,
            "warmup_s": 10.0,
        },
    },
}

_SECTIONS = {
    "data": DataConfig,
    "window": WindowConfig,
    "train": TrainConfig,
    "detect": DetectConfig,
}


def merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = (
            merge(out[k], v)
            if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "model_params"
            else v
        )
    return out


# Lower bounds of the numeric settings, checked on the merged config, so that a file, a preset
# and a flag meet the same rule; None means "not given". Seconds settings are finite and >= 0.
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "hpu", "auto")
OPTIONAL_INTS = ("data.max_gap_rows", "data.train_flights", "train.steps_per_epoch")
INT_MIN = {
    "seed": 0,
    "data.max_gap_rows": 0,
    "data.train_flights": 1,
    "window.window_len": 1,
    "window.stride": 1,
    "window.score_stride": 1,
    "train.max_epochs": 1,
    "train.patience": 0,
    "train.batch_size": 1,
    "train.steps_per_epoch": 1,
    "train.warmup_steps": 0,
}
NON_NEGATIVE = ("train.grad_clip", "train.min_improvement", "detect.drift") + tuple(
    f"detect.{f.name}" for f in dataclasses.fields(DetectConfig) if f.name.endswith("_s")
)


def check_values(cfg: RunConfig) -> None:
    """Refuse a setting outside its range by its dotted key (a model that never trains, a
    threshold that can never flag)."""
    flat = cfg.flat()

    def refuse(key: str, rule: str, value: Any = None) -> None:
        value = flat.get(key) if value is None else value
        raise UserError(f"config: {key} must be {rule}, got {value!r}")

    for key, low in INT_MIN.items():
        v = flat[key]
        if v is None and key in OPTIONAL_INTS:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            refuse(key, f"an integer >= {low}", "null" if v is None else v)
    if flat["seed"] >= 2**32:  # what numpy, torch and scikit-learn all take
        refuse("seed", "below 2**32")
    if not isinstance(cfg.model_params, dict):
        refuse("model_params", "a mapping", cfg.model_params)
    if cfg.window.scaler not in ("standard", "robust"):
        refuse("window.scaler", "'standard' or 'robust'")
    if cfg.train.accelerator not in ACCELERATORS:
        refuse("train.accelerator", f"one of Lightning's: {', '.join(ACCELERATORS)}")
    channels = cfg.data.channels
    if channels is not None and not (
        isinstance(channels, list) and channels and all(isinstance(c, str) for c in channels)
    ):
        refuse("data.channels", "a list of column names")
    from anomaly.models.registry import MODELS

    if cfg.model not in MODELS:
        refuse("model", f"one of {', '.join(MODELS)}")
    from anomaly.models.registry import get

    spec = get(cfg.model)
    if spec.deep:  # a network's model_params are its config's fields, less the data's shape
        known = set(spec.network_class().config_class.__dataclass_fields__)
        known -= {"n_features", "window_len"}
    else:  # a baseline's are its constructor's keywords
        import inspect

        known = set(inspect.signature(spec.detector_class().__init__).parameters)
        known -= {"self", "random_state"}
    for key in cfg.model_params:
        if key not in known:
            refuse(
                f"model_params.{key}",
                f"a setting of {cfg.model} ({', '.join(sorted(known))})",
                cfg.model_params[key],
            )
    for key in (*NON_NEGATIVE, "train.lr"):
        for v in flat[key] if isinstance(flat[key], list) else [flat[key]]:  # smooth_s: a list
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                refuse(key, "a number (YAML reads 1e-3 as text: write 1.0e-3)")
            if not math.isfinite(v) or v < 0 or (key == "train.lr" and v == 0):
                refuse(key, "finite and positive" if key == "train.lr" else "finite and >= 0")
    if flat["train.min_improvement"] >= 1:
        refuse("train.min_improvement", "a fraction below 1")
    if not isinstance(cfg.detect.frozen_check, bool):
        refuse("detect.frozen_check", "true or false")
    # the alarm rule is checked now, not after minutes of training
    from anomaly.detect.alarms import SIDES
    from anomaly.detect.thresholds import Threshold

    if not isinstance(cfg.detect.threshold, str):
        refuse("detect.threshold", "a rule such as 'fa_per_hour:0.5'")
    try:
        Threshold(cfg.detect.threshold)
    except ValueError as err:
        refuse("detect.threshold", f"a valid rule ({err})")
    sides = cfg.detect.sides
    values = list(sides.values()) if isinstance(sides, dict) else [sides]
    if not all(isinstance(v, str) and v in SIDES for v in values):
        refuse("detect.sides", f"one of {SIDES} or a mapping of channels to them", sides)


def from_dict(d: dict) -> RunConfig:
    """Build a RunConfig, refusing unknown keys and out-of-range values by name."""
    known = {f.name for f in dataclasses.fields(RunConfig)}
    for k in d:
        if k not in known:
            raise UserError(f"config: unknown key {k!r}; expected one of {sorted(known)}")
    kw = {k: v for k, v in d.items() if k not in _SECTIONS}
    for name in (*_SECTIONS, "model_params"):
        if name in d and d[name] is not None and not isinstance(d[name], dict):
            raise UserError(f"config: {name} must be a mapping, got {d[name]!r}")
        if name == "model_params" and d.get(name, {}) is None:
            kw[name] = {}  # `model_params:` with nothing under it: none
    for name, cls in _SECTIONS.items():
        sec = d.get(name) or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        for k in sec:
            if k not in fields:
                raise UserError(f"config: unknown key {name}.{k}; expected one of {sorted(fields)}")
        kw[name] = cls(**sec)
    cfg = RunConfig(**kw)
    check_values(cfg)
    return cfg


def load_yaml(path: str | Path) -> dict:
    """A YAML file holding a mapping; a file that is missing, unreadable or not YAML is an error
    naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeys)
        data = {} if data is None else data  # an empty file: nothing differs
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: not valid YAML{line}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level")
    return data


class _UniqueKeys(yaml.SafeLoader):
    """A key given twice is an error: YAML would keep the last and drop the first silently."""

    def flatten_mapping(self, node):
        # every mapping is flattened (its merges, <<, expanded in place) before it is built,
        # whether on its own or merged into another: check its keys as written, once
        checked = self.__dict__.setdefault("_checked", set())
        if id(node) not in checked:
            checked.add(id(node))
            seen = set()
            for key_node, _ in node.value:  # a merged key may be overridden: merges skipped
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key_node.value!r} given twice", key_node.start_mark
                    )
                seen.add(key)
        super().flatten_mapping(node)


def load_config_file(path: str | Path, models: list[str] | None = None) -> dict:
    """An experiment file (`--config`), checked on its own so that a bad key or value names it,
    and with each model the command line chose (its `model_params` are that model's)."""
    data = load_yaml(path)
    try:
        for model in models or [None]:
            from_dict(data if model is None else merge(data, {"model": model}))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return data


def build_config(file_dict: dict | None = None, overrides: dict | None = None) -> RunConfig:
    """Layer defaults, the preset of the chosen data, the file and the overrides."""
    layered = merge(file_dict or {}, overrides or {})
    data_name = (layered.get("data") or {}).get("data", DataConfig.data)
    preset = PRESETS.get(str(data_name), {})
    return from_dict(merge(preset, layered))
