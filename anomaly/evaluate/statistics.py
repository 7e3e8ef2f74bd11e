"""The study's statistics: paired differences whose interval resamples both seeds and test
flights, Holm's correction across training sizes, equivalence (TOST) at a declared margin, and
the verdict rules that turn them into words.

A difference between two arms at one training size is a matrix D[seed, flight] of per-flight
metric differences (the same test flights and training subsets for both arms: paired). Seeds
and flights are both random draws, so the interval comes from a two-way bootstrap that resamples
seeds and flights independently (a hierarchical bootstrap); a t-interval over seeds alone would
ignore which test flights happened to be drawn.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm

BOOTSTRAP = 4000
LEVEL = 0.95


@dataclass
class Interval:
    mean: float
    low: float
    high: float
    n: int


@dataclass
class Comparison:
    """a - b at one size.

    Attributes
    ----------
    diff : mean difference and its bootstrap interval (LEVEL).
    p_value : two-sided bootstrap p-value of 'no difference'.
    p_equivalent : TOST p-value of 'the difference lies within +-margin'.
    seeds, flights : what the difference is a mean over.
    """

    diff: Interval
    p_value: float
    p_equivalent: float
    seeds: int
    flights: int
    margin: float


def mean_interval(values, level: float = LEVEL, seed: int = 0) -> Interval:
    """Mean of per-seed values with a percentile bootstrap interval over seeds (NaNs dropped)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    boot = x[rng.integers(0, len(x), (BOOTSTRAP, len(x)))].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(x.mean()), float(lo), float(hi), len(x))


def two_way_bootstrap(D: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(seeds, flights) differences -> (n_boot,) means over seeds and flights resampled
    independently with replacement. NaN cells (a flight a metric is undefined on) are skipped.

    A (sizes, seeds, flights) stack gives the mean over sizes of each size's mean; a draw that
    leaves a size without a value is NaN (callers drop it), so every draw estimates the same
    average.
    """
    per_size = size_bootstrap(D, n_boot, seed)
    return per_size.mean(axis=1)  # NaN where a size had no value in the draw


def size_bootstrap(D: np.ndarray, n_boot: int = BOOTSTRAP, seed: int = 0) -> np.ndarray:
    """(n_boot, sizes) per-size means of a (sizes, seeds, flights) stack, the same seeds and
    flights drawn at every size: the sizes share them, so they are not independent."""
    D3 = _stack(D)
    rng = np.random.default_rng(seed)
    _, S, F = D3.shape
    out = np.empty((n_boot, D3.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a size left empty by a draw: NaN
        for b in range(n_boot):
            sub = D3[:, rng.integers(0, S, S)][:, :, rng.integers(0, F, F)]
            out[b] = np.nanmean(sub.reshape(len(sub), -1), axis=1)
    return out


def _stack(D: np.ndarray) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    return D[None] if D.ndim == 2 else D


def _size_means(D3: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(D3.reshape(len(D3), -1), axis=1)


def compare(
    D: np.ndarray, margin: float, level: float = LEVEL, seed: int = 0, n_boot: int = BOOTSTRAP
) -> Comparison:
    """Paired comparison from the (seeds, flights) matrix of a - b, or from a (sizes, seeds,
    flights) stack: then of the difference averaged over sizes, each size weighted alike."""
    D3 = _stack(D)
    return _comparison(D3, two_way_bootstrap(D3, n_boot, seed), margin, level)


def _comparison(D3: np.ndarray, boot: np.ndarray, margin: float, level: float) -> Comparison:
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return Comparison(
        Interval(float(np.mean(_size_means(D3))), float(lo), float(hi), D3.shape[1]),
        bootstrap_p(boot),
        tost_p(boot, margin),
        D3.shape[1],
        D3.shape[2],
        margin,
    )


def compare_over_sizes(
    D: np.ndarray,
    sizes: list[int],
    margin: float,
    level: float = LEVEL,
    seed: int = 0,
    n_boot: int = BOOTSTRAP,
) -> tuple[Comparison, Interval, float]:
    """One two-way bootstrap of a (sizes, seeds, flights) stack, read twice: the difference
    averaged over the sizes (as `compare`), and the slope of the per-size mean difference
    against log2(size) with its interval and p-value: whether the gap changes with the amount
    of data (a significant slope means no single overall difference describes the sizes)."""
    D3 = _stack(D)
    x = np.log2(np.asarray(sizes, dtype=np.float64))
    x = x - x.mean()
    per_size = size_bootstrap(D3, n_boot, seed)
    slopes = per_size @ x / (x @ x)
    slopes = slopes[np.isfinite(slopes)]
    lo, hi = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
    trend = Interval(float(_size_means(D3) @ x / (x @ x)), float(lo), float(hi), D3.shape[1])
    average = _comparison(D3, per_size.mean(axis=1), margin, level)
    return average, trend, bootstrap_p(slopes)


def _tail(hits: np.ndarray) -> float:
    """Share of B draws at or past a value, as (1 + count) / (B + 1) (Davison & Hinkley 1997,
    eq. 4.11): B draws cannot support a p below 1 / (B + 1), and a plain share printed 0."""
    return (1.0 + float(np.sum(hits))) / (len(hits) + 1.0)


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided p-value of 'the difference is 0' from its bootstrap distribution."""
    return min(1.0, 2 * min(_tail(boot <= 0), _tail(boot >= 0)))


def tost_p(boot: np.ndarray, margin: float) -> float:
    """Two one-sided tests: p of 'the difference is at least +margin or at most -margin'; small
    means equivalent within +-margin (the larger of the two one-sided p-values)."""
    return max(_tail(boot <= -margin), _tail(boot >= margin))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over the list)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def verdict(
    diff: Interval,
    p_adjusted: float,
    p_equivalent_adjusted: float,
    margin: float,
    a: str,
    b: str,
    alpha: float = 0.05,
) -> str:
    """'a better', 'b better', 'equivalent within +-margin' or 'inconclusive'."""
    if p_adjusted < alpha:
        return f"{a} better" if diff.mean > 0 else f"{b} better"
    if p_equivalent_adjusted < alpha:
        return f"equivalent within ±{margin:g}"
    return "inconclusive"


