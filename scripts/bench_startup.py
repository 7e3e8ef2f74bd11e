"""Start-up cost of the CLI, process start to exit, the way a user times it.

Prints the median of a few runs of `anomaly --help`, `anomaly validate` of one small log and
`anomaly score` of that log with a local model folder and with an MLflow `runs:/` URI, beside
bare `python -c "import ..."` of the libraries each needs. Targets: --help < 0.5 s, validate
< 1.5 s, score within 1.5 s of the bare imports. Not a test: timings vary by machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 3


def timed(cmd: list[str], env: dict) -> float:
    runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        subprocess.run(
            cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def prepare(tmp: Path) -> tuple[Path, Path, str]:
    """A 4,000-row synthetic log, an LSTM forecaster pipeline folder and the same model logged to MLflow."""
    from anomaly.config import build_config
    from anomaly.data.synthetic import SynthConfig, write_dataset
    from anomaly.study.trial import run_trial
    from anomaly.track.tracker import Tracker
    from anomaly.track.trials import log_trial

    data = tmp / "flights"
    write_dataset(data, SynthConfig(n_flights=6, seed=1, min_duration_s=200, max_duration_s=200))
    cfg = build_config(
        {}, {"model": "lstm", "data": {"data": str(data)}, "train": {"max_epochs": 1}}
    )
    trial = run_trial(cfg)
    folder = trial.pipeline.save(tmp / "model")
    _, uri = log_trial(trial, Tracker("bench-startup"))
    return sorted((data / "flights").glob("*.csv"))[0], folder, uri


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
        os.environ.update(env)
        log, folder, uri = prepare(tmp)
        anomaly = [sys.executable, "-m", "anomaly.cli"]
        score = [*anomaly, "score", str(log), "--out", str(tmp / "out"), "--quiet", "--overwrite"]
        bare = {
            name: timed([sys.executable, "-c", f"import {name}"], env)
            for name in ("pandas", "torch, pandas", "torch, pandas, mlflow")
        }
        rows = [
            ("anomaly --help", timed([*anomaly, "--help"], env), None, 0.5),
            ("anomaly validate (one log)", timed([*anomaly, "validate", str(log)], env), None, 1.5),
            (
                "anomaly score, local folder",
                timed([*score, "--model", str(folder)], env),
                "torch, pandas",
                1.5,
            ),
            (
                "anomaly score, runs:/ URI",
                timed([*score, "--model", uri], env),
                "torch, pandas, mlflow",
                1.5,
            ),
        ]
    print(f"median of {REPEATS} runs, process start to exit; log of 4,000 rows x 10 channels")
    for name, t in bare.items():
        print(f"  bare python -c 'import {name}': {t:5.2f} s")
    for name, t, against, target in rows:
        if against is None:
            print(f"  {name:<30} {t:5.2f} s   (target < {target} s)")
        else:
            extra = t - bare[against]
            print(
                f"  {name:<30} {t:5.2f} s   {extra:+.2f} s over 'import {against}' (target < +{target} s)"
            )


if __name__ == "__main__":
    main()
