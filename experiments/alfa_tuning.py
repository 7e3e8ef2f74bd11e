"""Choose the ALFA preset's settings on training and validation flights only.

For each channel set and window length a detector is trained on the training flights; the
validation flights are scored once and every post-processing choice (smoothing, threshold rule,
minimum event length) is evaluated on them with the ALFA per-flight protocol. The threshold for a
validation flight is fitted on the normal rows of the *other* validation flights (leave one flight
out), so a setting cannot look good by fitting its threshold on the very rows it is judged on.
Test flights are never loaded here. Prints a ranked table; the chosen settings go into
anomaly/config.py (PRESETS["alfa"]) and experiments/alfa.yaml by hand, with this output in the PR.

    .venv/bin/python experiments/alfa_tuning.py [--model pca] [--top 15]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd

from anomaly.config import build_config
from anomaly.data.datasets import load_dataset
from anomaly.detect.thresholds import Threshold
from anomaly.evaluate import metrics as M
from anomaly.experiments.run import execute

ERRORS = ["field.alt_error", "field.aspd_error", "field.xtrack_error", "delta_yaw", "delta_pitch", "delta_roll",
          "delta_x", "delta_y", "delta_z"]  # fmt: skip
RATES = ["field.angular_velocity.x", "field.angular_velocity.y", "field.angular_velocity.z",
         "field.linear_acceleration.x", "field.linear_acceleration.y", "field.linear_acceleration.z"]  # fmt: skip
VELOCITY = ["field.twist.linear.x", "field.twist.linear.y", "field.twist.linear.z"]
CHANNEL_SETS = {
    "all": None,
    "errors": ERRORS,
    "errors+rates": ERRORS + RATES,
    "errors+rates+velocity": ERRORS + RATES + VELOCITY,
}
WINDOWS = [10, 20, 40, 80]
SMOOTH_S = [0.0, 1.0, 2.0]
THRESHOLDS = ["quantile:0.9", "quantile:0.95", "quantile:0.99", "quantile:0.999"]
MIN_EVENT_S = [0.0, 1.0, 2.0]
WARMUP_S = [
    0.0,
    10.0,
]  # no alarm in a flight's first seconds: segment starts carry waypoint transients


def evaluate_post(
    out, errors: dict, smooth_s: float, rule: str, min_event_s: float, warmup_s: float
) -> dict:
    pipe = out.pipeline
    rate = pipe.sample_rate_hz
    pipe.smooth_rows = max(1, int(round(smooth_s * rate)))
    pipe.min_event_rows = max(1, int(round(min_event_s * rate)))
    pipe.warmup_rows = int(round(warmup_s * rate))
    flights = out.split.validation
    scores = {f.flight_id: pipe.finish(errors[f.flight_id]).score for f in flights}
    outcomes, labels, all_scores, all_flags = [], [], [], []
    for f in flights:
        others = [
            scores[g.flight_id][: len(g.normal_prefix())]
            for g in flights
            if g.flight_id != f.flight_id
        ]
        pipe.threshold = Threshold(rule).fit(np.concatenate(others))
        flagged = pipe.flag(scores[f.flight_id])
        confirm_s = (pipe.min_event_rows - 1) / rate
        outcomes.append(
            M.flight_outcome(
                f.flight_id, f.fault_type, f.time, f.labels, flagged, confirm_s=confirm_s
            )
        )
        labels.append(f.labels)
        all_flags.append(flagged)
        all_scores.append(scores[f.flight_id])
    fm = M.flight_metrics(outcomes)
    p, r = fm["flight_precision"], fm["flight_recall"]
    return {
        "flight_f1": 2 * p * r / (p + r) if p + r else 0.0,
        **fm,
        **M.ranking_metrics(np.concatenate(labels), np.concatenate(all_scores)),
        "f1_point": M.point_metrics(np.concatenate(labels), np.concatenate(all_flags))["f1_point"],
        "outcomes": " ".join(o.outcome for o in outcomes),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="pca")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--horizon", type=int, default=0, help="deep models: forecast the last H steps")
    ap.add_argument("--channel-sets", default=",".join(CHANNEL_SETS), help="comma-separated subset")
    ap.add_argument("--windows", default=",".join(map(str, WINDOWS)), help="comma-separated window lengths")
    args = ap.parse_args()
    ds = load_dataset("alfa")
    rows = []
    sets = {k: CHANNEL_SETS[k] for k in args.channel_sets.split(",")}
    windows = [int(w) for w in args.windows.split(",")]
    for (set_name, channels), window in itertools.product(sets.items(), windows):
        stride = max(1, window // 10)
        if args.horizon:
            stride = min(stride, args.horizon)
        over = {"data": {"data": "alfa", "channels": channels}, "model": args.model, "seed": args.seed,
                "window": {"window_len": window, "stride": stride, "score_stride": stride},
                "train": {"horizon": args.horizon}}  # fmt: skip
        out = execute(build_config({}, over), ds, evaluate_on="validation")
        errors = {
            f.flight_id: out.pipeline.row_errors(f.values, f.flight_id)
            for f in out.split.validation
        }
        for smooth, rule, min_ev, warm in itertools.product(
            SMOOTH_S, THRESHOLDS, MIN_EVENT_S, WARMUP_S
        ):
            m = evaluate_post(out, errors, smooth, rule, min_ev, warm)
            rows.append({"channels": set_name, "window": window, "smooth_s": smooth, "threshold": rule,
                         "min_event_s": min_ev, "warmup_s": warm, **m})  # fmt: skip
    df = pd.DataFrame(rows).sort_values(
        ["flight_f1", "f1_point", "auc_roc"], ascending=[False, False, False]
    )
    cols = ["channels", "window", "smooth_s", "threshold", "min_event_s", "warmup_s", "flight_f1", "flight_precision", "flight_recall",
            "detection_delay_seconds", "f1_point", "auc_roc", "auc_pr", "outcomes"]  # fmt: skip
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(df[cols].head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
