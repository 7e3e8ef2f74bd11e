"""One suite for every model in the registry: the Detector contract."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.models.base import NotFittedError
from anomaly.models.reconstruction import row_error
from anomaly.models.registry import MODELS, get, load_detector, make_detector
from tests.helpers import QUICK_NETWORKS

# what keeps each model fast here; a model missing from this table runs with its defaults (a deep
# one for 3 epochs), so a new registry entry is covered without editing this file
FAST = {"iforest": {"n_estimators": 50}}
# rows of the window whose error scores its last row, where not 1 (anomaly.models.reconstruction)
SCORED_ROWS = {"lstm_ae": None, "transformer_ae": 8}


def _normal(n=256, T=16, F=3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :, None] * 0.3 + rng.uniform(0, 6, size=(n, 1, 1))
    return (np.sin(t + np.arange(F)) + 0.05 * rng.normal(size=(n, T, F))).astype(np.float32)


@pytest.fixture(scope="module", params=MODELS)
def fitted(request):
    name = request.param
    params = dict(FAST.get(name, {}))
    if get(name).deep:
        params.update(max_epochs=3, net=QUICK_NETWORKS.get(name, {}))
    det = make_detector(name, params, random_state=0)
    train = _normal()
    return name, params, det.fit(train, _normal(64, seed=1)), det


def test_fit_returns_self(fitted):
    _, _, result, det = fitted
    assert result is det


def test_scores_finite_with_right_shape(fitted):
    name, _, det, _ = fitted
    w = _normal(20, seed=2)
    s = det.score(w)
    assert s.shape == (20,) and np.isfinite(s).all()
    r = det.residuals(w)
    n_res = w.shape[2] if det.has_attribution else 1
    assert r.shape == (*w.shape[:2], n_res)
    last = det.last_residuals(w)
    assert last.shape == (20, n_res) and np.isfinite(last).all()
    # a row is scored by its own residual, or an autoencoder's error over the window's last rows
    error_rows = SCORED_ROWS.get(name, 1)
    np.testing.assert_allclose(last, row_error(r, error_rows), rtol=1e-5, atol=1e-6)
    # an error over several rows, or a window's anomaly score, is a magnitude: tested one-sided
    assert det.signed_residuals == (error_rows == 1 and name != "iforest")
    assert det.n_params > 0


def test_obvious_spike_scores_highest(fitted):
    _, _, det, _ = fitted
    w = _normal(20, seed=3)
    w[7, 6:10, :] += 25.0
    assert int(np.argmax(det.score(w))) == 7


def test_save_load_keeps_scores(fitted, tmp_path):
    name, params, det, _ = fitted
    det.save(tmp_path)
    again = load_detector(name, tmp_path, det.get_params())
    w = _normal(10, seed=4)
    np.testing.assert_allclose(again.score(w), det.score(w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(again.last_residuals(w), det.last_residuals(w), rtol=1e-6)


def test_a_recurrent_stream_steps_on_one_thread_and_restores_the_callers(fitted, monkeypatch):
    # one row at a time is too small a product to split across threads (deep.one_thread)
    _, _, det, _ = fitted
    stream = det.recurrent_stream(4)
    if stream is None:  # scored row by row from its window
        assert not hasattr(getattr(det, "network_", None), "step")
        return
    import torch

    step, seen = stream.network.step, []
    record = lambda *a: (seen.append(torch.get_num_threads()), step(*a))[1]  # noqa: E731
    monkeypatch.setattr(stream.network, "step", record)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        stream.feed(_normal(1, T=10, seed=5)[0])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", MODELS)
def test_unfitted_raises(name):
    with pytest.raises(NotFittedError):
        make_detector(name).score(_normal(4))


@pytest.mark.parametrize("name", MODELS)
def test_wrong_shape_is_a_clear_error(name):
    with pytest.raises(ValueError, match="windows"):
        make_detector(name).fit(np.zeros((10, 3)))


def test_init_stores_params_unchanged():
    det = make_detector("pca", {"n_components": 3}, random_state=5)
    assert det.get_params() == {"n_components": 3, "random_state": 5}


@pytest.mark.parametrize("name", MODELS)
def test_params_round_trip_through_set_params(name):
    det = make_detector(name, random_state=7)
    params = det.get_params()
    assert params["random_state"] == 7
    again = make_detector(name, random_state=0).set_params(**params)
    assert again.get_params() == params
    with pytest.raises(ValueError, match="no parameter"):
        det.set_params(not_a_parameter=1)
