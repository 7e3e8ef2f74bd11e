"""The MLflow model's in-memory input follows the rules the model's logs were read by."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from anomaly.data.logs import read_flight_log
from anomaly.data.schema import LogError, LogFormat
from anomaly.detect.scoring import frame_values

PIPE = SimpleNamespace(channels=["a", "b"], log_format={"max_gap_rows": 2})


def test_booleans_are_one_and_zero_as_in_a_log():
    frame = pd.DataFrame({"a": [True, False, True], "b": [1.0, True, "false"]})
    np.testing.assert_array_equal(frame_values(PIPE, frame), [[1, 1], [0, 1], [1, 0]])


def test_short_gaps_filled_within_the_models_limit():
    frame = pd.DataFrame({"b": [1.0, None, None, 4.0], "a": [None, 2.0, 3.0, 4.0], "x": "t"})
    values = frame_values(PIPE, frame)
    np.testing.assert_array_equal(values, [[2, 1], [2, 1], [3, 1], [4, 4]])


@pytest.mark.parametrize(
    "column, needle",
    [
        ([1.0, None, None, None, 5.0], "gap of more than 2 empty rows (rows 3-5)"),
        ([1.0, "oops", 3.0, 4.0, 5.0], "row 3: non-numeric value 'oops'"),
        ([None] * 5, "no value in its first 3 rows (rows 2-4), more than the 2-row"),
        ([None, None], "channel has no values (all empty)"),
    ],
)
def test_bad_cells_are_named_as_the_log_reader_names_them(column, needle, tmp_path):
    frame = pd.DataFrame({"a": [1.0] * len(column), "b": column})
    with pytest.raises(LogError) as info:
        frame_values(PIPE, frame)
    assert str(info.value).startswith("input, column 'b'") and needle in str(info.value)
    log = tmp_path / "log.csv"  # the same cells in a log: the same words, on the same row
    frame.assign(time=np.arange(len(column)) / 20).to_csv(log, index=False)
    with pytest.raises(LogError) as read:
        read_flight_log(log, LogFormat(max_gap_rows=2))
    assert str(read.value).removeprefix(str(log)) == str(info.value).removeprefix("input")


@pytest.mark.parametrize("missing", ["NA", "n/a", "null", "#N/A", "nan", "NULL", "<NA>"])
def test_text_the_log_reader_takes_for_missing_is_an_empty_cell_here_too(missing, tmp_path):
    frame = pd.DataFrame({"time": [0.0, 0.1, 0.2], "a": ["1", "2", "3"], "b": ["1", missing, "3"]})
    log = tmp_path / "log.csv"
    frame.to_csv(log, index=False)
    read = read_flight_log(log, LogFormat(max_gap_rows=2)).values
    np.testing.assert_array_equal(read, [[1, 1], [2, 1], [3, 3]])
    np.testing.assert_array_equal(frame_values(PIPE, frame[["a", "b"]]), read)


def test_blank_strings_are_empty_cells_and_the_readers_value_limit_holds():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["1", " ", "3"]})
    np.testing.assert_array_equal(frame_values(PIPE, frame)[:, 1], [1, 1, 3])
    big = pd.DataFrame({"a": [1.0, 2e18, 3.0], "b": [1.0, 2.0, 3.0]})
    with pytest.raises(LogError, match="row 3: value 2e\\+18 is larger than 1e\\+18"):
        frame_values(PIPE, big)


def test_an_empty_frame_is_no_channel_error():
    # no rows at all: the caller says it is shorter than a window, not that a channel is empty
    assert frame_values(PIPE, pd.DataFrame({"a": [], "b": []})).shape == (0, 2)
