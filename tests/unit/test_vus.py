"""VUS-PR / VUS-ROC against values computed with TSB-AD 1.5's own generate_curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anomaly.evaluate.metrics import ranking_metrics
from anomaly.evaluate.vus import vus

SHARED_REF = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "reference"
    / "vus"
    / "tsb_ad_1.5_reference.json"
)
# a copy of SHARED_REF, so the metric is checked wherever the repository is cloned
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "vus_tsb_ad_1.5_reference.json"
EXTRA_REF = Path(__file__).resolve().parents[1] / "data" / "vus_tsb_ad_extra.json"
TOL = 1e-9  # the reference implementation's values are matched to rounding


def _shared_reference() -> dict:
    return json.loads(REFERENCE.read_text())


def test_the_copied_reference_is_the_shared_one():
    if not SHARED_REF.is_file():
        pytest.skip(f"{SHARED_REF} is not beside this clone: the copy is checked where it is")
    assert json.loads(SHARED_REF.read_text()) == _shared_reference()


def _shared_inputs(key: str) -> tuple[np.ndarray, np.ndarray]:
    """The four 400-row inputs described in shared/reference/vus/README.md."""
    labels = np.zeros(400, dtype=int)
    labels[100:150] = labels[300:305] = 1
    score = np.zeros(400)
    if key == "a_perfect":
        score = labels.astype(float)
    elif key == "b_long_event_only":
        score[100:150] = 1
    elif key == "c_after_short_event":
        score[305:315] = 1
    elif key == "d_uniform_random_rng0":
        score = np.random.default_rng(0).random(400)
    return labels, score


SHARED_KEYS = ["a_perfect", "b_long_event_only", "c_after_short_event", "d_uniform_random_rng0"]


@pytest.mark.parametrize("window", [20, 40])
@pytest.mark.parametrize("key", SHARED_KEYS)
def test_matches_shared_tsb_ad_reference(key: str, window: int):
    expected = _shared_reference()[key][f"w{window}"]
    labels, score = _shared_inputs(key)
    pr, roc = vus(labels, score, window)
    assert pr == pytest.approx(expected["VUS_PR"], abs=TOL)
    assert roc == pytest.approx(expected["VUS_ROC"], abs=TOL)
    point = ranking_metrics(labels, score)  # the same call reported AUC-PR and AUC-ROC
    assert point["auc_pr"] == pytest.approx(expected["AUC_PR"], abs=TOL)
    assert point["auc_roc"] == pytest.approx(expected["AUC_ROC"], abs=TOL)


def _extra_inputs(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild one case of tests/data/vus_tsb_ad_extra.json from its recipe."""
    labels = np.zeros(case["n"], dtype=int)
    for start, stop in case["events"]:
        labels[start:stop] = 1
    recipe = case["score"]
    score = np.random.default_rng(recipe["seed"]).random(case["n"])
    if recipe["levels"] is not None:
        score = np.floor(score * recipe["levels"])
    for start, stop in recipe["lift_rows"]:
        score[start:stop] += recipe["lift"]
    return labels, score


EXTRA = json.loads(EXTRA_REF.read_text())["cases"]


@pytest.mark.parametrize(
    "name, window", [(name, w) for name, case in EXTRA.items() for w in case["windows"]]
)
def test_matches_extra_tsb_ad_cases(name: str, window: int):
    case = EXTRA[name]
    labels, score = _extra_inputs(case)
    assert score.sum() == pytest.approx(case["score_sum"], abs=1e-9)  # same inputs as TSB-AD saw
    expected = case["values"][f"w{window}"]
    pr, roc = vus(labels, score, window)
    assert pr == pytest.approx(expected["VUS_PR"], abs=TOL)
    assert roc == pytest.approx(expected["VUS_ROC"], abs=TOL)


@pytest.mark.parametrize(
    "n, found, missed", [(400, (100, 150), (300, 305)), (1000, (200, 260), (700, 760))]
)
def test_finding_one_of_two_events_is_scaled_by_event_share(n, found, missed):
    labels = np.zeros(n, dtype=int)
    labels[slice(*found)] = labels[slice(*missed)] = 1
    score = np.zeros(n)
    score[slice(*found)] = 1  # no false alarm, second event never flagged
    # Window 0: recall on the flagged rows is halved (1 event of 2 found), precision 1; the
    # last threshold flags every row (recall 1 at the base rate).
    base_rate = labels.sum() / n
    tpr = (found[1] - found[0]) / labels.sum() / 2
    assert vus(labels, score, 0)[0] == pytest.approx(tpr + (1 - tpr) * base_rate, abs=1e-12)
    assert vus(labels, score, 20)[0] < ranking_metrics(labels, score)["auc_pr"] - 0.2
    both = score + labels
    assert vus(labels, both, 20) == pytest.approx((1.0, 1.0), abs=1e-12)


def test_case_b_is_about_055_not_its_auc_pr():
    labels, score = _shared_inputs("b_long_event_only")
    assert ranking_metrics(labels, score)["auc_pr"] > 0.9
    assert vus(labels, score, 20)[0] == pytest.approx(0.55, abs=0.01)


def test_single_class_is_nan():
    assert all(np.isnan(v) for v in vus(np.zeros(50), np.arange(50.0), 10))
    assert all(np.isnan(v) for v in vus(np.ones(50), np.arange(50.0), 10))


def test_scores_with_nan_are_refused_not_ranked_anywhere():
    import numpy as np
    import pytest

    from anomaly.evaluate.vus import vus

    labels = np.r_[np.zeros(40), np.ones(10), np.zeros(40)]
    scores = np.r_[np.full(31, np.nan), np.arange(59.0)]
    with pytest.raises(ValueError, match="finite"):
        vus(labels, scores, window=5)
