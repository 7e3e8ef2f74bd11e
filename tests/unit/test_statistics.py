"""The report's statistics and verdict rules on synthetic run records with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from anomaly.evaluate.statistics import mean_ci, paired, size_verdict, wilcoxon_p
from anomaly.study.report import build


def test_mean_ci_matches_t_interval():
    x = [0.5, 0.6, 0.7, 0.55, 0.65]
    ci = mean_ci(x)
    half = stats.t.ppf(0.975, 4) * np.std(x, ddof=1) / np.sqrt(5)
    assert ci.mean == pytest.approx(0.6)
    assert (ci.low, ci.high) == pytest.approx((0.6 - half, 0.6 + half))
    assert mean_ci([0.3]).low == mean_ci([0.3]).high == 0.3
    assert mean_ci([np.nan, 1.0, 3.0]).n == 2


def test_wilcoxon_known_values():
    assert wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(0.0625)  # exact: the floor with five pairs
    assert wilcoxon_p([0, 0, 0]) == 1.0
    assert wilcoxon_p(np.arange(1, 21)) < 0.001


def test_paired_uses_common_seeds_and_calls_sides():
    a = {0: 0.9, 1: 0.91, 2: 0.92, 3: 0.9, 4: 0.93}
    b = {0: 0.5, 1: 0.52, 2: 0.49, 3: 0.5, 4: 0.51, 9: 0.0}
    p = paired(a, b)
    assert p.n_pairs == 5 and p.call == "a" and p.diff.low > 0
    assert paired(b, a).call == "b"
    assert paired({0: 0.5, 1: 0.6}, {0: 0.6, 1: 0.5}).call == "tie"


@pytest.mark.parametrize(
    "calls, expected",
    [
        ({1: "a", 2: "a", 4: "a"}, "reproduced"),
        ({1: "a", 2: "a", 4: "tie", 8: "b"}, "reproduced only below 4 flights"),
        ({1: "a", 2: "tie", 4: "a"}, "not reproduced"),
        ({1: "tie", 2: "a"}, "reproduced only from 2 flights on (not on small data)"),
        ({1: "tie", 2: "a", 4: "tie"}, "not reproduced"),
        ({1: "b", 2: "b"}, "not reproduced"),
    ],
)
def test_size_verdict_rules(calls, expected):
    assert size_verdict(calls)[0] == expected


def _records(lstm_edge_below: int) -> pd.DataFrame:
    """Synthetic cells: the LSTM wins by 0.2 F1 below `lstm_edge_below` flights, ties from there."""
    rng = np.random.default_rng(0)
    rows = []
    for size in (1, 2, 4, 8):
        for seed in range(5):
            base = 0.5 + 0.02 * seed
            edge = 0.2 if size < lstm_edge_below else 0.0
            noise = rng.normal(0, 0.005)
            for arm, f1, t, n in (
                ("lstm", base + edge, 1.0, 1000),
                ("transformer", base + noise, 3.0 + noise, 1100),
                ("pca", 0.4, 0.01, 500),
            ):
                rows.append(
                    {
                        "arm": arm,
                        "train_flights": size,
                        "seed": seed,
                        "model": arm,
                        "f1_point": f1,
                        "auc_pr": f1,
                        "train_seconds": t + 0.01 * seed,
                        "n_params": n,
                        "epochs": 5,
                        "fault/engine/f1_point": f1,
                    }
                )
    return pd.DataFrame(rows)


def test_report_verdict_follows_numbers(tmp_path):
    text, verdicts = build(
        _records(lstm_edge_below=4), {"compare": "lstm,transformer"}, tmp_path, "known answer"
    )
    by_claim = {v["claim"]: v["verdict"] for v in verdicts}
    assert by_claim["lstm reaches higher F1 than transformer"] == "reproduced only below 4 flights"
    assert by_claim["lstm trains faster than transformer"] == "reproduced"
    for png in ("f1_vs_training_flights.png", "cost.png", "paired_f1.png"):
        assert (tmp_path / png).stat().st_size > 1000
    assert "engine" in text.split("per fault type")[1]
    assert (tmp_path / "report.md").read_text() == text


def test_report_says_not_reproduced_when_tied(tmp_path):
    _, verdicts = build(
        _records(lstm_edge_below=0), {"compare": "lstm,transformer"}, tmp_path, "tie"
    )
    assert verdicts[0]["verdict"] == "not reproduced"
