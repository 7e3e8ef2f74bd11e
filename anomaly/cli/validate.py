"""`anomaly validate`: check logs and print what each holds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from anomaly.cli.common import EXIT_USAGE, format_options, log_format_flags


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate", parents=[log_format_flags()], help="check CSV logs and print what they hold"
    )
    p.add_argument(
        "inputs", nargs="+", help="files, folders or globs of .csv / .csv.gz logs, or 'alfa'"
    )
    p.set_defaults(func=run)


if TYPE_CHECKING:
    from anomaly.data.checks import Suspicion


def _warn(path: Path, s: Suspicion) -> None:
    column = "" if s.column is None else f", column '{s.column}'"
    print(f"WARNING {path}{column}: {s.reason}")


def run(args: argparse.Namespace) -> int:
    """An `ok` or `INVALID` line per log, each ok one followed by its warnings (which never
    fail it); warnings that compare logs (sample rate, channels) follow once every log is read."""
    from anomaly.data.checks import channel_suspicions, flight_suspicions, rate_suspicions
    from anomaly.data.logs import expand_inputs, read_flight_log
    from anomaly.data.schema import LogError, LogFormat

    base, inputs = LogFormat(), list(args.inputs)
    if inputs == ["alfa"]:  # the preset: its own columns, labels and clean-up
        from anomaly.data.datasets import ALFA_FORMAT, alfa_dir

        base, inputs = ALFA_FORMAT, [str(alfa_dir())]
    fmt = base.with_options(**format_options(args))
    paths = expand_inputs(inputs)
    if all(p.is_dir() for p in paths):  # nothing but folders without logs
        raise LogError(" ".join(inputs), "no .csv or .csv.gz logs")
    bad = 0
    valid, rates, channels = [], [], []  # of the valid logs, for the checks across them
    for p in paths:
        try:
            f = read_flight_log(p, fmt)
        except LogError as exc:
            bad += 1
            print(f"INVALID {exc}")
            continue
        lab = "no labels" if f.labels is None else f"{f.labels.mean():.1%} labelled anomalous"
        if f.labels is None and fmt.label_col is not None:  # named, yet absent: a typo?
            lab = f"no labels (no column '{fmt.label_col}')"
        print(
            f"ok {p}: {f.n_rows} rows, {f.duration_s:.1f} s, {f.sample_rate_hz:.1f} Hz, "
            f"{len(f.channels)} channels, longest NaN gap {f.longest_gap_rows} rows, {lab}"
        )
        for s in flight_suspicions(f):
            _warn(p, s)
        valid.append(p)
        rates.append(f.sample_rate_hz)
        channels.append(f.channels)
    for s in [*rate_suspicions(rates), *channel_suspicions(channels)]:
        _warn(valid[s.flight], s)
    print(f"{len(paths) - bad} valid, {bad} invalid")
    return EXIT_USAGE if bad else 0
