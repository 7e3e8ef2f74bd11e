"""`anomaly watch`: follow a log that is still being written; print each alarm as it is raised."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anomaly.cli.common import format_options, log_format_flags, positive_float


def add_parser(sub) -> None:
    p = sub.add_parser(
        "watch",
        parents=[log_format_flags(channels=False)],
        help="follow a growing CSV log and raise alarms as rows arrive (like tail -f)",
    )
    p.add_argument("log", help="the CSV log being written (plain .csv)")
    p.add_argument(
        "--model",
        required=True,
        help="runs:/ID/model, models:/NAME@ALIAS, models:/NAME/VERSION or a folder",
    )
    p.add_argument("--events", help="append each alarm to this CSV (the events table's columns)")
    p.add_argument("--once", action="store_true", help="stop at the end of the file")
    p.add_argument(
        "--poll",
        type=positive_float,
        default=0.02,  # detect.watch.POLL_S, not imported here: --help stays quick
        help="seconds between looks at the file (default: %(default)s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from anomaly.cli.score import load_pipeline
    from anomaly.data.schema import LogFormat
    from anomaly.detect.watch import watch

    pipe = load_pipeline(args.model)
    fmt = LogFormat.from_options(**pipe.log_format).with_options(**format_options(args))

    # said when the watch ends, not beside each alarm: a frozen sensor's alarm comes from its
    # own check, whatever the score (inf: a rule that never alarms)
    level = float(pipe.rule.threshold.threshold_)
    raised = 0

    def announce(event: dict) -> None:
        nonlocal raised
        raised += 1
        print(
            f"ALARM {args.log} t={event['start']:.2f} s channel={event['channel'] or '-'} "
            f"score={event['peak_score']:.3f}",
            flush=True,
        )

    events = Path(args.events) if args.events else None
    try:
        summary = watch(pipe, Path(args.log), fmt, events, args.once, args.poll, announce)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM is how a watch ends
        print(f"stopped; {raised} alarm(s), decision level {level:.3f}", file=sys.stderr)
        return 0
    n = len(summary.alarms)
    print(f"{summary.rows} rows, {n} alarm(s), decision level {level:.3f}", file=sys.stderr)
    return 0
