"""`anomaly score`: score folders of CSV logs with a trained model.

A model given as a local folder is loaded without importing MLflow; the networks run as plain
`nn.Module`s, so scoring never imports Lightning.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from anomaly.cli.common import (
    EXIT_FAILED,
    format_options,
    log_format_flags,
    non_negative_float,
    positive_int,
    save_traceback,
)
from anomaly.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "score",
        parents=[log_format_flags(channels=False)],
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
        "--threshold",
        type=non_negative_float,
        help="fixed decision level on the alarm statistic (>= 0) instead of the model's fitted one",
    )
    p.add_argument(
        "--chunk-rows",
        type=positive_int,
        default=200_000,
        help="rows read at a time; bounds memory (default: %(default)s)",
    )
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--contributions", action="store_true", help="add one contribution column per channel"
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def load_pipeline(uri: str):
    """A local pipeline folder or any MLflow model URI; MLflow is imported only for a URI that
    is neither in the local cache of immutable models nor a `runs:/` model of a local SQLite
    store."""
    from anomaly.detect.pipeline import Pipeline, find_pipeline_folder
    from anomaly.track.model_cache import cached, local_model

    folder = find_pipeline_folder(uri)
    if folder is None and (hit := cached(uri) or local_model(uri)) is not None:
        folder = find_pipeline_folder(hit)
    if folder is None:
        import tempfile

        from anomaly.track.tracker import download_model

        with tempfile.TemporaryDirectory(prefix="anomaly-model-") as tmp:
            return Pipeline.load(download_model(uri, Path(tmp)))  # read whole, then removed
    return Pipeline.load(folder)


def internal_failure(exc: Exception) -> str:
    """A failure inside the tool on one file of a batch: its reason, the traceback kept."""
    return f"internal failure ({type(exc).__name__}: {exc}); traceback in {save_traceback(exc)}"


def run(args: argparse.Namespace) -> int:
    from anomaly.data.logs import expand_inputs
    from anomaly.data.schema import LogFormat
    from anomaly.detect.batch import score_batch
    from anomaly.detect.thresholds import Threshold

    resolved = None
    if args.model.startswith("models:/"):  # an alias or 'latest' can move: pin it
        from anomaly.track.tracker import resolve_alias

        resolved = resolve_alias(args.model)
    pipe = load_pipeline(resolved[0] if resolved else args.model)
    if args.threshold is not None:
        pipe.rule.threshold = Threshold.fixed(args.threshold)
    paths = expand_inputs(args.inputs)
    if not any(p.is_file() for p in paths):  # nothing to score: the command line's mistake
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise UserError(f"{missing[0]}: file not found (no input names a log)")
        raise UserError(f"no .csv or .csv.gz logs in {' '.join(args.inputs)}")
    # the model reads logs as its training logs were read, unless a flag says otherwise
    fmt = LogFormat.from_options(**pipe.log_format).with_options(**format_options(args))
    summary = score_batch(
        pipe,
        paths,
        Path(args.out),
        fmt,
        args.chunk_rows,
        args.format,
        args.overwrite,
        args.contributions,
        progress=not args.quiet and sys.stderr.isatty(),
        model_uri=args.model
        if resolved is None
        else f"{args.model} = {resolved[0]} (run {resolved[1]})",
        on_failure=internal_failure,
    )
    for f in summary.failed:
        print(f"FAILED {f['reason']}", file=sys.stderr)
    if not args.quiet:
        print(
            f"scored {len(summary.scored)}/{summary.files} files, {summary.rows} rows, "
            f"{summary.anomalous_rows} anomalous rows, {summary.events} events -> {args.out}"
        )
    # the issue-12 policy: a batch with any file refused or failed exits 1 at the end
    return EXIT_FAILED if summary.failed else 0
