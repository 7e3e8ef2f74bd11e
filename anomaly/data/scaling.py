"""Per-channel scaling fitted on training rows only, stored as plain numbers."""

from __future__ import annotations

import numpy as np

from anomaly.errors import UserError


class ChannelScaler:
    """Standard (mean / std) or robust (median / IQR) scaling per channel.

    Attributes
    ----------
    center_, scale_ : (n_features,) float32, fitted on training rows.
    """

    def __init__(self, kind: str = "standard"):
        self.kind = kind

    def fit(self, rows: np.ndarray) -> ChannelScaler:
        from sklearn.preprocessing import RobustScaler, StandardScaler  # scoring needs no sklearn

        if self.kind == "standard":
            sk = StandardScaler().fit(rows)
            center, scale = sk.mean_, sk.scale_
        elif self.kind == "robust":
            sk = RobustScaler().fit(rows)
            center, scale = sk.center_, sk.scale_
            # a channel constant over the middle half (forward-filled, quantised, a throttle at
            # full power) has IQR 0, which scikit-learn turns into a scale of 1: in raw units,
            # such a channel would swamp the loss; its std stands in
            q75, q25 = np.percentile(rows, [75, 25], axis=0)
            std = rows.std(axis=0)
            scale = np.where(q75 - q25 > 1e-8, scale, np.where(std > 1e-8, std, 1.0))
        else:
            raise UserError(f"scaler must be 'standard' or 'robust', got {self.kind!r}")
        self.center_ = np.asarray(center, dtype=np.float32)
        self.scale_ = np.asarray(scale, dtype=np.float32)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.center_) / self.scale_).astype(np.float32, copy=False)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "center": self.center_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> ChannelScaler:
        s = cls(d["kind"])
        s.center_ = np.asarray(d["center"], dtype=np.float32)
        s.scale_ = np.asarray(d["scale"], dtype=np.float32)
        return s
