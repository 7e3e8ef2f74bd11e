"""Synthetic-flight generation speed: 100 flights written to a temporary folder (target: < 10 s)."""

from __future__ import annotations

import tempfile
import time

from anomaly.data.synthetic import SynthConfig, generate_flights, write_dataset


def main() -> None:
    cfg = SynthConfig(n_flights=100, seed=0)
    t0 = time.perf_counter()
    generate_flights(cfg)
    simulate = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        man = write_dataset(tmp, cfg)
        total = time.perf_counter() - t0
    print(
        f"100 flights, {int(man['rows'].sum()):,} rows: simulate {simulate:.2f} s, simulate + write {total:.2f} s "
        f"({total / 10:.0%} of the 10 s target)"
    )


if __name__ == "__main__":
    main()
