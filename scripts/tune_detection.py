"""Choose alarm-rule settings by cross-validation over training and validation flights only.

    .venv/bin/python scripts/tune_detection.py --data synthetic --model lstm [--config FILE]
        [--folds 4] [--grid '{"drift": [0.5, 1.0], "smooth_s": [0, 0.5]}'] [--save out.csv]

Test flights of a fixed split are never loaded into a detector here (anomaly.study.tuning). Each
fold's residuals are cached under data/tuning/, keyed by the config, so trying another grid
costs seconds. Prints the settings ranked by flight-level F1 (per-flight protocol: an alarm
before onset is a false positive; a fault counts when found within 5 s) and, for the best,
detected / early / missed flights per fault type.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from pathlib import Path

import pandas as pd

from anomaly.config import build_config, load_yaml
from anomaly.data.datasets import load_dataset
from anomaly.study.tuning import fold_residuals, judge_rules, per_fault

CACHE = Path(__file__).resolve().parents[1] / "data" / "tuning"
DEFAULT_GRID = {
    "drift": [0.5, 1.0, 2.0],
    "smooth_s": [0.0, 0.5],
    "confirm_s": [0.0, 0.25],
    "threshold": ["fa_per_hour:0.5"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--config", help="YAML with what differs from the defaults (window, train...)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--grid", help="JSON: AlarmRule keyword -> list of values")
    ap.add_argument("--fixed", help="JSON: AlarmRule keywords held fixed (e.g. warmup_s)")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--save", help="write the whole ranked table to this CSV")
    args = ap.parse_args()
    over = {"model": args.model, "data": {"data": args.data}}
    cfg = build_config(load_yaml(args.config) if args.config else {}, over)
    # residuals do not depend on the alarm rule: detect settings stay out of the cache key
    trained = {k: v for k, v in cfg.flat().items() if not k.startswith("detect.")}
    key = hashlib.sha256(json.dumps([trained, args.folds], default=str).encode()).hexdigest()
    cache = CACHE / f"{args.data.replace('/', '_')}-{args.model}-{key[:12]}.pkl"
    if cache.exists():
        folds = pickle.loads(cache.read_bytes())
    else:
        ds = load_dataset(cfg.data.data, cfg.data.format_options())
        if cfg.data.channels:
            ds = ds.select(cfg.data.channels)
        folds = fold_residuals(cfg, ds, args.folds)
        CACHE.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(folds))
    fixed = json.loads(args.fixed) if args.fixed else {}
    grid = {**DEFAULT_GRID, **(json.loads(args.grid) if args.grid else {})}
    grid.update({k: [v] for k, v in fixed.items()})
    table = judge_rules(folds, grid)
    if args.save:
        table.to_csv(args.save, index=False)
    n = sum(len(f.held_out) for f in folds)
    print(f"{args.model} on {args.data}: {n} held-out flights in {args.folds} folds\n")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        best = {k: table.iloc[0][k] for k in grid}
        print(f"\nper fault type, best setting {best}:")
        print(per_fault(folds, best).to_string())


if __name__ == "__main__":
    main()
