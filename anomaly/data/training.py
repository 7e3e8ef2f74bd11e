"""Split -> scaled training and validation windows, and the scaler fitted to make them.

Only normal rows of training flights reach the scaler and the training windows: a flight's rows
from its first anomaly on are cut off before windowing, so no window holds an anomalous row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from anomaly.data.scaling import ChannelScaler
from anomaly.data.schema import Flight
from anomaly.data.splits import Split
from anomaly.data.windows import make_windows
from anomaly.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """Scaled windows (n_windows, window_len, n_features) and the scaler fitted to make them."""

    scaler: ChannelScaler
    train_windows: np.ndarray
    val_windows: np.ndarray
    channels: list[str]


def normal_windows(
    flights: list[Flight], scaler: ChannelScaler, window_len: int, stride: int
) -> np.ndarray:
    """Windows from the normal prefix of each flight; pieces shorter than a window are skipped."""
    out = []
    for f in flights:
        rows = f.normal_prefix()
        if len(rows) < window_len:
            log.warning(
                "%s: %d normal rows, fewer than one window; not used", f.flight_id, len(rows)
            )
            continue
        out.append(make_windows(scaler.transform(rows), window_len, stride, f.flight_id))
    if not out:
        return np.zeros((0, window_len, len(scaler.center_)), dtype=np.float32)
    return np.concatenate(out)


def training_windows(
    split: Split, window_len: int, stride: int, scaler: str = "standard"
) -> TrainingData:
    rows = np.concatenate([f.normal_prefix() for f in split.train])
    if len(rows) < 2:  # the scaler needs them before the windows are counted
        names = ", ".join(f.flight_id for f in split.train[:3])
        raise UserError(
            f"no normal rows to train on: every training flight ({names}"
            f"{', ...' if len(split.train) > 3 else ''}) is labelled anomalous from its first "
            "row (is --label-col a label column?)"
        )
    fitted = ChannelScaler(scaler).fit(rows)
    train = normal_windows(split.train, fitted, window_len, stride)
    if len(train) == 0:
        raise UserError(
            f"no training window: every training flight is shorter than {window_len} normal rows"
        )
    val = normal_windows(split.validation, fitted, window_len, stride)
    return TrainingData(fitted, train, val, split.train[0].channels)
