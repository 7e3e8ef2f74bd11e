"""Batch-scoring benchmark: rows per second, peak memory, and cost relative to a bare read_csv.

Builds a 1,000,000-row, 10-channel log by tiling the synthetic flights (and a 10,000,000-row one
with --big), scores it with the LSTM forecaster from `make demo` (trained here with the demo's settings if
the store has none) and prints rows/s, peak RSS and the ratio to `pandas.read_csv` of the same file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "data" / "bench"


def make_log(rows: int) -> Path:
    path = BENCH / f"log_{rows}.csv"
    if path.exists():
        return path
    from anomaly.data.datasets import load_synthetic

    flights = load_synthetic().flights
    block = np.concatenate([f.values for f in flights])
    channels = flights[0].channels
    BENCH.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with pacsv.CSVWriter(
        tmp, pa.schema([("time", pa.float64())] + [(c, pa.float32()) for c in channels])
    ) as w:
        for start in range(0, rows, len(block)):
            n = min(len(block), rows - start)
            cols = {"time": (np.arange(start, start + n) / 20.0)}
            cols.update({c: block[:n, j] for j, c in enumerate(channels)})
            w.write_table(pa.table(cols))
    tmp.replace(path)
    return path


def demo_model() -> str:
    """The LSTM forecaster of the latest `make demo`, or one trained now with the same settings."""
    import mlflow

    from anomaly.track.model_cache import tracking_uri

    mlflow.set_tracking_uri(tracking_uri())
    try:
        runs = mlflow.search_runs(
            experiment_names=["demo"],
            filter_string="params.model = 'lstm'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if len(runs):
            return f"runs:/{runs.iloc[0]['run_id']}/model"
    except Exception:  # no store yet: train below
        pass
    from anomaly.config import build_config
    from anomaly.study.trial import run_trial

    trial = run_trial(build_config({}, {"model": "lstm", "data": {"train_flights": 8}}))
    return str(trial.pipeline.save(BENCH / "lstm_pipeline"))


def run_score(path: Path, model: str, out: Path) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MB) of the scoring process, and its summary.

    The peak comes from the scorer's own VmHWM (summary.json): a child's rusage would include this
    process's memory at fork time.
    """
    cmd = [
        sys.executable,
        "-m",
        "anomaly.cli",
        "score",
        str(path),
        "--model",
        model,
        "--out",
        str(out),
        "--quiet",
        "--overwrite",
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    if proc.wait() != 0:
        raise SystemExit(f"scoring failed: {' '.join(cmd)}")
    wall = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    return wall, summary["peak_rss_mb"], summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--big", action="store_true", help="also score a 10,000,000-row log (memory check)"
    )
    args = ap.parse_args()
    model = demo_model()
    sizes = [1_000_000] + ([10_000_000] if args.big else [])
    print(f"model {model}")
    print(
        f"{'rows':>12}{'read_csv s':>12}{'score s':>10}{'rows/s':>12}{'ratio':>8}"
        f"{'process s':>11}{'peak RSS MB':>13}"
    )
    for rows in sizes:
        path = make_log(rows)
        t0 = time.perf_counter()
        pd.read_csv(path)
        read = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            wall, rss, summary = run_score(path, model, Path(tmp))
        score_s = summary["elapsed_seconds"]
        print(
            f"{rows:>12,}{read:>12.2f}{score_s:>10.2f}{rows / score_s:>12,.0f}"
            f"{score_s / read:>8.2f}{wall:>11.2f}{rss:>13.0f}"
        )
    print(
        "score s: in-process scoring (summary.json); process s: `anomaly score` start to exit, "
        "as a user times it (imports, model load, scoring, writing)"
    )
    print(
        "targets: >= 300,000 rows/s, ratio <= 5, peak RSS <= 1024 MB and flat from 1M to 10M rows"
    )


if __name__ == "__main__":
    main()
