"""`anomaly explain`: which past seconds of which channels a deep model's output rested on."""

from __future__ import annotations

import argparse
from pathlib import Path

from anomaly.cli.common import finite_float, format_options, log_format_flags
from anomaly.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "explain",
        parents=[log_format_flags(channels=False)],
        help="draw W(t, k), the weights of past inputs, for one row of a log (deep models)",
    )
    p.add_argument("log", help="a CSV log")
    p.add_argument(
        "--model",
        required=True,
        help="runs:/ID/model, models:/NAME@ALIAS, models:/NAME/VERSION or a folder",
    )
    p.add_argument(
        "--at",
        type=finite_float,
        help="seconds since the first row (default: the first alarm, or the highest statistic "
        "on a log with no alarm)",
    )
    p.add_argument("--out", default="explain", help="folder for the PNGs (default: explain/)")
    p.add_argument("--overwrite", action="store_true", help="replace a figure that exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt
    import numpy as np

    from anomaly.cli.score import load_pipeline
    from anomaly.data.logs import LogReader, printable, read_flight_log
    from anomaly.data.schema import LogFormat
    from anomaly.detect.batch import RateCheck, not_finite, temporary
    from anomaly.detect.pipeline import NotFiniteError
    from anomaly.evaluate.lens import (
        effective_weights,
        estimating_output,
        network_of,
        window_at,
    )
    from anomaly.evaluate.plots import explain_figure

    if Path(args.log).is_dir():  # the reader would call it a folder without logs
        raise UserError(f"{args.log}: a folder; explain draws one log: name a file in it")
    pipe = load_pipeline(args.model)
    network = network_of(pipe)
    if network is None:
        raise UserError(
            f"--model {args.model}: a {pipe.model_name} model has no network to explain"
        )
    fmt = LogFormat.from_options(**pipe.log_format).with_options(**format_options(args))
    flight = read_flight_log(args.log, fmt, pipe.channels, labels=False)
    # as `score` refuses a log at another rate, naming the file's rows
    file_rows = LogReader(args.log, fmt).file.file_rows  # data rows -> the file's lines
    rate = RateCheck(pipe, Path(args.log), fmt.time_col, file_rows)
    rate.see(flight.time)
    rate.finish()
    try:
        scored = pipe.score(flight.values, flight.time)
    except NotFiniteError as exc:
        raise not_finite(Path(args.log), exc) from None
    T = pipe.window_len
    if flight.n_rows < T:  # before a row is chosen: no row of it has a window
        raise UserError(f"{args.log}: {flight.n_rows} rows, shorter than one window ({T} rows)")
    if args.at is not None:
        # the row nearest `--at`: times since the first row are sums like 3.2999999999999545,
        # which a first-at-or-after search would pass for the next row
        after = int(np.searchsorted(flight.time, args.at))
        before = max(after - 1, 0)
        nearer_before = after == flight.n_rows or (
            args.at - flight.time[before] <= flight.time[after] - args.at
        )
        row = before if nearer_before else after  # the nearer neighbour, across a gap too
        half = 0.5 / pipe.sample_rate_hz
        if not -half <= args.at <= flight.time[-1] + half:
            row = -1  # outside the log
        why = f"the row nearest {args.at:g} s"
    elif scored.is_anomaly[T - 1 :].any():  # a frozen-signal alarm may come before a window
        row = T - 1 + int(np.argmax(scored.is_anomaly[T - 1 :]))
        why = "first alarm"
    else:
        row = T - 1 + int(np.argmax(scored.score[T - 1 :]))  # a row with a window
        why = "no alarm: the highest statistic"
    if not T - 1 <= row < flight.n_rows:
        raise UserError(f"--at {args.at}: outside {args.log} or within its first window")
    W = effective_weights(network, window_at(pipe, flight.values, row)[None])[0]  # (T, T, F, F)
    blamed = int(scored.channel[row]) if pipe.detector.has_attribution else 0
    name = printable(Path(args.log).name)  # a name that is not UTF-8 cannot be drawn
    title = f"{pipe.model_name} on {name}, t = {flight.time[row]:.2f} s ({why})"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: a file, not a folder")
    path = out / f"{flight.flight_id}-W-{flight.time[row]:.2f}s.png"
    if path.exists() and not args.overwrite:  # another model's figure of the same row, say
        raise UserError(f"{path} exists; pass --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot be made ({e.strerror})") from None
    out_row = estimating_output(network, T)
    fig = explain_figure(W, pipe.channels, blamed, pipe.sample_rate_hz, title, out_row)
    tmp = temporary(path)  # a killed run leaves no half-written figure under the real name
    try:
        fig.savefig(tmp, dpi=110, format="png")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    # the row of the window the blamed estimate leans on most, summed over input channels
    weight = np.abs(W[out_row, :, blamed, :]).sum(axis=1)  # (T,) per input row
    lag_s = ((T - 1) - int(np.argmax(weight))) / pipe.sample_rate_hz
    line = file_rows([row + 2]).get(row + 2, row + 2)
    print(
        f"{path}: W of the window ending at row {line}, t = {flight.time[row]:.2f} s ({why}), "
        "channel "
        f"{pipe.channels[blamed]}; its estimate leans most on the row {lag_s:.2f} s before"
        + (" (in its learned correction to the last row)" if out_row == T - 2 else "")
    )
    return 0
