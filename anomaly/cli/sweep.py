"""`anomaly sweep`: run a study's grid of trials, resumably."""

from __future__ import annotations

import argparse
import sys

from anomaly.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a study's grid (models x training sizes x seeds), resumably"
    )
    p.add_argument("spec", help="study spec YAML, e.g. experiments/small_data.yaml")
    p.add_argument("--workers", type=positive_int, help="parallel cells (default: the spec's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--resume-from",
        metavar="ARCHIVE",
        help="a sweep archive (cells.jsonl.gz, written by `anomaly report`): its cells that this "
        "grid still has, on these flights, count as finished, so only the rest run",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from anomaly.study.spec import SweepSpec
    from anomaly.study.sweep import run_sweep

    spec = SweepSpec.from_yaml(args.spec)
    progress = False if args.quiet else None
    parent_id, counts = run_sweep(
        spec, workers=args.workers, progress=progress, resume_from=args.resume_from
    )
    print(
        f"sweep {spec.name}: {counts['cells']} cells, {counts['skipped']} already done, "
        f"{counts['finished']} finished, {counts['failed']} failed"
    )
    print(f"parent run {parent_id} in experiment '{spec.experiment}'")
    if counts["failed"]:
        # a failed cell is the tool's failure, not the user's: its traceback is in error.txt
        print(
            f"{counts['failed']} cells failed: each run keeps its traceback in error.txt "
            f"(and its message in the 'error' tag); rerun to retry them",
            file=sys.stderr,
        )
        return 1
    return 0
