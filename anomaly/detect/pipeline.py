"""Scaler + detector + alarm rule: raw rows in, alarms out; what every scoring path calls.

Rows -> scaled rows -> causal residuals (anomaly.detect.residuals) -> alarm rule (normalisation,
CUSUM, decision level; anomaly.detect.alarms) -> per-row statistic, blamed channel and alarm
flag; beside the model, the frozen-signal check (anomaly.detect.frozen) on the raw rows adds its
alarms through the same confirmation. Each row's outputs use rows up to it only, and a stream
carries every state across chunks, so `anomaly train`'s evaluation, `anomaly score` and `anomaly
watch`, whatever their chunking, and the MLflow model, given a whole flight, raise the same alarms.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly import __version__
from anomaly.data.scaling import ChannelScaler
from anomaly.detect.alarms import AlarmRule
from anomaly.detect.frozen import FrozenCheck
from anomaly.detect.residuals import residual_stream
from anomaly.errors import UserError
from anomaly.models.base import Detector
from anomaly.models.registry import load_detector

PIPELINE_FILE = "pipeline.json"
# 3: deep detectors record steps_per_epoch and min_improvement (limit_train_batches is gone)
FORMAT_VERSION = 3


@dataclass
class ScoredBlock:
    """Consecutive rows: time (n,), score (n,) the alarm rule's statistic, is_anomaly (n,) bool,
    channel (n,) index of the residual channel holding the statistic (of the frozen channel on
    an alarm that only the frozen check raised), contributions (n, C)."""

    time: np.ndarray
    score: np.ndarray
    is_anomaly: np.ndarray
    channel: np.ndarray
    contributions: np.ndarray


class Pipeline:
    """A fitted detector with everything that turns raw rows into alarms.

    Attributes
    ----------
    channels : input columns, in the order the detector was trained on.
    residual_channels : what the alarm rule tests: the channels, or one 'score' for a model
        without per-channel residuals.
    sample_rate_hz : training sample rate; logs far from it are refused by batch scoring.
    log_format : how the training logs were read (sep, time_col, label_col): scoring reads new
        logs the same way unless a flag overrides it.
    rule : the fitted alarm rule (None until `calibrate`).
    frozen : the fitted frozen-signal check (anomaly.detect.frozen), or None: its alarms join
        the rule's (naming the frozen channel where the model has per-channel residuals); the
        score stays the rule's statistic.
    """

    def __init__(
        self,
        model_name: str,
        detector: Detector,
        scaler: ChannelScaler,
        channels: list[str],
        window_len: int,
        score_stride: int,
        sample_rate_hz: float,
        rule: AlarmRule | None = None,
        log_format: dict | None = None,
        frozen: FrozenCheck | None = None,
    ):
        self.model_name = model_name
        self.detector = detector
        self.scaler = scaler
        self.channels = list(channels)
        self.window_len = window_len
        self.score_stride = score_stride
        self.sample_rate_hz = sample_rate_hz
        self.rule = rule
        self.log_format = dict(log_format or {})
        self.frozen = frozen

    @property
    def residual_channels(self) -> list[str]:
        return self.channels if self.detector.has_attribution else ["score"]

    def residuals(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One flight's raw rows (n, F) -> residuals (n, C) and fresh (n,) bool."""
        return self._residual_stream().feed(self.scaler.transform(np.asarray(values, np.float32)))

    def _residual_stream(self):
        n_res = len(self.residual_channels)
        return residual_stream(self.detector, self.window_len, self.score_stride, n_res)

    def calibrate(self, flights: list[np.ndarray], rule: AlarmRule) -> Pipeline:
        """Fit `rule` on the residuals of validation normal flights (raw rows, each from its
        first row) and make it this pipeline's rule."""
        self.rule = rule.fit([self.residuals(values) for values in flights])
        return self

    def stream(self) -> PipelineStream:
        """A fresh state for one flight."""
        if self.rule is None:
            raise RuntimeError("pipeline has no fitted alarm rule; call calibrate() first")
        return PipelineStream(self)

    def score(self, values: np.ndarray, time: np.ndarray | None = None) -> ScoredBlock:
        """One whole flight in one pass: the same stream as chunked scoring, fed once."""
        values = np.asarray(values, np.float32)
        t = np.arange(len(values)) / self.sample_rate_hz if time is None else time
        return self.stream().feed(t, values)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.detector.save(folder)
        spec = {
            "format_version": FORMAT_VERSION,
            "anomaly_version": __version__,
            "model": self.model_name,
            "model_params": self.detector.get_params(),
            "channels": self.channels,
            "window_len": self.window_len,
            "score_stride": self.score_stride,
            "scaler": self.scaler.to_dict(),
            "sample_rate_hz": self.sample_rate_hz,
            "log_format": self.log_format,
            "rule": None if self.rule is None else self.rule.to_dict(),
            "frozen": None if self.frozen is None else self.frozen.to_dict(),
        }
        (folder / PIPELINE_FILE).write_text(json.dumps(spec, indent=2, allow_nan=False))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Pipeline:
        """Rebuild a saved pipeline (the folder `save` wrote)."""
        folder = Path(folder)
        if not (folder / PIPELINE_FILE).exists():
            raise FileNotFoundError(f"{folder}: no {PIPELINE_FILE}; not a saved anomaly pipeline")
        try:
            spec = json.loads((folder / PIPELINE_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(
                f"{folder / PIPELINE_FILE}: not a readable saved pipeline ({e})"
            ) from None
        version = spec.get("format_version") if isinstance(spec, dict) else None
        if version != FORMAT_VERSION:
            other = (
                "an older" if isinstance(version, int) and version < FORMAT_VERSION else "another"
            )
            raise FileNotFoundError(
                f"{folder}: saved by {other} version of anomaly (format {version}, "
                f"this one reads {FORMAT_VERSION}); retrain it or score it with that version"
            )
        try:
            detector = load_detector(spec["model"], folder, spec["model_params"])
        except (
            RuntimeError,  # torch: a cut weights file, or weights that do not fit the network
            EOFError,
            pickle.UnpicklingError,
            json.JSONDecodeError,
            zipfile.BadZipFile,  # numpy: a cut .npz
        ) as e:
            why = " ".join(str(e).split())[:300]  # the library's own words, on one line
            raise UserError(
                f"{folder}: a damaged saved model, or weights its settings do not fit "
                f"({type(e).__name__}: {why})"
            ) from None
        return cls(
            spec["model"],
            detector,
            ChannelScaler.from_dict(spec["scaler"]),
            spec["channels"],
            spec["window_len"],
            spec["score_stride"],
            spec["sample_rate_hz"],
            None if spec["rule"] is None else AlarmRule.from_dict(spec["rule"]),
            spec["log_format"],
            FrozenCheck.from_dict(spec["frozen"]) if spec.get("frozen") else None,
        )


class PipelineStream:
    """One flight through the pipeline, chunk by chunk: every row's alarm as soon as it arrives."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.residuals = pipeline._residual_stream()
        self.alarms = pipeline.rule.stream()
        self.frozen = None if pipeline.frozen is None else pipeline.frozen.stream()
        self.rows = 0

    def feed(self, time: np.ndarray, values: np.ndarray) -> ScoredBlock:
        """time (n,) seconds, values (n, F) raw rows -> their ScoredBlock.

        Raises NotFiniteError when the model's residual of a row is not finite: a silent NaN
        would blind every later alarm of the flight."""
        values = np.asarray(values, np.float32)  # as the frozen check was fitted
        scaled = self.pipeline.scaler.transform(values)
        res, fresh = self.residuals.feed(scaled)
        bad = fresh & ~np.isfinite(res).all(axis=1)
        if bad.any():
            raise NotFiniteError(self.rows + int(np.argmax(bad)))
        frozen = None if self.frozen is None else self.frozen.feed(values)
        forced = None if frozen is None else frozen.any(axis=1)
        a = self.alarms.feed(res, fresh, forced)
        channel = a.channel
        if forced is not None and self.pipeline.detector.has_attribution:
            # an alarm the residuals alone would not raise names the frozen channel
            by_check = a.flags & forced & ~self.pipeline.rule.threshold.apply(a.statistic)
            channel = np.where(by_check, frozen.argmax(axis=1), channel)
        self.rows += len(values)
        return ScoredBlock(np.asarray(time), a.statistic, a.flags, channel, a.contributions)


class NotFiniteError(ArithmeticError):
    """A row whose residual came out NaN or infinite; `row` counts data rows from 0. Where a
    user's file is read (score, watch, explain) it becomes that file's LogError (values too
    large for the model); in training it is the tool's failure (a diverged network)."""

    def __init__(self, row: int):
        self.row = row
        super().__init__(
            f"data row {row + 1}: the model's residual is not finite (values too large for it?)"
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
