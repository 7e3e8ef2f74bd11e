"""How often the study's two-way bootstrap calls p < 0.05 when there is no true difference, at
3 seeds (claims 3 and 4's arms) and at 10 (claims 1 and 2): the rate the report quotes.

    .venv/bin/python scripts/null_seed_bootstrap.py [--repeats 300]

The difference per (seed, test flight) is a seed effect, a flight effect and noise, each with a
standard deviation of 0.03 VUS-PR (the order of the study's), mean zero.
"""

from __future__ import annotations

import argparse

import numpy as np

from anomaly.evaluate.statistics import compare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--flights", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for seeds in (3, 10):
        hits = 0
        for r in range(args.repeats):
            D = (
                rng.normal(0, 0.03, (seeds, 1))
                + rng.normal(0, 0.03, (1, args.flights))
                + rng.normal(0, 0.03, (seeds, args.flights))
            )
            hits += compare(D, 0.03, seed=r, n_boot=2000).p_value < 0.05
        print(f"{seeds} seeds: p < 0.05 in {hits / args.repeats:.1%} of {args.repeats} null runs")


if __name__ == "__main__":
    main()
