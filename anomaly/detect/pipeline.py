"""Detector + scaler + threshold + event rules: everything batch scoring and the pyfunc model call.

Rows -> scaled rows -> windows (last one ends on the last row) -> per-step errors -> per-row,
per-channel errors (mean over covering windows) -> row score (mean over channels), optionally
made flight-relative and smoothed over past rows -> threshold -> flagged rows -> events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly import __version__
from anomaly.data.scaling import ChannelScaler
from anomaly.data.windows import window_errors_to_rows, window_starts
from anomaly.detect.events import postprocess
from anomaly.detect.thresholds import Threshold
from anomaly.models.base import Detector
from anomaly.models.registry import load_detector

PIPELINE_FILE = "pipeline.json"


@dataclass
class RowScores:
    """score (n_rows,), contributions (n_rows, n_channels) summing to 1 per row."""

    score: np.ndarray
    contributions: np.ndarray


def trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row and the k-1 before it (fewer at the start): causal, so no look-ahead."""
    if k <= 1:
        return x
    c = np.cumsum(np.concatenate([[0.0], x]))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - k, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def flight_relative(score: np.ndarray, baseline_rows: int, lag_rows: int) -> np.ndarray:
    """Each row's score divided by the median of the same flight's scores over `baseline_rows`
    rows ending `lag_rows` before it (causal).

    Why: error levels differ between flights and campaigns far more than between normal and
    faulty seconds of one flight (on ALFA, pooled row AUC-ROC 0.54 to 0.65 in cross-validation),
    so a fault shows as a jump against the flight's own recent past. Rows with no history yet use
    the first row as their baseline; a zero baseline gives the neutral ratio 1.
    """
    if baseline_rows <= 0:
        return score
    base = (
        pd.Series(score)
        .shift(lag_rows)
        .rolling(baseline_rows, min_periods=1)
        .median()
        .to_numpy(copy=True)
    )
    base[: min(lag_rows, len(base))] = score[0] if len(score) else 0.0
    return np.divide(score, base, out=np.ones_like(score, dtype=np.float64), where=base > 0)


def contributions(errors: np.ndarray) -> np.ndarray:
    """(n_rows, F) errors -> each channel's share of its row's error (uniform where all are 0)."""
    total = errors.sum(axis=1, keepdims=True)
    return np.divide(
        errors, total, out=np.full_like(errors, 1.0 / errors.shape[1]), where=total > 0
    )


