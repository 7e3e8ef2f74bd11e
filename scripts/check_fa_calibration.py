"""How far the false-alarm rate a decision level is fitted for lands from its target, at the
defaults (0.5 alarms an hour, drift 2, 0.5 s confirmation), on white-noise residuals: 5 channels
at 10 Hz, validation flights of 15 minutes or an hour in all, each level then run on 20 fresh
hours. A rate of 0.5 an hour is extrapolated from far fewer excursions than validation flights
hold at that level, so this shows the spread a user should expect (README, "Decision level")."""

from __future__ import annotations

import numpy as np

from anomaly.detect.alarms import AlarmRule
from anomaly.detect.events import runs

RATE_HZ, CHANNELS, FRESH_HOURS, SEEDS = 10.0, 5, 20, 10


def achieved(validation_minutes: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    n = int(validation_minutes * 60 * RATE_HZ / 5)  # five validation flights
    val = [
        (rng.standard_normal((n, CHANNELS)).astype(np.float32), np.ones(n, bool)) for _ in range(5)
    ]
    names = [f"c{i}" for i in range(CHANNELS)]
    rule = AlarmRule(names, RATE_HZ, "fa_per_hour:0.5", drift=2.0, confirm_s=0.5).fit(val)
    rows = int(FRESH_HOURS * 3600 * RATE_HZ)
    fresh = rng.standard_normal((rows, CHANNELS)).astype(np.float32)
    flags = rule.stream().feed(fresh, np.ones(rows, bool)).flags
    return len(runs(flags)) / FRESH_HOURS


def main() -> None:
    for minutes in (15, 60):
        rates = [achieved(minutes, seed) for seed in range(SEEDS)]
        within = sum(1 / 3 <= r / 0.5 <= 3 for r in rates)
        print(
            f"validation {minutes:>2} min: alarms an hour on {FRESH_HOURS} fresh hours (target 0.5) "
            f"{', '.join(f'{r:.2f}' for r in rates)}; median {np.median(rates):.2f}; "
            f"{within} of {SEEDS} within a factor of 3"
        )


if __name__ == "__main__":
    main()
