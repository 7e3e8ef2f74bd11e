"""In-memory frames through the pipeline: what the MLflow model's `predict` calls."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomaly.data.schema import LogError
from anomaly.detect.pipeline import Pipeline


def frame_values(pipeline: Pipeline, frame: pd.DataFrame, source: str = "input") -> np.ndarray:
    """The pipeline's channels, by name, as (n_rows, F) float32; short gaps filled as when reading
    logs."""
    missing = [c for c in pipeline.channels if c not in frame.columns]
    if missing:
        raise LogError(source, "required channel missing", missing[0], 1)
    block = frame[pipeline.channels].apply(pd.to_numeric, errors="coerce")
    values = block.ffill().bfill().to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        col = pipeline.channels[int(np.argmax(np.isnan(values).any(axis=0)))]
        raise LogError(source, "channel has no numeric values", col)
    big = ~(np.abs(values) <= np.finfo(np.float32).max)
    if big.any():
        row, col = np.argwhere(big)[0]
        raise LogError(source, "value outside the float32 range", pipeline.channels[col], row + 2)
    return values.astype(np.float32)


def score_frame(pipeline: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """DataFrame with the model's channels (other columns ignored) -> per row: score, is_anomaly
    and the channel blamed, one flight scored causally from its first row."""
    b = pipeline.score(frame_values(pipeline, frame))
    names = np.array(pipeline.residual_channels if pipeline.detector.has_attribution else [""])
    return pd.DataFrame(
        {"score": b.score, "is_anomaly": b.is_anomaly, "top_channel": names[b.channel]}
    )