class Pipeline:
    """A fitted detector with the settings that turn raw rows into scores, labels and events.

    Attributes
    ----------
    channels : input columns, in the order the detector was trained on.
    sample_rate_hz : training sample rate; logs far from it are refused by batch scoring.
    """

    def __init__(
        self,
        model_name: str,
        detector: Detector,
        scaler: ChannelScaler,
        channels: list[str],
        window_len: int,
        score_stride: int,
        threshold: Threshold | None = None,
        sample_rate_hz: float = float("nan"),
        smooth_rows: int = 1,
        min_event_rows: int = 1,
        merge_gap_rows: int = 0,
        warmup_rows: int = 0,
        baseline_rows: int = 0,
        baseline_lag_rows: int = 0,
    ):
        self.model_name = model_name
        self.detector = detector
        self.scaler = scaler
        self.channels = list(channels)
        self.window_len = window_len
        self.score_stride = score_stride
        self.threshold = threshold
        self.sample_rate_hz = sample_rate_hz
        self.smooth_rows = smooth_rows
        self.min_event_rows = min_event_rows
        self.merge_gap_rows = merge_gap_rows
        self.warmup_rows = warmup_rows
        self.baseline_rows = baseline_rows
        self.baseline_lag_rows = baseline_lag_rows

    # -- scoring --------------------------------------------------------------------------------
    def window_errors(self, scaled: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """(n_rows, F) scaled rows, (n_windows,) starts -> (n_windows, window_len, F) errors."""
        view = np.lib.stride_tricks.sliding_window_view(
            scaled, self.window_len, axis=0
        )  # (n, F, T)
        windows = np.ascontiguousarray(view[starts].transpose(0, 2, 1))
        return self.detector.error_map(windows)

    def row_errors(self, values: np.ndarray, name: str = "flight") -> np.ndarray:
        """(n_rows, F) raw values -> (n_rows, F) per-channel error of each row."""
        scaled = self.scaler.transform(np.asarray(values, dtype=np.float32))
        starts = window_starts(len(scaled), self.window_len, self.score_stride, name)
        return window_errors_to_rows(self.window_errors(scaled, starts), starts, len(scaled))

    def finish(self, errors: np.ndarray) -> RowScores:
        """(n_rows, F) row errors -> row scores and per-channel contributions."""
        raw = flight_relative(errors.mean(axis=1), self.baseline_rows, self.baseline_lag_rows)
        return RowScores(trailing_mean(raw, self.smooth_rows), contributions(errors))

    def score_rows(self, values: np.ndarray, name: str = "flight") -> RowScores:
        return self.finish(self.row_errors(values, name))

    def flag(self, score: np.ndarray) -> np.ndarray:
        """(n_rows,) scores of a whole flight -> (n_rows,) bool after threshold, warm-up, gap merging
        and minimum length."""
        if self.threshold is None:
            raise RuntimeError("pipeline has no fitted threshold")
        return postprocess(self.raw_flags(score, 0), self.min_event_rows, self.merge_gap_rows)

    def raw_flags(self, score: np.ndarray, first_row: int) -> np.ndarray:
        """Threshold crossings, silenced during the warm-up (rows counted from the flight start)."""
        flags = self.threshold.apply(score)
        flags[: max(0, self.warmup_rows - first_row)] = False
        return flags

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.detector.save(folder)
        spec = {
            "format_version": 1,
            "anomaly_version": __version__,
            "model": self.model_name,
            "model_params": self.detector.get_params(),
            "has_attribution": self.detector.has_attribution,
            "channels": self.channels,
            "window_len": self.window_len,
            "score_stride": self.score_stride,
            "scaler": self.scaler.to_dict(),
            "threshold": None if self.threshold is None else self.threshold.to_dict(),
            "sample_rate_hz": self.sample_rate_hz,
            "smooth_rows": self.smooth_rows,
            "min_event_rows": self.min_event_rows,
            "merge_gap_rows": self.merge_gap_rows,
            "warmup_rows": self.warmup_rows,
            "baseline_rows": self.baseline_rows,
            "baseline_lag_rows": self.baseline_lag_rows,
        }
        (folder / PIPELINE_FILE).write_text(json.dumps(spec, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Pipeline:
        """Rebuild a saved pipeline (the folder `save` wrote)."""
        folder = Path(folder)
        if not (folder / PIPELINE_FILE).exists():
            raise FileNotFoundError(f"{folder}: no {PIPELINE_FILE}; not a saved anomaly pipeline")
        spec = json.loads((folder / PIPELINE_FILE).read_text())
        det = load_detector(spec["model"], folder, spec["model_params"])
        thr = None if spec["threshold"] is None else Threshold.from_dict(spec["threshold"])
        return cls(
            spec["model"],
            det,
            ChannelScaler.from_dict(spec["scaler"]),
            spec["channels"],
            spec["window_len"],
            spec["score_stride"],
            thr,
            spec["sample_rate_hz"],
            spec["smooth_rows"],
            spec["min_event_rows"],
            spec["merge_gap_rows"],
            spec.get("warmup_rows", 0),
            spec.get("baseline_rows", 0),
            spec.get("baseline_lag_rows", 0),
        )


def find_pipeline_folder(path: str | Path) -> Path | None:
    """The saved pipeline in a local folder (itself, or a downloaded MLflow model's
    artifacts/pipeline); None when `path` is no local folder, e.g. an MLflow URI."""
    local = Path(path)
    if not local.is_dir():
        return None
    for cand in (local, local / "artifacts" / "pipeline"):
        if (cand / PIPELINE_FILE).exists():
            return cand
    raise FileNotFoundError(f"{path}: no {PIPELINE_FILE} in this folder or its artifacts/pipeline")
