"""Live detection: latency from a row being appended to its alarm being raised, and rows per
second per model when rows arrive one at a time (the LSTM's recurrent state against the
Transformer's window recompute) and in chunks of 1,000.

Trains each forecaster briefly on synthetic flights (demo-sized), then a writer thread appends a
faulty flight to a CSV at 20 Hz in real time while `watch` follows it; latency is the time from
the write of the row that raises the alarm to the alarm callback. Not a test: timings vary.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from anomaly.config import build_config
from anomaly.data.schema import LogFormat
from anomaly.detect.watch import POLL_S, watch
from anomaly.study.trial import run_trial

MODELS = ("lstm", "transformer", "linear_rnn")
TARGET_MS = 50


def live_latency(trial, tmp: Path) -> tuple[float, int]:
    """Median append-to-alarm latency (ms) over the test flights the model detects."""
    pipe = trial.pipeline
    latencies = []
    for r, o in zip(trial.results, trial.outcomes):
        if o.outcome != "TP":
            continue
        f = r.flight
        first = int(r.flagged.argmax())
        rows = range(max(0, first - 200), min(f.n_rows, first + 5))  # the alarm and the lead-up
        path = tmp / f"{f.flight_id}.csv"
        written: dict[int, float] = {}
        header = ",".join(["time", *f.channels]) + "\n"
        path.write_text(header)
        done = threading.Event()

        def write(rows=rows, path=path, f=f, written=written, done=done):
            with open(path, "a") as out:
                for i in rows:
                    out.write(",".join([f"{f.time[i]:.4f}", *(f"{v:.6g}" for v in f.values[i])]))
                    out.write("\n")
                    out.flush()
                    written[i] = time.perf_counter()
                    time.sleep(1 / pipe.sample_rate_hz)
            done.set()

        raised: list[tuple[float, float]] = []
        writer = threading.Thread(target=write)
        writer.start()
        watch(
            pipe,
            path,
            LogFormat(sep=",", time_col="time", label_col=None),
            poll_s=POLL_S,  # as `anomaly watch` polls by default
            on_alarm=lambda e, raised=raised: raised.append((e["start"], time.perf_counter())),
            stop=done.is_set,
        )
        writer.join()
        if raised:
            start, at = raised[0]
            row = rows.start + int(round(start * pipe.sample_rate_hz))  # start: s since row 0
            if row in written:
                latencies.append((at - written[row]) * 1000)
    return float(np.median(latencies)) if latencies else float("nan"), len(latencies)


def throughput(pipe, values: np.ndarray, chunk: int) -> float:
    """Rows per second through the pipeline's stream alone: rows already parsed, so reading and
    checking the CSV lines (which a watch also does) is not counted."""
    stream = pipe.stream()
    t = np.arange(len(values)) / pipe.sample_rate_hz
    t0 = time.perf_counter()
    for i in range(0, len(values), chunk):
        stream.feed(t[i : i + chunk], values[i : i + chunk])
    return len(values) / (time.perf_counter() - t0)


def main() -> None:
    print(f"{'model':<12}{'latency ms':>12}{'flights':>9}{'rows/s, 1 row':>15}{'rows/s, 1000':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            over = {"model": model, "data": {"train_flights": 8}, "train": {"max_epochs": 5}}
            trial = run_trial(build_config({}, over))
            values = np.concatenate([f.values for f in trial.split.test])[:20_000]
            lat, n = live_latency(trial, Path(tmp))
            one = throughput(trial.pipeline, values[:3000], 1)
            many = throughput(trial.pipeline, values, 1000)
            print(f"{model:<12}{lat:>12.1f}{n:>9}{one:>15,.0f}{many:>14,.0f}")
    print(f"target: append-to-alarm latency under {TARGET_MS} ms for the LSTM")


if __name__ == "__main__":
    main()
