"""Repeated-seed statistics: confidence intervals, paired comparisons and the verdict rules.

With 5 seeds an exact two-sided Wilcoxon signed-rank test cannot go below p = 0.0625, so a
difference is called at a given training size from its 95 % t-interval over seeds, and the
Wilcoxon p-value (per size, and pooled over all sizes) is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int


def mean_ci(values, level: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval over seeds (NaNs dropped)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    m = float(x.mean())
    if n == 1 or np.all(x == x[0]):
        return Interval(m, m, m, n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return Interval(m, m - half, m + half, n)


def wilcoxon_p(diffs) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences; 1.0 when all are zero."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d[~np.isnan(d)]
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="zsplit", alternative="two-sided").pvalue)


@dataclass
class Paired:
    """a - b over paired seeds."""

    diff: Interval
    p_value: float
    n_pairs: int

    @property
    def call(self) -> str:
        """'a' or 'b' when the interval excludes 0, else 'tie'."""
        if self.diff.n < 2:
            return "tie"
        if self.diff.low > 0:
            return "a"
        if self.diff.high < 0:
            return "b"
        return "tie"


def paired(a: dict, b: dict) -> Paired:
    """a, b: {seed: value}. Only seeds present in both count."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], dtype=np.float64)
    return Paired(mean_ci(d), wilcoxon_p(d), len(seeds))


def size_verdict(calls: dict[int, str], winner: str = "a") -> tuple[str, int | None]:
    """Turn per-size calls into 'reproduced', 'reproduced only below N flights' or 'not reproduced'.

    The claim holds at a size when `winner` is significantly better there. It is reproduced when it
    holds at every size; reproduced below N when it holds at every size below N and at none from N
    on; reproduced from N on in the mirror case (which contradicts a small-data advantage); not
    reproduced otherwise.
    """
    sizes = sorted(calls)
    holds = [calls[s] == winner for s in sizes]
    if sizes and all(holds):
        return "reproduced", None
    if holds and holds[0]:
        k = holds.index(False)
        if not any(holds[k:]):
            return f"reproduced only below {sizes[k]} flights", sizes[k]
    if holds and holds[-1]:
        k = len(holds) - 1 - holds[::-1].index(False)
        if not any(holds[: k + 1]):
            return f"reproduced only from {sizes[k + 1]} flights on (not on small data)", sizes[
                k + 1
            ]
    return "not reproduced", None
