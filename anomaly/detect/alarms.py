"""Residuals -> alarms: the alarm rule, one object between the model and the events.

Fault detection as residual evaluation (Page's CUSUM): each row's signed residual (measured minus
expected, per channel) is centred, optionally judged against the flight's own recent past,
smoothed over one or more time scales and scaled, then accumulated by CUSUMs, one per channel,
side (a shift up, a shift down) and time scale. Each CUSUM is divided by its own level on
validation flights, the statistic is the largest of them, and its channel is the one blamed. An alarm is
raised once the statistic has stayed above the decision level for the confirmation time, stays on
while it does, and is held for the merge gap after it drops. Every step uses rows up to the
current one only, and all state is carried across chunks, so one pass, chunked scoring and
`anomaly watch` give the same alarms. Rows that a model-free check (anomaly.detect.frozen) marks
enter the decision as rows above the level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from anomaly.detect.thresholds import Threshold, rate_level
from anomaly.errors import UserError

SIDES = ("two", "up", "down")  # up: measured above expected
ARM_RATE = 1.0  # alarms per hour at which the CUSUMs are equalised before their maximum
QUARTILES = (0.25, 0.5, 0.75)
SPREAD_FLOOR = 0.1  # a flight's own spread counts down to this share of the fleet's


def tested_sides(sides: str | dict[str, str], signed: bool) -> str | dict[str, str]:
    """The sides to test: a residual that is a magnitude (an autoencoder's error over several
    rows, a window's anomaly score) is anomalous only when larger, whatever the config says."""
    return sides if signed else "up"


@dataclass
class AlarmBlock:
    """The rule's output for consecutive rows: statistic (n,), channel (n,) index of the channel
    holding it, contributions (n, C) each channel's share of the statistic, flags (n,) bool."""

    statistic: np.ndarray
    channel: np.ndarray
    contributions: np.ndarray
    flags: np.ndarray


class AlarmRule:
    """Everything between residuals and alarms, set in seconds and turned into rows once.

    Parameters
    ----------
    channels : names of the residual channels.
    rate_hz : sample rate of the logs, to turn seconds into rows.
    threshold : decision-level rule (anomaly.detect.thresholds), fitted on validation flights.
    drift : CUSUM drift k, in standard deviations of the normalised residual: shifts smaller
        than it are tolerated, larger ones accumulate.
    sides : 'two', 'up' or 'down' for every channel, or {channel: side} (others two-sided).
    smooth_s : time scales (seconds; 0 is the row itself): each gets its own CUSUMs on the
        trailing mean of the centred residual over that time, scaled after smoothing. A jump or
        a spike shows at the row scale; a slow drift shows better over a second (a sensor frozen
        at its last value hardly shows at all: anomaly.detect.frozen catches it): one-step
        forecast residuals are close to differenced noise, whose mean over a second
        varies far less than one row does, while a sustained shift keeps its size.
    confirm_s : the statistic must stay above the level this long before the alarm is raised.
    merge_gap_s : an alarm is held this long after the statistic drops below the level.
    warmup_s : no accumulation and no alarm in a flight's first seconds (start-up transients).
    baseline_s, baseline_lag_s : > 0 judges each channel against the same flight's residuals
        over `baseline_s` ending `baseline_lag_s` earlier: minus their median, over their spread
        (IQR / 1.349, at least a tenth of the validation fleet's): a windy flight is not a
        faulty one, and a fault is judged against its own flight, not the training fleet.

    Attributes
    ----------
    center_ : (C,) mean residual of validation normal rows.
    spread_ : (C,) standard deviation there of the centred residual (the floor of the
        flight-relative spread).
    scale_ : (S, C) standard deviation there of the normalised residual at each time scale.
    fresh_every_ : rows between fresh residuals (a windowed model's score stride), so that the
        flight-relative baseline asks for as many residuals as that stride can give.
    arm_level_ : (A,) each CUSUM's level at ARM_RATE alarms per hour there; the statistic is the
        largest CUSUM divided by its own level.
    threshold : the fitted decision level of that statistic.
    """

    def __init__(
        self,
        channels: list[str],
        rate_hz: float,
        threshold: str = "fa_per_hour:0.5",
        drift: float = 0.5,
        sides: str | dict[str, str] = "two",
        smooth_s: float | list[float] = 0.0,
        confirm_s: float = 0.0,
        merge_gap_s: float = 0.0,
        warmup_s: float = 0.0,
        baseline_s: float = 0.0,
        baseline_lag_s: float = 1.0,
    ):
        self.channels = list(channels)
        self.rate_hz = float(rate_hz)
        self.threshold = Threshold(threshold)
        self.drift, self.sides = float(drift), sides
        self.smooth_s = [float(v) for v in np.atleast_1d(smooth_s)]
        self.confirm_s, self.merge_gap_s = confirm_s, merge_gap_s
        self.warmup_s, self.baseline_s, self.baseline_lag_s = warmup_s, baseline_s, baseline_lag_s
        # to the nearest row, a half to the even one (0.25 s at 10 Hz is 2 rows): saved rules
        # keep seconds, so their rows must come out as they were fitted
        rows = lambda s: int(round(s * self.rate_hz))  # noqa: E731
        self.smooth_rows = [max(1, rows(v)) for v in self.smooth_s]
        self.confirm_rows = max(1, rows(confirm_s))
        self.merge_rows, self.warmup_rows = rows(merge_gap_s), rows(warmup_s)
        self.baseline_rows = rows(baseline_s)
        self.baseline_lag_rows = rows(baseline_lag_s)
        self.arms = self._arms(sides)
        C = len(self.channels)
        self.arm_columns = np.array([j * C + c for c, _, j in self.arms], dtype=np.intp)
        self.arm_signs = np.array([1.0 if k == "up" else -1.0 for _, k, _ in self.arms])
        # (C, most arms of a channel): each channel's arms, its first repeated to fill the row
        of = [[a for a, (c, _, _) in enumerate(self.arms) if c == ch] for ch in range(C)]
        width = max(len(a) for a in of)
        self.arms_of_channel = np.array([a + a[:1] * (width - len(a)) for a in of], dtype=np.intp)
        self.fresh_every_ = 1  # every row has a residual until fit() sees otherwise

    def _arms(self, sides: str | dict[str, str]) -> list[tuple[int, str, int]]:
        """(channel index, 'up' or 'down', time scale index) of every CUSUM."""
        if not self.channels or not self.smooth_s:
            raise UserError("the alarm rule needs at least one residual channel and time scale")
        given = {c: sides for c in self.channels} if isinstance(sides, str) else dict(sides)
        for name, side in given.items():
            if side not in SIDES:
                raise UserError(f"detect.sides: {name!r} -> {side!r}; expected one of {SIDES}")
            if name not in self.channels:
                raise UserError(f"detect.sides: {name!r} is not a channel of this model")
        arms = []
        for c, name in enumerate(self.channels):
            side = given.get(name, "two")
            for j in range(len(self.smooth_s)):
                arms += [(c, k, j) for k in ("up", "down") if side in ("two", k)]
        return arms

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, flights: list[tuple[np.ndarray, np.ndarray]]) -> AlarmRule:
        """Fit the normalisation and the decision level on validation normal flights.

        flights : per flight, residuals (n, C) and fresh (n,) from its first row on.
        """
        for i, (r, fresh) in enumerate(flights):
            bad = np.flatnonzero(fresh & ~np.isfinite(r).all(axis=1))
            if len(bad):  # one would make the centre NaN and silence every alarm
                raise ValueError(
                    f"validation flight {i + 1} of {len(flights)}, row {bad[0]}: a residual is "
                    "not finite; the alarm rule cannot be fitted on it"
                )
        # float64 as a saved rule is loaded: a float32 spread rounds otherwise
        usable = [
            np.asarray(r, np.float64)[fresh & (np.arange(len(r)) >= self.warmup_rows)]
            for r, fresh in flights
        ]
        rows = np.concatenate(usable) if usable else np.zeros((0, len(self.channels)))
        if len(rows) < 2:
            raise UserError(
                "validation flights hold too few normal rows after the warm-up to fit the alarm rule"
            )
        A, S = len(self.arms), len(self.smooth_s)
        gaps = [np.diff(np.flatnonzero(fresh)) for _, fresh in flights if fresh.sum() > 1]
        self.fresh_every_ = int(np.median(np.concatenate(gaps))) if gaps else 1
        self.center_, self.arm_level_ = rows.mean(axis=0), np.ones(A)
        self.spread_, self.scale_ = _std(rows - self.center_), np.ones((S, len(self.channels)))
        z = [self.stream(decide=False).normalised(r, f) for r, f in flights]
        for j in range(S):
            self.scale_[j] = _std(np.concatenate([zf[j][self.warmup_rows :] for zf in z]))
        # each CUSUM divided by its own level: a channel whose normal flight holds large
        # surprises (a command stepping at a waypoint) no longer sets the level for the quiet
        # ones; the largest of them is then calibrated as a whole, as it is decided on
        arms = [self.stream(decide=False).arms(r, f)[self.warmup_rows :] for r, f in flights]
        hours = sum(len(t) for t in arms) / self.rate_hz / 3600.0
        levels = [
            rate_level([t[:, a] for t in arms], hours, ARM_RATE, self.merge_rows) for a in range(A)
        ]
        self.arm_level_ = np.where(np.array(levels) > 1e-12, levels, 1.0)
        traces = [self.confirmed((t / self.arm_level_).max(axis=1)) for t in arms]
        self.threshold.fit(traces, self.rate_hz, self.merge_rows)
        return self

    def confirmed(self, statistic: np.ndarray) -> np.ndarray:
        """(n,) the lowest statistic of the last `confirm_rows` rows: an alarm is raised where
        this crosses the level, so the level is fitted on it."""
        m = self.confirm_rows
        return pd.Series(statistic).rolling(m, min_periods=1).min().to_numpy()

    def stream(self, decide: bool = True) -> AlarmStream:
        """A fresh state for one flight."""
        if not hasattr(self, "center_"):
            raise RuntimeError("alarm rule is not fitted; call fit() first")
        return AlarmStream(self, decide)

    # -- persistence ----------------------------------------------------------------------------
    SETTINGS = (
        "drift",
        "sides",
        "smooth_s",
        "confirm_s",
        "merge_gap_s",
        "warmup_s",
        "baseline_s",
        "baseline_lag_s",
    )
    FITTED = ("center_", "spread_", "scale_", "arm_level_")

    def to_dict(self) -> dict:
        d = {"channels": self.channels, "rate_hz": self.rate_hz}
        d["threshold"] = self.threshold.to_dict()
        d.update({k: getattr(self, k) for k in self.SETTINGS})
        d.update({k: getattr(self, k).tolist() for k in self.FITTED})
        d["fresh_every"] = self.fresh_every_
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AlarmRule:
        settings = {k: d[k] for k in cls.SETTINGS}
        rule = cls(d["channels"], d["rate_hz"], d["threshold"]["rule"], **settings)
        rule.threshold = Threshold.from_dict(d["threshold"])
        for k in cls.FITTED:
            setattr(rule, k, np.asarray(d[k], dtype=np.float64))
        rule.fresh_every_ = int(d.get("fresh_every", 1))  # models saved before it: stride 1
        return rule


