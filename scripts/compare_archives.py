"""Do recomputed cells reproduce a committed archive? Cell by cell, matched by key.

    .venv/bin/python scripts/compare_archives.py docs/results/small_data/cells.jsonl.gz \
        reports/recomputed/cells.jsonl.gz [--rtol 1e-5]

The second archive is usually a report of a sweep run afresh (no --resume-from) on a subset of
the design: a spec with fewer sizes or seeds gives cells with the same keys. Per cell of the
second archive it compares the per-flight table (text, to the last digit), every metric but the
timings, and the loss curves (metrics the archived cell lacks, logged since, are named and not
compared), and prints the cells that are not identical with the largest relative difference.
Exit 1 if a cell is missing from the first archive, its per-flight table differs, an archived
metric is missing or undefined on one side, or a difference exceeds --rtol; exit 2 if an archive
cannot be read.
"""

from __future__ import annotations

import argparse
import io
import math
import sys

import pandas as pd

from anomaly.errors import UserError
from anomaly.study.archive import read_archive

# machine-dependent, never compared (a detection delay is a result, not a timing)
TIMINGS = {
    "cell_seconds",
    "checkpoint_seconds",
    "score_seconds",
    "score_us_per_row",
    "total_seconds",
    "train_seconds",
    "validate_seconds",
}
CURVES = ("train_loss", "val_loss")  # the history's fit_seconds is a timing


def _values(cell: dict) -> dict[str, float | None]:
    """Every compared number of a cell, by name: its metrics and each epoch of its loss curves."""
    out = {k: v for k, v in cell["metrics"].items() if k not in TIMINGS}
    for name in CURVES:
        for epoch, value in (cell.get("history") or {}).get(name, []):
            out[f"{name}[{epoch}]"] = value
    return out


def _relative(a: float | None, b: float | None) -> float:
    """0 when equal (NaN equal to NaN, None to None), inf when defined on one side only."""
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), 1e-12)


def _same_table(new: str, old: str, added: set[str]) -> bool:
    """The per-flight tables equal on the archived table's columns (compared as text, as
    archived); columns the code writes since are named in `added`, not compared."""
    a, b = (pd.read_csv(io.StringIO(t), dtype=str, keep_default_na=False) for t in (new, old))
    added |= {f"per_flight.{c}" for c in a.columns if c not in b.columns}
    return set(b.columns) <= set(a.columns) and a[list(b.columns)].equals(b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive", help="the committed archive")
    ap.add_argument("recomputed", help="an archive of cells recomputed afresh")
    ap.add_argument("--rtol", type=float, default=1e-5, help="largest relative difference taken")
    args = ap.parse_args()
    try:
        first, second = read_archive(args.archive), read_archive(args.recomputed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if first.header.get("data_hash") != second.header.get("data_hash"):
        print(
            f"the archives' flights differ (data hash {first.header.get('data_hash')} against "
            f"{second.header.get('data_hash')}): nothing to compare"
        )
        return 1
    committed = {c["key"]: c for c in first.cells}
    identical, bad, added = 0, 0, set()
    for cell in sorted(second.cells, key=lambda c: c["tags"].get("mlflow.runName", "")):
        name = cell["tags"].get("mlflow.runName", cell["key"])
        old = committed.get(cell["key"])
        if old is None:
            print(f"{name}: not in {args.archive}")
            bad += 1
            continue
        new_values, old_values = _values(cell), _values(old)
        # metrics the code logs since the archive are named, not compared; a loss curve that
        # runs longer is a difference
        extra = set(new_values) - set(old_values)
        added |= {k for k in extra if "[" not in k}
        gaps = {
            k: math.inf if k not in new_values else _relative(new_values[k], old_values[k])
            for k in sorted(old_values)
        }
        gaps.update({k: math.inf for k in extra if "[" in k})
        gaps = {k: g for k, g in gaps.items() if g > 0}
        table = _same_table(cell["per_flight"], old["per_flight"], added)
        if table and not gaps:
            identical += 1
            continue
        worst = max(gaps.values(), default=0.0)
        bad += (not table) or worst > args.rtol
        print(
            f"{name} (archived at {old['params'].get('git_commit', '?')[:7]}): per-flight table "
            f"{'equal' if table else 'DIFFERS'}; {len(gaps)} values differ "
            f"({', '.join(sorted(gaps)[:6])}{', ...' if len(gaps) > 6 else ''}), "
            f"largest relative difference {worst:.1e}"
        )
    if added:
        print(f"logged since the archive, not compared: {', '.join(sorted(added))}")
    print(
        f"{identical} of {len(second.cells)} cells identical (per-flight table, every metric but "
        f"timings, loss curves); {bad} missing, with another per-flight table, or beyond "
        f"rtol {args.rtol:g}"
    )
    return 1 if bad or not second.cells else 0


if __name__ == "__main__":
    sys.exit(main())
