"""One scoring path for in-memory frames: what the pyfunc model's predict and tests call."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anomaly.data.schema import LogError
from anomaly.detect.pipeline import Pipeline


def frame_values(pipeline: Pipeline, frame: pd.DataFrame, source: str = "input") -> np.ndarray:
    """The pipeline's channels, by name, as (n_rows, F) float32; short gaps filled as when reading logs."""
    missing = [c for c in pipeline.channels if c not in frame.columns]
    if missing:
        raise LogError(source, "required channel missing", missing[0], 1)
    block = frame[pipeline.channels].apply(pd.to_numeric, errors="coerce")
    values = block.ffill().bfill().to_numpy(dtype=np.float32)
    if np.isnan(values).any():
        col = pipeline.channels[int(np.argmax(np.isnan(values).any(axis=0)))]
        raise LogError(source, "channel has no numeric values", col)
    return values


def score_frame(pipeline: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """DataFrame with the model's channels (other columns ignored) -> score, is_anomaly per row."""
    rows = pipeline.score_rows(frame_values(pipeline, frame))
    return pd.DataFrame(
        {"score": rows.score.astype(np.float64), "is_anomaly": pipeline.flag(rows.score)}
    )
