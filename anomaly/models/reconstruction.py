"""What an autoencoder rebuilds of a window, and how its error on the window scores a row.

Both were chosen by cross-validation over the synthetic preset's training and validation flights
(docs/results/small_data/autoencoder_readouts.txt): rebuilding the window around its own mean
and scoring row t by the root mean square error of the window's last rows removed most false
alarms of both autoencoders. Every row read is at or before t, so scoring stays causal.
"""

from __future__ import annotations

import numpy as np
import torch

from anomaly.errors import UserError


def window_level(x: torch.Tensor, center: bool) -> torch.Tensor:
    """(B, T, F) windows -> (B, 1, F): each window's per-channel mean when `center`, else zero.

    The autoencoder subtracts it before encoding and adds it back to the reconstruction, so a
    level that a normal window merely sits at (an altitude late in a flight) is not for the
    network to rebuild. The price: a fault that only shifts a level is seen at its edge.
    """
    if center:
        return x.mean(dim=1, keepdim=True)
    return torch.zeros_like(x[:, :1])


def check_settings(center: bool, error_rows: int | None, window_len: int | None = None) -> None:
    """Refuse, by name, what YAML lets through: "false" or 2 for a bool (both would centre), a
    fraction, zero or more rows than the window for `error_rows`."""
    if not isinstance(center, bool):
        raise UserError(f"center must be true or false, got {center!r}")
    if error_rows is None:
        return
    if isinstance(error_rows, bool) or not isinstance(error_rows, int) or error_rows < 1:
        raise UserError(f"error_rows must be a whole number >= 1 or null, got {error_rows!r}")
    if window_len is not None and error_rows > window_len:
        raise UserError(
            f"error_rows {error_rows} is more rows than the window's {window_len}; "
            "null takes the whole window"
        )


def row_error(residuals: np.ndarray, error_rows: int | None) -> np.ndarray:
    """(n, T, F) signed residuals of the windows ending on n rows -> (n, F): what scores each row.

    1: the signed residual of the row itself. k: the root mean square over the window's last k
    rows (unsigned), which a slow fault's shape fills while one row's error barely moves.
    None: over the whole window.
    """
    if error_rows == 1:
        return residuals[:, -1]
    tail = residuals if error_rows is None else residuals[:, -error_rows:]
    # squared in float64: a float32 square overflows above about 1.8e19
    return np.sqrt(np.mean(np.square(tail, dtype=np.float64), axis=1)).astype(residuals.dtype)
