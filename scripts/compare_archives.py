"""Do recomputed cells reproduce a committed archive? Cell by cell, matched by key.

    .venv/bin/python scripts/compare_archives.py docs/results/small_data/cells.jsonl.gz \
        reports/recomputed/cells.jsonl.gz

The second archive is usually a report of a sweep run afresh (no --resume-from) on a subset of
the design: a spec with fewer sizes or seeds gives cells with the same keys. Prints, per cell of
the second archive, whether its per-flight table and every metric but the timings are equal to
the archived cell's, and the largest relative difference where they are not. Exit 1 if a cell
is missing from the first archive or its per-flight table differs.
"""

from __future__ import annotations

import argparse
import math
import sys

from anomaly.study.archive import read_archive

TIMINGS = ("_seconds", "score_us_per_row")  # machine-dependent: never compared


def _same(a: float | None, b: float | None) -> bool:
    """Equal, both undefined (NaN), or both absent."""
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive", help="the committed archive")
    ap.add_argument("recomputed", help="an archive of cells recomputed afresh")
    args = ap.parse_args()
    first, second = read_archive(args.archive), read_archive(args.recomputed)
    if first.header.get("data_hash") != second.header.get("data_hash"):
        print(
            f"the archives' flights differ (data hash {first.header.get('data_hash')} against "
            f"{second.header.get('data_hash')}): nothing to compare"
        )
        return 1
    committed = {c["key"]: c for c in first.cells}
    cells = second.cells
    identical, bad = 0, 0
    for cell in sorted(cells, key=lambda c: c["tags"].get("mlflow.runName", "")):
        name = cell["tags"].get("mlflow.runName", cell["key"])
        old = committed.get(cell["key"])
        if old is None:
            print(f"{name}: not in {args.archive}")
            bad += 1
            continue
        ran_at = old["params"].get("git_commit", "?")[:7]
        table = cell["per_flight"] == old["per_flight"]
        names = (set(cell["metrics"]) | set(old["metrics"])) - {
            k for k in set(cell["metrics"]) | set(old["metrics"]) if k.endswith(TIMINGS)
        }
        diffs = {
            k: (cell["metrics"].get(k), old["metrics"].get(k))
            for k in names
            if not _same(cell["metrics"].get(k), old["metrics"].get(k))
        }
        if table and not diffs:
            identical += 1
            continue
        bad += not table
        worst = max(
            (
                abs(a - b) / max(abs(b), 1e-12)
                for a, b in diffs.values()
                if a is not None and b is not None
            ),
            default=0.0,
        )
        print(
            f"{name} (archived at {ran_at}): per-flight table "
            f"{'equal' if table else 'DIFFERS'}; {len(diffs)} metrics differ "
            f"({', '.join(sorted(diffs))}), largest relative difference {worst:.1e}"
        )
    print(
        f"{identical} of {len(cells)} cells identical (per-flight table and every metric but "
        f"timings); {bad} missing or with another per-flight table"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
