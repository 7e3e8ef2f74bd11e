"""`anomaly` command line: find faults in flight logs, in real time.

Subcommands: validate, synth, train, compare, search, sweep, report, score, watch, explain.

One module per subcommand, each with `add_parser(sub)` and its `run`; heavy libraries are
imported inside `run`, so `anomaly --help` starts in a fraction of a second. Logging is configured
here once; library modules only use `logging.getLogger(__name__)`.

Exit codes: 0 done; 1 a failure inside the tool, with the traceback kept in a file the message
names (`--debug` prints it), or a batch in which any file was refused or failed (each reported,
the rest scored); 2 a mistake the user can fix (bad flag, config, path or input file), reported
in one line; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from anomaly.cli import (
    common,
    explain,
    report,
    score,
    search,
    sweep,
    synth,
    train,
    validate,
    watch,
)

SUBCOMMANDS = (validate, synth, train, search, sweep, report, score, watch, explain)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anomaly", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of a failure inside the tool"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # MLflow's per-file download bars would bury the one progress bar that matters
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints, escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    with common.terminate_as_interrupt():
        return common.run_command(args)
