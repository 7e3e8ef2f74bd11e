"""Threshold rules fitted on validation scores and saved beside the model.

Changing the rule never means retraining: refit it on the stored validation scores. A rule is
written as 'kind:value', e.g. 'quantile:0.99', 'zscore:4', 'max:1.1', 'fixed:0.5'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.errors import UserError

KINDS = ("quantile", "zscore", "max", "fixed")


@dataclass
class Threshold:
    """A fitted threshold.

    Attributes
    ----------
    rule : the rule it was fitted with.
    threshold_ : scores strictly above it are anomalous.
    """

    rule: str = "quantile:0.99"

    def __post_init__(self):
        kind, _, value = self.rule.partition(":")
        if kind not in KINDS or not value:
            raise UserError(
                f"threshold rule {self.rule!r}: expected one of {', '.join(k + ':VALUE' for k in KINDS)}"
            )
        try:
            self._value = float(value)
        except ValueError:
            raise UserError(f"threshold rule {self.rule!r}: {value!r} is not a number") from None
        self._kind = kind
        if kind == "quantile" and not 0 < self._value <= 1:
            raise UserError(f"threshold rule {self.rule!r}: quantile must be in (0, 1]")

    def fit(self, scores: np.ndarray) -> Threshold:
        """scores: (n,) validation scores of normal rows."""
        scores = np.asarray(scores, dtype=np.float64)
        if self._kind != "fixed" and scores.size == 0:
            raise UserError("cannot fit a threshold on no validation scores")
        if self._kind == "quantile":
            self.threshold_ = float(np.quantile(scores, self._value))
        elif self._kind == "zscore":
            self.threshold_ = float(scores.mean() + self._value * scores.std())
        elif self._kind == "max":
            self.threshold_ = float(scores.max() * self._value)
        else:
            self.threshold_ = self._value
        return self

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """(n,) scores -> (n,) bool, True where anomalous."""
        if not hasattr(self, "threshold_"):
            raise RuntimeError("threshold is not fitted; call fit() first")
        return np.asarray(scores) > self.threshold_

    def to_dict(self) -> dict:
        return {"rule": self.rule, "threshold": self.threshold_}

    @classmethod
    def from_dict(cls, d: dict) -> Threshold:
        t = cls(d["rule"])
        t.threshold_ = float(d["threshold"])
        return t

    @classmethod
    def fixed(cls, value: float) -> Threshold:
        return cls(f"fixed:{value}").fit(np.zeros(0))