def _std(x: np.ndarray) -> np.ndarray:
    std = np.nanstd(x, axis=0)
    return np.where(std > 1e-12, std, 1.0)


class AlarmStream:
    """The rule's state along one flight; `feed` consecutive rows, get their alarms at once."""

    def __init__(self, rule: AlarmRule, decide: bool = True):
        self.rule, self.decide = rule, decide
        C = len(rule.channels)
        self.cusum = np.zeros(len(rule.arms))
        self.z_history = np.zeros((0, C))  # for the flight-relative baseline
        self.smooth_tails = [np.zeros((0, C)) for _ in rule.smooth_rows]
        self.seen = 0
        self.last_below = -1  # last row whose statistic was not above the level
        self.last_confirmed = -np.inf  # last row on which the alarm was confirmed

    def feed(
        self, residuals: np.ndarray, fresh: np.ndarray, forced: np.ndarray | None = None
    ) -> AlarmBlock:
        """residuals (n, C) and fresh (n,) bool -> this block's AlarmBlock. `forced` (n,) bool
        marks rows that a model-free check (anomaly.detect.frozen) found faulty: they count as
        above the level and go through the same confirmation and merging."""
        r = self.rule
        n = len(residuals)
        rows = np.arange(self.seen, self.seen + n)
        arms = self.arms(residuals, fresh)
        arms /= r.arm_level_
        per_channel = arms.take(r.arms_of_channel[:, 0], axis=1)
        for k in range(1, r.arms_of_channel.shape[1]):
            np.maximum(per_channel, arms.take(r.arms_of_channel[:, k], axis=1), out=per_channel)
        statistic = per_channel.max(axis=1)
        total = per_channel.sum(axis=1, keepdims=True)
        uniform = np.full_like(per_channel, 1.0 / per_channel.shape[1])
        contributions = np.divide(per_channel, total, out=uniform, where=total > 0)
        flags = self._decide(statistic, rows, forced) if self.decide else np.zeros(n, bool)
        return AlarmBlock(statistic, per_channel.argmax(axis=1), contributions, flags)

    def arms(self, residuals: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """(n, A) every CUSUM, before equalisation. Advances the stream."""
        r = self.rule
        n = len(residuals)
        rows = np.arange(self.seen, self.seen + n)
        z = self.normalised(residuals, fresh)  # per time scale (n, C)
        active = ~np.isnan(z[0]).any(axis=1) & (rows >= r.warmup_rows)
        stacked = np.concatenate(z, axis=1) if len(z) > 1 else z[0]  # (n, S * C)
        x = np.nan_to_num(stacked[:, r.arm_columns])
        x *= r.arm_signs
        x -= r.drift
        x[~active] = 0.0
        self.seen += n
        return self._cusum(x)

    def normalised(self, residuals: np.ndarray, fresh: np.ndarray) -> list[np.ndarray]:
        """(n, C) residuals -> per time scale, what its CUSUMs accumulate: centred,
        flight-relative, smoothed, scaled; NaN on rows without a fresh residual. Advances those
        stages."""
        r = self.rule
        z = np.asarray(residuals, dtype=np.float64) - r.center_
        z[~np.asarray(fresh, dtype=bool)] = np.nan
        z = self._relative(z)
        return [self._smooth(z, j) / r.scale_[j] for j in range(len(r.smooth_rows))]

    def _relative(self, z: np.ndarray) -> np.ndarray:
        r = self.rule
        if r.baseline_rows <= 0:
            return z
        span = r.baseline_rows + r.baseline_lag_rows
        hist = np.concatenate([self.z_history, z])
        # a quarter of the baseline before a flight is judged against itself: the spread of a
        # handful of rows is no spread, and dividing by it would inflate every flight's start.
        # Counted in residuals: with a score stride s only every s-th row has one
        need = max(2, min(r.baseline_rows, max(2, r.baseline_rows // 4)) // r.fresh_every_)
        past = (
            pd.DataFrame(hist).shift(r.baseline_lag_rows).rolling(r.baseline_rows, min_periods=need)
        )
        q25, median, q75 = (past.quantile(q).to_numpy()[len(self.z_history) :] for q in QUARTILES)
        self.z_history = hist[-span:]
        spread = np.maximum((q75 - q25) / 1.349, SPREAD_FLOOR * r.spread_)
        # not enough history yet: nothing to subtract, the fleet's spread
        spread = np.where(np.isnan(spread), r.spread_, spread)
        return (z - np.nan_to_num(median)) / spread * r.spread_

    def _smooth(self, z: np.ndarray, j: int) -> np.ndarray:
        """Trailing mean over time scale j's rows, skipping rows without a residual."""
        k = self.rule.smooth_rows[j]
        if k <= 1:
            return z
        both = np.concatenate([self.smooth_tails[j], z])
        self.smooth_tails[j] = both[-(k - 1) :]
        valid = ~np.isnan(both)
        zero = np.zeros((1, z.shape[1]))
        cs = np.vstack([zero, np.cumsum(np.where(valid, both, 0.0), axis=0)])
        cc = np.vstack([zero, np.cumsum(valid, axis=0)])
        hi = np.arange(len(both) - len(z), len(both)) + 1
        lo = np.maximum(hi - k, 0)
        counts = cc[hi] - cc[lo]
        mean = np.divide(cs[hi] - cs[lo], counts, out=np.full(z.shape, np.nan), where=counts > 0)
        mean[np.isnan(z).all(axis=1)] = np.nan  # rows without a fresh residual stay so
        return mean

    def _cusum(self, x: np.ndarray) -> np.ndarray:
        """Page's CUSUM S_t = max(0, S_{t-1} + x_t) for every arm at once, in closed form: with
        W_t = S_0 + x_1 + ... + x_t, S_t = W_t - min(0, min_{j<=t} W_j). Rows that are not
        active add nothing (x = 0), so the statistic holds there."""
        W = np.cumsum(x, axis=0)
        W += self.cusum
        S = np.minimum.accumulate(W, axis=0)
        np.minimum(S, 0.0, out=S)
        np.subtract(W, S, out=S)
        if len(S):
            self.cusum = S[-1].copy()
        return S

    def _decide(
        self, statistic: np.ndarray, rows: np.ndarray, forced: np.ndarray | None
    ) -> np.ndarray:
        r = self.rule
        above = r.threshold.apply(statistic)
        if forced is not None:
            above = above | forced
        above = above & (rows >= r.warmup_rows)
        last_below = np.maximum.accumulate(np.where(~above, rows, self.last_below))
        confirmed = rows - last_below >= r.confirm_rows
        last_confirmed = np.maximum.accumulate(
            np.where(confirmed, rows.astype(float), self.last_confirmed)
        )
        if len(rows):
            self.last_below, self.last_confirmed = int(last_below[-1]), float(last_confirmed[-1])
        return rows - last_confirmed <= r.merge_rows
