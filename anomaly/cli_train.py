"""`anomaly train`, `sweep`, `report` and `score`: the subcommands that train, study and score."""

from __future__ import annotations

import argparse
import logging
import sys

from anomaly.models.registry import MODELS

log = logging.getLogger(__name__)

METRIC_ROWS = [
    ("f1_point", "F1 (point, headline)"),
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
    ("f1_point_adjusted", "F1 point-adjusted (inflated)"),
    ("train_seconds", "train time (s)"),
    ("n_params", "parameters"),
    ("epochs", "epochs"),
]


def overrides_from_args(args: argparse.Namespace) -> dict:
    """Only flags the user gave override the config file."""
    o: dict = {}
    data = {k: v for k, v in {
        "data": args.data, "sep": args.sep, "time_col": args.time_col, "label_col": args.label_col,
        "channels": args.channels.split(",") if args.channels else None, "train_flights": args.train_flights,
    }.items() if v is not None}  # fmt: skip
    if args.max_gap != 10:
        data["max_gap_rows"] = args.max_gap
    if data:
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
            elif key in ("n_params", "epochs"):
                cells.append(f"{int(v):>14,d}")
            else:
                cells.append(f"{v:>14.3f}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    from anomaly.config import build_config, load_yaml
    from anomaly.experiments.run import execute, track_run
    from anomaly.track.tracker import Tracker

    cfg = build_config(load_yaml(args.config) if args.config else {}, overrides_from_args(args))
    out = execute(cfg, progress=sys.stderr.isatty())
    tracker = Tracker(cfg.experiment)
    run_id, uri = track_run(out, tracker, register=args.register)
    print(format_table({cfg.model: out.metrics}))
    if len(out.per_fault):
        print("\nper fault type (test flights):")
        print(out.per_fault.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nrun {run_id} in experiment '{cfg.experiment}' ({tracker.uri})")
    if args.register:
        print(f"registered as models:/{args.register}@champion")
    print(uri)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Train several models on the same split and print one table: what `make demo` runs."""
    from anomaly.config import build_config, load_yaml
    from anomaly.data.datasets import load_dataset
    from anomaly.experiments.run import execute, log_format, track_run
    from anomaly.track.tracker import Tracker

    base = load_yaml(args.config) if args.config else {}
    over = overrides_from_args(args)
    over.pop("model", None)
    models = [m.strip() for m in args.models.split(",")]
    for m in models:
        if m not in MODELS:
            raise ValueError(f"--models: unknown model {m!r}; choose from {', '.join(MODELS)}")
    cfg0 = build_config(base, over)
    dataset = load_dataset(cfg0.data.data, log_format(cfg0))  # read once, shared by every model
    tracker = Tracker(cfg0.experiment)
    table, uris = {}, {}
    for m in models:
        cfg = build_config(base, {**over, "model": m})
        out = execute(cfg, dataset, progress=sys.stderr.isatty())
        _, uris[m] = track_run(out, tracker)
        table[m] = out.metrics
        log.info(
            "%s: f1_point %.3f in %.1f s",
            m,
            out.metrics.get("f1_point", float("nan")),
            out.metrics["train_seconds"],
        )
    print(format_table(table))
    print(
        f"\ntest flights: {len(out.split.test)}, training flights: {len(out.split.train)}; "
        f"runs in experiment '{cfg0.experiment}' ({tracker.uri}); compare them with `make ui`"
    )
    for m, uri in uris.items():
        print(f"{m}: {uri}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from anomaly.experiments.runner import run_sweep
    from anomaly.experiments.spec import SweepSpec

    spec = SweepSpec.from_yaml(args.spec)
    parent_id, counts = run_sweep(
        spec, workers=args.workers, progress=False if args.quiet else None
    )
    print(
        f"sweep {spec.name}: {counts['cells']} cells, {counts['skipped']} already done, "
        f"{counts['finished']} finished, {counts['failed']} failed"
    )
    print(f"parent run {parent_id} in experiment '{spec.experiment}'")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from anomaly.experiments.report import make_report

    path = make_report(args.sweep, args.out)
    print(path)
    return 0


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", help="preset (synthetic, alfa), dataset folder, file or glob (default: synthetic)"
    )
    p.add_argument("--config", help="experiment YAML file (only what differs from defaults)")
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--train-flights", type=int, help="use this many training flights (chosen by seed)"
    )
    p.add_argument("--experiment", help="MLflow experiment name (default: anomaly)")
    p.add_argument("--max-epochs", type=int)
    p.add_argument(
        "--threshold", help="rule fitted on validation normal rows, e.g. quantile:0.99, zscore:4"
    )


def add_commands(sub, fmt_args) -> None:
    p = sub.add_parser(
        "train", help="train a detector, evaluate it on test flights, log it to MLflow"
    )
    p.add_argument("--model", choices=MODELS, help="default: lstm")
    p.add_argument(
        "--register", metavar="NAME", help="register the model under NAME with alias 'champion'"
    )
    _train_args(p)
    fmt_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="train several models on one split and print one table")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: all)")
    _train_args(p)
    fmt_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "sweep", help="run a study's grid (models x training sizes x seeds), resumably"
    )
    p.add_argument("spec", help="sweep YAML, e.g. experiments/small_data.yaml")
    p.add_argument("--workers", type=int, help="parallel cells (default: the spec's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="write report.md and figures from a sweep's MLflow runs")
    p.add_argument("--sweep", required=True, help="parent run id or experiment name")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_report)

    add_score_command(sub, fmt_args)


def cmd_score(args: argparse.Namespace) -> int:
    from pathlib import Path

    from anomaly.cli import log_format
    from anomaly.data.logs import expand_inputs
    from anomaly.data.schema import LogFormat
    from anomaly.detect.batch import score_batch
    from anomaly.detect.pipeline import Pipeline
    from anomaly.detect.thresholds import Threshold
    from anomaly.track.tracker import resolve_model_folder

    pipe = Pipeline.load(resolve_model_folder(args.model))
    if args.threshold is not None:
        pipe.threshold = Threshold.fixed(args.threshold)
    paths = expand_inputs(args.inputs)
    if not paths:
        raise ValueError(f"no .csv or .csv.gz logs in {' '.join(args.inputs)}")
    if args.chunk_rows < 10 * pipe.window_len:
        raise ValueError(f"--chunk-rows must be at least {10 * pipe.window_len} (ten windows)")
    fmt = log_format(args) or LogFormat()
    summary = score_batch(
        pipe, paths, Path(args.out), fmt, args.chunk_rows, args.format, args.overwrite, args.contributions,
        progress=not args.quiet and sys.stderr.isatty(), model_uri=args.model,
    )  # fmt: skip
    for f in summary.failed:
        print(f"FAILED {f['reason']}", file=sys.stderr)
    if not args.quiet:
        print(f"scored {len(summary.scored)}/{summary.files} files, {summary.rows} rows, "
              f"{summary.anomalous_rows} anomalous rows, {summary.events} events -> {args.out}")  # fmt: skip
    return 1 if summary.failed else 0


def add_score_command(sub, fmt_args) -> None:
    p = sub.add_parser(
        "score",
        help="score CSV logs with a trained model; writes scored files, events.csv, summary.json",
    )
    p.add_argument("inputs", nargs="+", help="files, folders or globs of .csv / .csv.gz logs")
    p.add_argument(
        "--model",
        required=True,
        help="runs:/ID/model, models:/NAME@ALIAS, models:/NAME/VERSION or a folder",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--threshold", type=float, help="fixed threshold instead of the model's fitted one"
    )
    p.add_argument(
        "--chunk-rows", type=int, default=200_000, help="rows read at a time; bounds memory"
    )
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--contributions", action="store_true", help="add one contribution column per channel"
    )
    p.add_argument("--quiet", action="store_true")
    fmt_args(p)
    p.set_defaults(func=cmd_score)
