"""What several subcommands share: the log-format flags, the training flags, errors and exit codes.

Nothing heavy is imported here: building the parser must stay fast (`anomaly --help`).
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def log_format_flags() -> argparse.ArgumentParser:
    """Parent parser of the flags that say how to read a log; each defaults to None (not given),
    so a preset's or a model's own format stays in force unless a flag overrides it."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("log format")
    g.add_argument("--sep", help="delimiter (default: sniffed among ',', ';' and tab)")
    g.add_argument("--time-col", help="time column (default: auto-detected)")
    g.add_argument("--label-col", help="label column, 0 normal and nonzero anomalous")
    g.add_argument("--channels", help="comma-separated channel columns (default: all numeric)")
    g.add_argument(
        "--max-gap", type=int, help="longest run of empty cells to forward-fill (rows; default 10)"
    )
    return p


def format_options(args: argparse.Namespace, channels: bool = True) -> dict:
    """The log-format flags as `LogFormat.with_options` keywords (None: not given)."""
    opts = {
        "sep": args.sep,
        "time_col": args.time_col,
        "label_col": args.label_col,
        "max_gap_rows": args.max_gap,
    }
    if channels:
        opts["channels"] = args.channels
    return opts


def training_flags() -> argparse.ArgumentParser:
    """Parent parser of the flags `train` and `compare` share."""
    p = argparse.ArgumentParser(add_help=False)
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
    return p
