"""`anomaly train` and `anomaly compare`: fit, evaluate on test flights, log to MLflow."""

from __future__ import annotations

import argparse
import logging
import sys

from anomaly.cli.common import log_format_flags, training_flags
from anomaly.errors import UserError
from anomaly.models.registry import MODELS

log = logging.getLogger(__name__)

METRIC_ROWS = [
    ("f1_point", "F1 (point)"),
    ("precision_point", "precision (point)"),
    ("recall_point", "recall (point)"),
    ("auc_pr", "AUC-PR"),
    ("auc_roc", "AUC-ROC"),
    ("vus_pr", "VUS-PR"),
    ("f1_event", "F1 (event)"),
    ("flight_precision", "flight precision"),
    ("flight_recall", "flight recall"),
    ("detection_delay_seconds", "detection delay (s, mean)"),
    ("false_alarms_per_hour", "false alarms / hour"),
    ("false_alarms_per_hour_fault_free", "false alarms / hour, fault-free"),
    ("f1_point_adjusted", "F1 point-adjusted (inflated)"),
    ("train_seconds", "train time (s)"),
    ("n_params", "parameters"),
    ("epochs", "epochs"),
]
COUNTS = ("n_params", "epochs")


def add_parser(sub) -> None:
    parents = [training_flags(), log_format_flags()]
    p = sub.add_parser(
        "train",
        parents=parents,
        help="train a detector, evaluate it on test flights, log it to MLflow",
    )
    p.add_argument("--model", choices=MODELS, help="default: lstm")
    p.add_argument(
        "--register", metavar="NAME", help="register the model under NAME with alias 'champion'"
    )
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "compare", parents=parents, help="train several models on one split and print one table"
    )
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all)")
    p.set_defaults(func=run_compare)


def overrides_from_args(args: argparse.Namespace) -> dict:
    """Only flags the user gave override the config file."""
    data = {
        "data": args.data,
        "sep": args.sep,
        "time_col": args.time_col,
        "label_col": args.label_col,
        "channels": [c.strip() for c in args.channels.split(",") if c.strip()] or None
        if args.channels
        else None,
        "max_gap_rows": args.max_gap,
        "train_flights": args.train_flights,
    }
    o: dict = {}
    if data := {k: v for k, v in data.items() if v is not None}:
        o["data"] = data
    for key in ("model", "seed", "experiment"):
        if getattr(args, key, None) is not None:
            o[key] = getattr(args, key)
    if args.max_epochs is not None:
        o["train"] = {"max_epochs": args.max_epochs}
    if args.threshold is not None:
        o["detect"] = {"threshold": args.threshold}
    return o


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """{model: metrics} -> a plain text table, one metric per line."""
    names = list(rows)
    width = max(len(label) for _, label in METRIC_ROWS) + 2
    lines = [" " * width + "".join(f"{n:>14}" for n in names)]
    for key, label in METRIC_ROWS:
        cells = []
        for n in names:
            v = rows[n].get(key)
            if v is None or v != v:
                cells.append(f"{'-':>14}")
            elif key in COUNTS:
                cells.append(f"{int(v):>14,d}")
            else:
                cells.append(f"{v:>14.3f}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)


def _base_config(args: argparse.Namespace, models: list[str] | None = None) -> dict:
    from anomaly.config import load_config_file

    return load_config_file(args.config, models) if args.config else {}


def run_train(args: argparse.Namespace) -> int:
    from anomaly.config import build_config
    from anomaly.study.trial import run_trial
    from anomaly.track.tracker import Tracker
    from anomaly.track.trials import judged_note, log_trial

    cfg = build_config(
        _base_config(args, [args.model] if args.model else None), overrides_from_args(args)
    )
    if args.register is not None:  # refused before training, not after it
        Tracker.check_model_name(args.register)
    Tracker.check_experiment(cfg.experiment)
    trial = run_trial(cfg, progress=sys.stderr.isatty())
    tracker = Tracker(cfg.experiment)
    run_id, uri = log_trial(trial, tracker, tags={"anomaly.role": "train"}, register=args.register)
    print(format_table({cfg.model: trial.metrics}))
    if note := judged_note(trial):
        print(note)
    rule = trial.pipeline.rule
    print(
        f"decision level {float(rule.threshold.threshold_):.3f} (rule "
        f"{rule.threshold.rule}; confirmation {rule.confirm_s:g} s)"
    )
    if len(trial.per_fault):
        print("\nper fault type (test flights):")
        print(trial.per_fault.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nrun {run_id} in experiment '{cfg.experiment}' ({tracker.uri})")
    if args.register:
        print(f"registered as models:/{args.register}@champion")
    print(uri)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Train several models on the same split and print one table: what `make demo` runs."""
    from anomaly.config import build_config
    from anomaly.data.datasets import load_dataset
    from anomaly.study.trial import run_trial
    from anomaly.track.tracker import Tracker
    from anomaly.track.trials import judged_note, log_trial

    over = overrides_from_args(args)
    over.pop("model", None)
    models = [m.strip() for m in args.models.split(",")]
    for m in models:
        if m not in MODELS:
            raise UserError(f"--models: unknown model {m!r}; choose from {', '.join(MODELS)}")
    if len(set(models)) < len(models):
        raise UserError(f"--models {args.models}: a model named twice")
    base = _base_config(args, models)
    # every model's config before any trains: a mistake must not cost the first model's run
    configs = {m: build_config(base, {**over, "model": m}) for m in models}
    cfg0 = configs[models[0]]  # what they share: data, experiment
    # read once, shared by every model
    dataset = load_dataset(cfg0.data.data, cfg0.data.format_options())
    tracker = Tracker(cfg0.experiment)
    table, uris = {}, {}
    for m, cfg in configs.items():
        trial = run_trial(cfg, dataset, progress=sys.stderr.isatty())
        _, uris[m] = log_trial(trial, tracker, tags={"anomaly.role": "compare"})
        table[m] = trial.metrics
        f1, seconds = trial.metrics.get("f1_point", float("nan")), trial.metrics["train_seconds"]
        log.info("%s: f1_point %.3f in %.1f s", m, f1, seconds)
    print(format_table(table))
    if note := judged_note(trial):
        print(note)
    print(
        f"\ntest flights: {len(trial.split.test)}, training flights: {len(trial.split.train)}; "
        f"runs in experiment '{cfg0.experiment}' ({tracker.uri}); compare them with `make ui`"
    )
    for m, uri in uris.items():
        print(f"{m}: {uri}")
    return 0
