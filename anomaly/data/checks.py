"""Validated flights -> warnings about logs that are valid but probably not what was meant.

A warning never fails a log: a slow logger, a parked aircraft or a counter channel can be real.
Each rule is simple enough to state in one line, so a user can judge it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.data.schema import Flight

# time steps of 5 or more, all whole numbers: milliseconds read as seconds (0, 50, 100: 20 Hz)
MS_MIN_STEP = 5.0
# a sample rate this far from the median of the flights checked together (the tolerance that
# batch scoring applies against a model's training rate)
RATE_TOLERANCE = 0.2
# a clock channel is linear in time to this share of its range (float32 rounding aside)
CLOCK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Suspicion:
    """One warning: `flight` indexes the flights checked; `column` is None for the whole log."""

    flight: int
    column: str | None
    reason: str


def flight_suspicions(flight: Flight, index: int = 0) -> list[Suspicion]:
    """Milliseconds for seconds, constant channels and clock channels in one flight."""
    out = []
    if flight.n_rows < 3:
        return out
    steps = np.diff(flight.time)
    step = float(np.median(steps))
    if step >= MS_MIN_STEP and np.all(flight.time == np.round(flight.time)):
        why = (
            f"time steps are whole numbers, median {step:g}: milliseconds? read as seconds "
            f"the log runs at {1 / step:.3g} Hz"
        )
        out.append(Suspicion(index, None, why))
    for j, name in enumerate(flight.channels):
        col = flight.values[:, j].astype(np.float64)
        if np.ptp(col) == 0:
            out.append(Suspicion(index, name, f"constant ({col[0]:g}) over the whole log"))
        elif _is_clock(col, flight.time):
            out.append(Suspicion(index, name, "looks like a clock (linear in time)"))
    return out


def _is_clock(col: np.ndarray, time: np.ndarray) -> bool:
    """A counter (strictly increasing, near-constant step) or time up to offset and scale."""
    d = np.diff(col)
    if np.all(d > 0) and np.ptp(d) <= 0.01 * np.median(d):
        return True
    t, c = time - time.mean(), col - col.mean()
    residual = np.abs(c - (t @ c) / (t @ t) * t).max()  # least-squares line through the means
    rounding = float(np.spacing(np.float32(np.abs(col).max())))  # values are float32
    return bool(residual <= max(CLOCK_TOLERANCE * np.ptp(col), rounding))


def rate_suspicions(rates: list[float]) -> list[Suspicion]:
    """Flights whose sample rate is more than RATE_TOLERANCE off the median of `rates`."""
    finite = [r for r in rates if np.isfinite(r)]
    if len(finite) < 2:
        return []
    median = float(np.median(finite))
    return [
        Suspicion(i, None, f"sample rate {r:.3g} Hz is far from the batch's median {median:.3g} Hz")
        for i, r in enumerate(rates)
        if np.isfinite(r) and abs(r / median - 1) > RATE_TOLERANCE
    ]


def channel_suspicions(channels: list[list[str]]) -> list[Suspicion]:
    """Logs lacking a channel the first log has, or holding one it lacks: `anomaly train` on
    them together refuses them (it takes the first log's channels), `validate` says so first."""
    out = []
    for i, names in enumerate(channels[1:], start=1):
        for c in channels[0]:
            if c not in names:
                out.append(
                    Suspicion(
                        i,
                        c,
                        "missing here, present in the first log: training on these logs together refuses this one",
                    )
                )
        for c in names:
            if c not in channels[0]:
                out.append(
                    Suspicion(
                        i,
                        c,
                        "not in the first log: training on these logs together refuses this one unless --channels leaves it out",
                    )
                )
    return out


def suspicious(flights: list[Flight]) -> list[Suspicion]:
    """Every warning about `flights`, checked together (sample rates compare across them)."""
    out = [s for i, f in enumerate(flights) for s in flight_suspicions(f, i)]
    out += rate_suspicions([f.sample_rate_hz for f in flights])
    return sorted(out, key=lambda s: s.flight)
