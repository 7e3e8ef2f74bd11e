"""Choose alarm-rule settings by cross-validation over training and validation flights only.

    .venv/bin/python scripts/tune_detection.py --data synthetic --model lstm[,transformer]
        [--config FILE] [--folds 4] [--grid '{"drift": [0.5, 1.0], "smooth_s": [0, 0.5]}']
        [--save out.csv]

Test flights of a fixed split are never loaded into a detector here (anomaly.study.tuning). Each
fold's residuals are cached under data/tuning/, keyed by the config, so trying another grid
costs seconds. Prints the settings ranked by flight-level F1 (per-flight protocol: an alarm
before onset is a false positive; a fault counts when found within 5 s) and, for the best,
detected / early / missed flights per fault type. Given several models, it then ranks the
settings by their mean F1 over the models, since a default serves every model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from pathlib import Path

import pandas as pd

import anomaly
from anomaly.config import build_config, load_yaml
from anomaly.data.datasets import load_dataset
from anomaly.study.tuning import fold_residuals, judge_rules, per_fault, rank_models

CACHE = Path(__file__).resolve().parents[1] / "data" / "tuning"
DEFAULT_GRID = {
    "drift": [0.5, 1.0, 2.0],
    "smooth_s": [0.0, 0.5],
    "confirm_s": [0.0, 0.25],
    "threshold": ["fa_per_hour:0.5"],
}


def cached_folds(args: argparse.Namespace, model: str) -> list:
    """Each fold's residuals for one model, computed once per training config."""
    over = {"model": model, "data": {"data": args.data}}
    cfg = build_config(load_yaml(args.config) if args.config else {}, over)
    # residuals do not depend on the alarm rule: detect settings stay out of the cache key, but
    # the frozen check's switch is in it (its rows are cached), and so is the package's code: a
    # model's defaults live there (centring came in without a config change), and so does how
    # folds are judged (magnitudes one-sided)
    trained = {k: v for k, v in cfg.flat().items() if not k.startswith("detect.")}
    package = Path(anomaly.__file__).parent
    code = hashlib.sha256(b"".join(f.read_bytes() for f in sorted(package.rglob("*.py"))))
    text = json.dumps([trained, args.folds, cfg.detect.frozen_check, code.hexdigest()], default=str)
    key = hashlib.sha256(text.encode()).hexdigest()
    cache = CACHE / f"{args.data.replace('/', '_')}-{model}-{key[:12]}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    ds = load_dataset(cfg.data.data, cfg.data.format_options())
    if cfg.data.channels:
        ds = ds.select(cfg.data.channels)
    folds = fold_residuals(cfg, ds, args.folds)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(folds))
    return folds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--model", default="lstm", help="one model, or several: lstm,transformer")
    ap.add_argument("--config", help="YAML with what differs from the defaults (window, train...)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--grid", help="JSON: AlarmRule keyword -> list of values")
    ap.add_argument("--fixed", help="JSON: AlarmRule keywords held fixed (e.g. warmup_s)")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--save", help="write the whole ranked table to this CSV (and per model)")
    args = ap.parse_args()
    fixed = json.loads(args.fixed) if args.fixed else {}
    grid = {**DEFAULT_GRID, **(json.loads(args.grid) if args.grid else {})}
    grid.update({k: [v] for k, v in fixed.items()})
    tables, folds_of = {}, {}
    for model in dict.fromkeys(m.strip() for m in args.model.split(",") if m.strip()):
        folds = folds_of[model] = cached_folds(args, model)
        table = tables[model] = judge_rules(folds, grid)
        n = sum(len(f.held_out) for f in folds)
        print(f"{model} on {args.data}: {n} held-out flights in {args.folds} folds\n")
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(table.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            best = {k: table.iloc[0][k] for k in grid}
            print(f"\nper fault type, best setting {best}:")
            print(per_fault(folds, best).to_string(), "\n")
    ranked = table
    if len(tables) > 1:
        ranked = rank_models(tables, list(grid))
        print(f"settings for {', '.join(tables)} at once, by mean flight F1:\n")
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(ranked.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
            best = {k: ranked.iloc[0][k] for k in grid}
            for model, folds in folds_of.items():
                print(f"\n{model} per fault type, at {best}:")
                print(per_fault(folds, best).to_string())
    if args.save:  # the ranking; with several models, each model's own table beside it
        ranked.to_csv(args.save, index=False)
        if len(tables) > 1:
            save = Path(args.save)
            for model, table in tables.items():
                table.to_csv(save.with_name(f"{save.stem}-{model}{save.suffix}"), index=False)


if __name__ == "__main__":
    main()
