"""Table over seeds of `anomaly compare --data alfa --seed S --experiment alfa-5seeds` runs.

    for s in 0 1 2 3 4; do .venv/bin/anomaly compare --data alfa --seed $s --experiment alfa-5seeds; done
    .venv/bin/python scripts/alfa_seeds_table.py [--experiment alfa-5seeds]

Prints, per model, mean and standard deviation over seeds of the per-flight protocol and row
metrics on the 20 test flights, then detected / early-alarm / missed flights per fault type.
A model and seed run more than once count once, with their latest run.
"""

from __future__ import annotations

import argparse
import io
import os

import mlflow
import pandas as pd

from anomaly.track.model_cache import tracking_uri

METRICS = [
    "flight_precision",
    "flight_recall",
    "detection_delay_seconds",
    "auc_roc",
    "auc_pr",
    "f1_point",
    "vus_pr",
    "false_alarms_per_hour",
    "false_alarms_per_hour_fault_free",
    "train_seconds",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="alfa-5seeds")
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri())
    runs = mlflow.search_runs(
        experiment_names=[args.experiment], filter_string="attributes.status = 'FINISHED'"
    )
    runs["model"] = runs["params.model"]
    # a model and seed run again (after a fix) counts once: its latest run
    runs = runs.sort_values("start_time").drop_duplicates(["model", "params.seed"], keep="last")
    print(f"{len(runs)} runs, seeds {sorted(runs['params.seed'].unique())}")
    rows = []
    for model, g in runs.groupby("model"):
        row = {"model": model, "runs": len(g)}
        for m in METRICS:
            v = g[f"metrics.{m}"]
            row[m] = f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))
    per = []
    for _, r in runs.iterrows():
        text = mlflow.artifacts.load_text(f"runs:/{r['run_id']}/per_flight.csv")
        df = pd.read_csv(io.StringIO(text))
        df["model"] = r["model"]
        per.append(df)
    per = pd.concat(per)
    per = per[per["fault_type"] != "none"]
    table = per.groupby(["fault_type", "model"])["outcome"].value_counts().unstack(fill_value=0)
    print(
        "\nfault flights over all seeds: TP detected within 5 s, FP alarm before onset, FN missed"
    )
    print(table.to_string())


if __name__ == "__main__":
    main()
