"""In-memory frames through the pipeline: what the MLflow model's `predict` calls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES

from anomaly.data.logs import SAMPLE_ROWS, gap_check, order_error, too_big
from anomaly.data.schema import (
    MAX_ABS_VALUE,
    TIME_CANDIDATES,
    LogError,
    LogFormat,
    TimeParser,
    find_column,
    numbers,
)
from anomaly.detect.batch import RateCheck, not_finite
from anomaly.detect.pipeline import NotFiniteError, Pipeline


def frame_values(pipeline: Pipeline, frame: pd.DataFrame, source: str = "input") -> np.ndarray:
    """The pipeline's channels, by name, as (n_rows, F) float32, under the rules the model's
    logs were read by: text in a channel is an error, a run of empty cells up to the model's
    gap limit is forward-filled (leading ones back-filled), a longer run is an error. Rows are
    numbered as in a CSV file (header = row 1)."""
    missing = [c for c in pipeline.channels if c not in frame.columns]
    if missing:
        raise LogError(source, "required channel missing", missing[0], 1)
    # a blank cell, or text pandas' CSV reader takes for missing ('NA', 'n/a', 'null', ...), is
    # an empty one, as it is in a CSV log (the set is the reader's own, so the two cannot drift)
    block = frame[pipeline.channels].apply(
        lambda c: c if pd.api.types.is_numeric_dtype(c) else c.mask(_empty_cells(c))
    )
    numeric = pd.DataFrame({c: numbers(block[c]) for c in block}, index=block.index)
    text = numeric.isna().to_numpy() & block.notna().to_numpy()
    if text.any():
        row, col = np.argwhere(text)[0]
        value = block.iloc[row, col]
        raise LogError(source, f"non-numeric value {str(value)!r}", pipeline.channels[col], row + 2)
    limit = int(pipeline.log_format.get("max_gap_rows", LogFormat.max_gap_rows))
    empty = numeric.isna().to_numpy()
    gaps = [(gap_check(empty[:, j], 0, False, 0, limit), c) for j, c in enumerate(numeric)]
    first = min(
        ((g, c) for g, c in gaps if g.why is not None), key=lambda x: x[0].row, default=None
    )
    if first is not None:  # the reader's rule and words (its rows are in them)
        raise LogError(source, first[0].why, first[1])
    if len(empty) and (dead := empty.all(axis=0)).any():  # never a value, under the limit
        raise LogError(
            source, "channel has no values (all empty)", pipeline.channels[int(np.argmax(dead))]
        )
    leading = numeric.ffill().isna()  # before a channel's first value: filled backwards
    values = numeric.ffill().mask(leading, numeric.bfill()).to_numpy(dtype=np.float64)
    big = ~(np.abs(values) <= MAX_ABS_VALUE)  # the reader's limit: what a log may hold
    if big.any():
        row, col = np.argwhere(big)[0]
        raise LogError(source, too_big(values[row, col]), pipeline.channels[col], row + 2)
    return values.astype(np.float32)


def _empty_cells(column: pd.Series) -> pd.Series:
    text = column.astype(str)
    return text.str.strip().eq("") | text.isin(STR_NA_VALUES)


def frame_time(pipeline: Pipeline, frame: pd.DataFrame, source: str = "input") -> np.ndarray | None:
    """Seconds since the first row, from the frame's time column under the checks `anomaly
    score` makes (parsed, increasing, at the model's rate); None where the frame has none, and
    its rows are then taken to come at the model's rate."""
    # named as the training logs' was, else by any name the log reader looks for
    names = [c for c in frame.columns if isinstance(c, str)]
    name = find_column(names, pipeline.log_format.get("time_col"), TIME_CANDIDATES)
    if name is None:
        return None
    col = frame[name].reset_index(drop=True)
    if col.empty:
        return np.zeros(0)
    parsed = isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col)
    if parsed or pd.api.types.is_timedelta64_dtype(col):
        # already parsed (read_csv(parse_dates=...)): its seconds, not its nanoseconds
        t = ((col - col.iloc[0]) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
        empty = np.isnan(t)
        if empty.any():
            raise LogError(source, "empty time value", name, int(np.argmax(empty)) + 2)
    else:
        t, error = TimeParser(source, name, col.head(SAMPLE_ROWS))(col)
        if error is not None:
            raise error
    problem = order_error(t)
    if problem is not None:
        i, why = problem
        raise LogError(source, why, name, i + 2)
    rate = RateCheck(pipeline, Path(source), name)
    rate.see(t)
    rate.finish()
    return t - t[0] if len(t) else t


def score_frame(pipeline: Pipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """DataFrame with the model's channels and, where it has one, its time column (other
    columns ignored) -> per row: score, is_anomaly and the channel blamed, one flight scored
    causally from its first row, refused where `anomaly score` would refuse it as a log."""
    values, time = frame_values(pipeline, frame), frame_time(pipeline, frame)
    if len(values) < pipeline.window_len:  # as `anomaly score` says: no row would be judged
        why = (
            f"{len(values)} rows, shorter than one window of the model ({pipeline.window_len} rows)"
        )
        raise LogError("input", why)
    try:
        b = pipeline.score(values, time)
    except NotFiniteError as exc:
        raise not_finite(Path("input"), exc) from None
    names = np.array(pipeline.residual_channels if pipeline.detector.has_attribution else [""])
    return pd.DataFrame(
        {"score": b.score, "is_anomaly": b.is_anomaly, "top_channel": names[b.channel]},
        index=frame.index,  # a slice of a longer frame joins back to its own rows
    )
