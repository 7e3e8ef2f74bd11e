"""`anomaly report`: the study report of a sweep, from MLflow alone."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write report.md, figures and the cell archive (cells.jsonl.gz) from a sweep's MLflow runs",
    )
    p.add_argument("--sweep", required=True, help="parent run id or experiment name")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from anomaly.study.report import make_report

    print(make_report(args.sweep, args.out))
    return 0
