"""The decision level of the sequential test, fitted on validation normal flights.

Changing the rule never means retraining: refit it on validation statistics. A rule is written as
'kind:value':

* 'fa_per_hour:R' (the default): the level at which alarms on fault-free flight come at about R
  per hour. Validation flights hold minutes, not hours, so the rate is extrapolated from the
  peaks of the statistic: each excursion above a high level u is one would-be alarm, and the
  excess of the peaks over u is modelled as exponential (peaks over threshold, the generalised
  Pareto tail with shape 0, as SPOT does; Siffer et al., KDD 2017). The level is never below the
  empirical one: with H hours of validation data at most R * H alarms may be raised there.
* 'quantile:Q', 'zscore:K', 'max:F', 'fixed:X': a quantile, mean + K standard deviations,
  F times the maximum of the validation statistic, or a given level.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from anomaly.detect.events import runs
from anomaly.errors import UserError

log = logging.getLogger(__name__)

KINDS = ("fa_per_hour", "quantile", "zscore", "max", "fixed")
TAIL_QUANTILE = 0.95  # u: rows of the validation statistic above it start would-be alarms


@dataclass
class Threshold:
    """A fitted decision level.

    Attributes
    ----------
    rule : the rule it was fitted with.
    threshold_ : statistics strictly above it raise an alarm.
    """

    rule: str = "fa_per_hour:0.5"

    def __post_init__(self):
        kind, _, value = self.rule.partition(":")
        if kind not in KINDS or not value:
            rules = ", ".join(k + ":VALUE" for k in KINDS)
            raise UserError(f"threshold rule {self.rule!r}: expected one of {rules}")
        try:
            self._value = float(value)
        except ValueError:
            raise UserError(f"threshold rule {self.rule!r}: {value!r} is not a number") from None
        if not np.isfinite(self._value):
            raise UserError(f"threshold rule {self.rule!r}: the value must be finite")
        self._kind = kind
        if kind == "quantile" and not 0 < self._value <= 1:
            raise UserError(f"threshold rule {self.rule!r}: quantile must be in (0, 1]")
        if kind == "fa_per_hour" and self._value <= 0:
            raise UserError(f"threshold rule {self.rule!r}: the rate must be above 0")
        if kind == "fixed" and self._value < 0:  # the statistic is never below 0
            raise UserError(f"threshold rule {self.rule!r}: a level below 0 flags every row")

    def fit(self, traces: list[np.ndarray], rate_hz: float, merge_rows: int = 0) -> Threshold:
        """Fit on the statistic of each validation flight.

        Parameters
        ----------
        traces : per flight, (n_rows,) the statistic an alarm is raised on (after the warm-up).
        rate_hz : rows per second, to turn rows into hours.
        merge_rows : alarms closer than this are one alarm (the rule's merge gap).
        """
        stat = np.concatenate(traces) if traces else np.zeros(0)
        if self._kind != "fixed" and stat.size == 0:
            raise UserError("cannot fit a threshold on no validation rows")
        if self._kind == "fa_per_hour":
            if not stat.max() > 0:
                log.warning(
                    "threshold rule %s: the alarm statistic never rose above 0 on the validation "
                    "flights' normal rows, so the level is 0 (any rise that lasts the "
                    "confirmation alarms) and no rate of alarms could be fitted; a lower "
                    "detect.drift or detect.confirm_s gives the fit excursions to work with",
                    self.rule,
                )
            hours = stat.size / rate_hz / 3600.0
            self.threshold_ = rate_level(traces, hours, self._value, merge_rows)
        elif self._kind == "quantile":
            self.threshold_ = float(np.quantile(stat, self._value))
        elif self._kind == "zscore":
            self.threshold_ = float(stat.mean() + self._value * stat.std())
        elif self._kind == "max":
            self.threshold_ = float(stat.max() * self._value)
        else:
            self.threshold_ = self._value
        return self

    def apply(self, stat: np.ndarray) -> np.ndarray:
        """(n,) statistics -> (n,) bool, True where above the level."""
        if not hasattr(self, "threshold_"):
            raise RuntimeError("threshold is not fitted; call fit() first")
        return np.asarray(stat) > self.threshold_

    def to_dict(self) -> dict:
        # strict JSON has no Infinity: a mute rule's level is null, as a frozen check's "never"
        level = self.threshold_
        return {"rule": self.rule, "threshold": None if level == np.inf else level}

    @classmethod
    def from_dict(cls, d: dict) -> Threshold:
        t = cls(d["rule"])
        t.threshold_ = np.inf if d["threshold"] is None else float(d["threshold"])
        return t

    @classmethod
    def fixed(cls, value: float) -> Threshold:
        return cls(f"fixed:{value}").fit([], 1.0)


def cluster_peaks(traces: list[np.ndarray], level: float, merge_rows: int) -> np.ndarray:
    """Peak of every excursion of the statistic above `level`; excursions closer than
    `merge_rows` are one (as the alarm rule merges them)."""
    peaks = []
    for trace in traces:
        spans = runs(trace > level)
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s - merged[-1][1] - 1 <= merge_rows:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        peaks += [float(trace[s : e + 1].max()) for s, e in merged]
    return np.array(peaks)


def rate_level(traces: list[np.ndarray], hours: float, per_hour: float, merge_rows: int) -> float:
    """The level at which about `per_hour` alarms an hour would be raised on these flights."""
    stat = np.concatenate(traces)
    u = float(np.quantile(stat, TAIL_QUANTILE))
    peaks = np.sort(cluster_peaks(traces, u, merge_rows))[::-1]
    if len(peaks) == 0:  # the statistic never rises above u (e.g. constant): nothing to model
        return float(stat.max())
    # empirical: at most per_hour * hours of the observed excursions may cross the level
    allowed = int(np.floor(per_hour * hours))
    empirical = float(peaks[allowed]) if allowed < len(peaks) else u
    rate_u = len(peaks) / hours  # excursions above u per hour
    beta = float(np.mean(peaks - u))  # exponential excess over u (maximum likelihood)
    tail = u + beta * np.log(rate_u / per_hour) if rate_u > per_hour and beta > 0 else u
    return max(tail, empirical)