def overall_call(
    trend: Interval, p_trend: float, every: Comparison, margin: float, a: str, b: str
) -> tuple[str, float, float, float]:
    """Claim 1's one verdict over the sizes and the Holm-adjusted p-values (trend, average,
    the average's equivalence) behind it. Two tests stand behind one verdict, so Holm corrects
    them as a pair: a trend first ('differs by size'), so that opposite differences at the two
    ends never average to 'equivalent'; else the verdict on the difference averaged over the
    sizes, whose equivalence p-value is paired with the trend's the same way."""
    h_trend, h_average = holm([p_trend, every.p_value])
    h_equivalent = holm([p_trend, every.p_equivalent])[1]
    if h_trend < 0.05:
        return (
            f"differs by size ({a} - {b} changes by {trend.mean:+.3f} a doubling)",
            h_trend,
            h_average,
            h_equivalent,
        )
    average = verdict(every.diff, h_average, h_equivalent, margin, a, b)
    return f"{average} on average over the sizes", h_trend, h_average, h_equivalent


def overall(verdicts: list[str], a: str, b: str, unit: str = "size") -> str:
    """One phrase for a claim from its verdicts per size (or per held-out campaign: `unit`)."""
    kinds = set(verdicts)
    if kinds == {f"{a} better"}:
        return f"{a} better at every {unit}"
    if kinds == {f"{b} better"}:
        return f"{b} better at every {unit}"
    if len(kinds) == 1:
        return f"{verdicts[0]} at every {unit}"
    return f"differs by {unit}: " + ", ".join(verdicts)


def interaction_model(frame, metric: str, a: str, b: str) -> dict:
    """Mixed model `metric ~ arch * log2(size)` with a random intercept per seed (statsmodels).

    frame: one row per cell with columns arm, train_flights, seed and `metric`. Returns the
    coefficients and p-values of the architecture effect (at one training flight) and of its
    interaction with log2 training flights; NaN with an 'error' when they cannot be estimated
    (one size, or too few cells for the fit).
    """
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    d = frame[frame["arm"].isin([a, b])].dropna(subset=[metric]).copy()
    d["is_a"] = (d["arm"] == a).astype(float)
    d["log_size"] = np.log2(d["train_flights"].astype(float))
    d["y"] = d[metric].astype(float)
    nan = float("nan")
    not_fitted = {
        "arch": nan,
        "arch_p": nan,
        "interaction": nan,
        "interaction_p": nan,
        "mean_effect": nan,
        "mean_effect_se": nan,
        "mean_effect_p": nan,
    }
    if d["log_size"].nunique() < 2 or d["is_a"].nunique() < 2:  # nothing to separate
        return {**not_fitted, "cells": int(len(d)), "error": "needs both arms at two sizes"}
    try:
        with warnings.catch_warnings():
            # seeds often differ by little, so the seed variance sits on its boundary (0):
            # expected, and the fixed effects are then those of ordinary least squares
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = smf.mixedlm("y ~ is_a * log_size", d, groups=d["seed"]).fit(reml=True)
    except (np.linalg.LinAlgError, ValueError) as exc:  # a report is still written without it
        return {**not_fitted, "cells": int(len(d)), "error": f"{type(exc).__name__}: {exc}"}
    # the architecture effect averaged over the design's sizes: at their mean log2 size
    names = list(fit.fe_params.index)
    at = float(np.mean(np.unique(d["log_size"])))
    weights = np.array([{"is_a": 1.0, "is_a:log_size": at}.get(n, 0.0) for n in names])
    cov = fit.cov_params().loc[names, names].to_numpy()
    mean_effect = float(weights @ fit.fe_params.to_numpy())
    se = float(np.sqrt(weights @ cov @ weights))
    return {
        "arch": float(fit.params["is_a"]),
        "arch_p": float(fit.pvalues["is_a"]),
        "interaction": float(fit.params["is_a:log_size"]),
        "interaction_p": float(fit.pvalues["is_a:log_size"]),
        "mean_effect": mean_effect,
        "mean_effect_se": se,
        "mean_effect_p": float(2 * norm.sf(abs(mean_effect) / se)) if se > 0 else float("nan"),
        "cells": int(len(d)),
    }


def sign_test(wins_a: int, wins_b: int) -> float:
    """Two-sided exact sign test of 'either arm is as likely to win a paired seed' (ties
    dropped before counting)."""
    n = wins_a + wins_b
    return float(binomtest(wins_a, n, 0.5).pvalue) if n else 1.0
