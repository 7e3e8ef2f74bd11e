"""What subcommands share: the log-format and training flags, the error policy and exit codes.

Nothing heavy is imported here: building the parser must stay fast (`anomaly --help`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from anomaly import user_dir

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _number(text: str, kind: type, rule: str, ok) -> int | float:
    """`text` as `kind` when `ok` holds for it; else argparse's usage error stating `rule`."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {rule}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A count that must be at least 1 (flights, epochs, rows per chunk, workers)."""
    return _number(text, int, "an integer >= 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    """A seed or a number of rows that may be 0."""
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def finite_float(text: str) -> float:
    """A number that is not nan or inf (a nan threshold can never flag)."""
    return _number(text, float, "a finite number", math.isfinite)


def non_negative_float(text: str) -> float:
    """A decision level on the alarm statistic, which is never below 0 (a negative level would
    flag every row)."""
    return _number(text, float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def positive_float(text: str) -> float:
    """A duration in seconds, more than 0."""
    return _number(text, float, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)


def unit_share(text: str) -> float:
    """A share of a whole, from 0 to 1."""
    return _number(text, float, "a number from 0 to 1", lambda v: 0 <= v <= 1)


def threshold_rule(text: str) -> str:
    """A 'kind:value' rule whose value, where it is a number, is finite ('fixed:nan' never
    flags); the rule's kind and range are checked where it is built."""
    value = text.partition(":")[2]
    try:
        number = float(value)
    except ValueError:
        return text
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite value in the rule, got {text!r}")
    return text


def log_format_flags(channels: bool = True) -> argparse.ArgumentParser:
    """Parent parser of the flags that say how to read a log; each defaults to None (not given),
    so a preset's or a model's own format stays in force unless a flag overrides it. Commands
    that score with a trained model get no --channels: the model's channels are fixed."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("log format")
    g.add_argument("--sep", help="delimiter (default: sniffed among ',', ';' and tab)")
    g.add_argument("--time-col", help="time column (default: auto-detected)")
    g.add_argument("--label-col", help="label column, 0 normal and nonzero anomalous")
    if channels:
        g.add_argument("--channels", help="comma-separated channel columns (default: all numeric)")
    g.add_argument(
        "--max-gap",
        type=non_negative_int,
        help="longest run of empty cells to forward-fill (rows; default 10)",
    )
    return p


def format_options(args: argparse.Namespace) -> dict:
    """The log-format flags as `LogFormat.with_options` keywords (None: not given)."""
    opts = {
        "sep": args.sep,
        "time_col": args.time_col,
        "label_col": args.label_col,
        "max_gap_rows": args.max_gap,
    }
    if "channels" in args:
        opts["channels"] = args.channels
    return opts


def training_flags() -> argparse.ArgumentParser:
    """Parent parser of the flags `train` and `compare` share."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--data", help="preset (synthetic, alfa), dataset folder, file or glob (default: synthetic)"
    )
    p.add_argument("--config", help="experiment YAML file (only what differs from defaults)")
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument(
        "--train-flights", type=positive_int, help="use this many training flights (chosen by seed)"
    )
    p.add_argument("--experiment", help="MLflow experiment name (default: anomaly)")
    p.add_argument("--max-epochs", type=positive_int)
    p.add_argument(
        "--threshold",
        type=threshold_rule,
        help="decision level fitted on validation normal flights (default fa_per_hour:0.5; also "
        "quantile:0.995, zscore:4, max:1.2, fixed:X)",
    )
    return p


def save_traceback(exc: BaseException) -> Path:
    """Write the traceback of a failure inside the tool to a file; returns its path. Where the
    user's folder cannot be written (a read-only home, ANOMALY_CACHE naming a file), the system's
    temporary folder keeps it: the message must always name a file that holds it."""
    name = f"anomaly-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    # a file name that is not UTF-8 reaches argv as surrogates: kept, escaped
    body = f"anomaly {' '.join(sys.argv[1:])}\n\n{text}"
    for folder in (user_dir("tracebacks"), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(body, encoding="utf-8", errors="backslashreplace")
            return folder / name
        except OSError:
            continue
    raise OSError(
        f"no folder could keep the traceback (tried {user_dir('tracebacks')} and the temporary folder)"
    )


def run_command(args: argparse.Namespace) -> int:
    """Run a subcommand under the error policy (see anomaly.cli's docstring)."""
    from anomaly.data.schema import LogError
    from anomaly.errors import UserError

    try:
        return int(args.func(args) or 0)
    except (
        UserError,
        LogError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        FileExistsError,
        PermissionError,  # a path the user named: theirs to fix
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        try:
            where = f"traceback in {save_traceback(exc)}"
        except OSError as unkept:  # nowhere to write it: it goes to the screen instead
            traceback.print_exc()
            where = f"traceback above ({unkept})"
        else:
            if getattr(args, "debug", False):
                traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: internal failure ({type(exc).__name__}: {first}); {where}", file=sys.stderr)
        return EXIT_FAILED


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (what `timeout`, systemd and `docker stop` send) ends a command the way Ctrl-C
    does: temporary outputs are removed and the run is marked as killed."""

    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:  # not the main thread (a test runner's worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
