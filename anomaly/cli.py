"""`anomaly` command line: validate, synth, train, sweep, report, score.

Logging is configured here once; library modules only use `logging.getLogger(__name__)`.
Bad input ends with one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from anomaly.data.schema import LogError, LogFormat

log = logging.getLogger("anomaly")
EXIT_USAGE = 2


def _fmt_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("log format")
    g.add_argument("--sep", help="delimiter (default: sniffed among ',', ';' and tab)")
    g.add_argument("--time-col", help="time column (default: auto-detected)")
    g.add_argument("--label-col", help="label column, 0 normal and nonzero anomalous")
    g.add_argument("--channels", help="comma-separated channel columns (default: all numeric)")
    g.add_argument(
        "--max-gap", type=int, default=10, help="longest run of empty cells to forward-fill (rows)"
    )


def log_format(args: argparse.Namespace) -> LogFormat | None:
    """A LogFormat from the flags, or None when none was given (presets then use their own)."""
    given = any(
        getattr(args, k, None) is not None for k in ("sep", "time_col", "label_col", "channels")
    )
    if not given and getattr(args, "max_gap", 10) == 10:
        return None
    sep = {"tab": "\t", "\\t": "\t"}.get(args.sep, args.sep)
    return LogFormat(
        sep=sep,
        time_col=args.time_col,
        label_col=args.label_col,
        channels=tuple(c.strip() for c in args.channels.split(",")) if args.channels else None,
        max_gap_rows=args.max_gap,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from anomaly.data.logs import expand_inputs, read_flight_log

    fmt = log_format(args)
    inputs = list(args.inputs)
    if inputs == ["alfa"]:  # the preset: its own columns, labels and clean-up
        from anomaly.data.datasets import ALFA_FORMAT, alfa_dir

        inputs, fmt = [str(alfa_dir())], fmt or ALFA_FORMAT
    paths = expand_inputs(inputs)
    if not paths:
        print(f"error: no .csv or .csv.gz logs in {' '.join(inputs)}", file=sys.stderr)
        return EXIT_USAGE
    fmt = fmt or LogFormat()
    bad = 0
    for p in paths:
        try:
            f = read_flight_log(p, fmt)
        except LogError as exc:
            bad += 1
            print(f"INVALID {exc}")
            continue
        lab = "no labels" if f.labels is None else f"{f.labels.mean():.1%} labelled anomalous"
        print(
            f"ok {p}: {f.n_rows} rows, {f.duration_s:.1f} s, {f.sample_rate_hz:.1f} Hz, "
            f"{len(f.channels)} channels, longest NaN gap {f.longest_gap_rows} rows, {lab}"
        )
    print(f"{len(paths) - bad} valid, {bad} invalid")
    return EXIT_USAGE if bad else 0


def cmd_synth(args: argparse.Namespace) -> int:
    from anomaly.data.synthetic import SynthConfig, write_dataset

    cfg = SynthConfig(
        n_flights=args.flights,
        seed=args.seed,
        rate_hz=args.rate_hz,
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
        fault_free_share=args.fault_free_share,
    )
    man = write_dataset(args.out, cfg)
    counts = man["fault_type"].value_counts().to_dict()
    print(f"wrote {len(man)} flights to {Path(args.out) / 'flights'} ({counts})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anomaly", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check CSV logs and print what they hold")
    p.add_argument("inputs", nargs="+", help="files, folders or globs of .csv / .csv.gz logs")
    _fmt_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("synth", help="write a synthetic dataset folder")
    p.add_argument("--out", required=True)
    p.add_argument("--flights", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate-hz", type=float, default=20.0, choices=[10.0, 20.0])
    p.add_argument("--min-duration", type=float, default=60.0, help="seconds")
    p.add_argument("--max-duration", type=float, default=240.0, help="seconds")
    p.add_argument("--fault-free-share", type=float, default=0.25)
    p.set_defaults(func=cmd_synth)

    from anomaly import cli_train

    cli_train.add_commands(sub, _fmt_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    # MLflow's per-file download bars would bury the one progress bar that matters
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Lightning's banner (GPU/TPU availability, tips) is noise on a CPU tool; warnings still show
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (LogError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
