"""How long a deep model trains: fixed-size epochs and the plateau rule of early stopping."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from anomaly.models.registry import make_detector
from anomaly.models.system import Plateau

TINY = {"hidden_size": 4}


def _windows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(8)[None, :, None]
    w = np.sin(0.4 * t + rng.uniform(0, 6, (n, 1, 2))) + 0.05 * rng.standard_normal((n, 8, 2))
    return w.astype(np.float32)


@pytest.mark.parametrize("n_windows", [5, 300])
def test_an_epoch_is_steps_per_epoch_optimizer_steps_at_any_data_size(n_windows):
    det = make_detector(
        "lstm",
        {"net": TINY, "max_epochs": 3, "patience": 100, "batch_size": 64, "steps_per_epoch": 7},
    )
    det.fit(_windows(n_windows), _windows(16, seed=1))
    summary = det.training_summary()
    assert summary["epochs"] == 3 and summary["steps"] == 21
    assert summary["hit_max_epochs"] == 1.0


def test_without_steps_per_epoch_an_epoch_is_one_pass():
    det = make_detector("lstm", {"net": TINY, "max_epochs": 2, "patience": 100, "batch_size": 64})
    det.fit(_windows(300), _windows(16, seed=1))
    assert det.training_summary()["steps"] == 2 * 5  # ceil(300 / 64) batches per pass


def test_training_never_stops_while_the_learning_rate_warms_up():
    """Five steps an epoch, a 20-step warm-up and a 50 % progress bar no epoch can pass: the
    plateau is there from epoch 2, but training goes on to the end of the warm-up (epoch 4)."""
    det = make_detector(
        "lstm",
        {
            "net": TINY,
            "max_epochs": 50,
            "patience": 1,
            "min_improvement": 0.5,
            "warmup_steps": 20,
            "steps_per_epoch": 5,
        },
    )
    det.fit(_windows(64), _windows(16, seed=1))
    summary = det.training_summary()
    assert summary["epochs"] == 4 and summary["hit_max_epochs"] == 0.0


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e4])
def test_progress_is_relative_to_the_best_loss(scale):
    """Falls of 5 %, then 1 % and 1 %: with a 4 % bar only the first counts (the last two add up
    to 2 % of the best loss), at any scale of loss."""
    rule = Plateau(patience=2, min_improvement=0.04)
    losses = scale * np.array([1.0, 0.95, 0.95 * 0.99, 0.95 * 0.99 * 0.99])
    stops = [rule._evaluate_stopping_criteria(torch.tensor(x))[0] for x in losses]
    assert stops == [False, False, False, True]


def test_any_fall_is_progress_without_a_bar():
    rule = Plateau(patience=1)
    stops = [rule._evaluate_stopping_criteria(torch.tensor(x))[0] for x in (1.0, 0.999, 0.9989)]
    assert stops == [False, False, False]


def test_small_falls_add_up_against_the_best_loss():
    """Falls of 2 % a check never pass a 4 % bar one by one, but two of them together do."""
    rule = Plateau(patience=3, min_improvement=0.04)
    losses = [1.0, 0.98, 0.98**2, 0.98**3]
    stops = [rule._evaluate_stopping_criteria(torch.tensor(x))[0] for x in losses]
    assert stops == [False, False, False, False]


def test_a_non_finite_loss_stops_training_even_during_warm_up():
    rule = Plateau(patience=1, warmup_steps=100)
    rule._trainer = SimpleNamespace(global_step=10)
    stops = [rule._evaluate_stopping_criteria(torch.tensor(x))[0] for x in (1.0, 1.0, np.nan)]
    assert stops == [False, False, True]


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan")])
def test_an_impossible_progress_bar_is_refused(bad):
    with pytest.raises(ValueError, match="min_improvement"):
        Plateau(patience=1, min_improvement=bad)


def test_a_zero_step_epoch_is_refused():
    det = make_detector("lstm", {"net": TINY, "steps_per_epoch": 0})
    with pytest.raises(ValueError, match="steps_per_epoch"):
        det.fit(_windows(8), _windows(8, seed=1))


def test_an_interrupted_training_is_an_interrupt_not_an_exit(monkeypatch):
    # Lightning turns Ctrl-C (and SIGTERM, which the CLI maps to it) into sys.exit(1) and then
    # ignores SIGINT: the command must still see the interrupt (exit 130, outputs cleaned up)
    import signal

    from anomaly.models.system import ReconstructionSystem

    def interrupted(self, batch, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReconstructionSystem, "training_step", interrupted)
    det = make_detector("lstm", {"net": TINY, "max_epochs": 2})
    with pytest.raises(KeyboardInterrupt):
        det.fit(_windows(20), _windows(8, seed=1))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_best_epoch_is_never_a_diverged_one():
    # np.argmin returned the first NaN: a diverged epoch 2 was reported as the kept one
    from anomaly.models.deep import best_epoch

    assert best_epoch([0.1441, 0.1329, float("nan")]) == 1.0
    assert best_epoch([float("nan"), 0.5, 0.2, 0.3]) == 2.0
    assert np.isnan(best_epoch([]))
