"""Table over seeds of `anomaly compare --data alfa --seed S --experiment alfa-5seeds` runs.

    for s in 0 1 2 3 4; do .venv/bin/anomaly compare --data alfa --seed $s --experiment alfa-5seeds; done
    .venv/bin/python scripts/alfa_seeds_table.py [--experiment alfa-5seeds]

Prints, per model, mean and standard deviation over seeds of the per-flight protocol and row
metrics on the 20 test flights, then detected / early-alarm / missed flights per fault type, then
precision, recall and delay counted as the ALFA authors' evaluator counts them (every raised
alarm a detection message: `anomaly.evaluate.metrics.evaluator_counts_of_alarms`), recomputed
from each run's events.csv and per_flight.csv.
A model and seed run more than once count once, with their latest run.
"""

from __future__ import annotations

import argparse
import io
import os

import mlflow
import pandas as pd

from anomaly.evaluate.metrics import evaluator_counts_of_alarms, evaluator_metrics
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
    per, evaluator = [], []
    for _, r in runs.iterrows():
        text = mlflow.artifacts.load_text(f"runs:/{r['run_id']}/per_flight.csv")
        df = pd.read_csv(io.StringIO(text))
        df["model"] = r["model"]
        per.append(df)
        events = pd.read_csv(
            io.StringIO(mlflow.artifacts.load_text(f"runs:/{r['run_id']}/events.csv"))
        )
        counts = [
            evaluator_counts_of_alarms(
                events.loc[events["flight_id"] == f.flight_id, "start"].tolist(),
                None if pd.isna(f.onset_s) else float(f.onset_s),
                timeout_s=float(r["params.detect.timeout_s"]),
            )
            for f in df.itertuples()
        ]
        evaluator.append({"model": r["model"], **evaluator_metrics(counts)})
        evaluator[-1]["false_positives"] = sum(c.fp for c in counts)
    per = pd.concat(per)
    per = per[per["fault_type"] != "none"]
    table = per.groupby(["fault_type", "model"])["outcome"].value_counts().unstack(fill_value=0)
    print(
        "\nfault flights over all seeds: TP detected within 5 s, FP alarm before onset, FN missed"
    )
    print(table.to_string())
    ev = pd.DataFrame(evaluator).groupby("model")
    print(
        "\ncounted as the ALFA authors' evaluator (alfa-evaluate) counts: each raised alarm one "
        "detection\nmessage; one before onset, after the detection or after the timeout a false "
        "positive,\na detection in time still counted after an early one"
    )
    rows = []
    for model, g in ev:
        row = {"model": model}
        for m in ["evaluator_precision", "evaluator_recall", "evaluator_delay_seconds"]:
            row[m] = f"{g[m].mean():.3f} ± {g[m].std(ddof=1):.3f}"
        row["false positives a seed"] = f"{g['false_positives'].mean():.1f}"
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
