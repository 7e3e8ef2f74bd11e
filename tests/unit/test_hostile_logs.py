"""Hostile logs: each input that once crashed the reader or passed as wrong data, read whole and
in chunks; each ends in a Flight with the right values or one LogError naming file, column, row."""

from __future__ import annotations

import builtins
import gzip
import os

import numpy as np
import pytest

from anomaly.data.logs import LogReader, read_flight_log
from anomaly.data.schema import LogError, LogFormat


def _write(path, text: str):
    path.write_text(text)
    return path


def _seconds(n: int, step: float = 0.1) -> list[str]:
    return [f"{i * step:.4f}" for i in range(n)]


def _rows(times: list[str], values: list[str] | None = None) -> str:
    values = values or [str(i % 7) for i in range(len(times))]
    return "".join(f"{t},{v}\n" for t, v in zip(times, values))


def _err(path, fmt=LogFormat(), chunk_rows: int | None = None) -> LogError:
    """The LogError of reading `path` whole; chunked reading must give the same one."""
    with pytest.raises(LogError) as whole:
        read_flight_log(path, fmt)
    if chunk_rows is not None:
        with pytest.raises(LogError) as chunked:
            list(LogReader(path, fmt, chunk_rows))
        assert str(chunked.value) == str(whole.value)
    assert str(path) in str(whole.value)
    return whole.value


def _err_chunked(path, chunk_rows: int) -> LogError:
    with pytest.raises(LogError) as chunked:
        list(LogReader(path, LogFormat(), chunk_rows))
    return chunked.value


# -- 1. time zones ------------------------------------------------------------------------------
@pytest.mark.parametrize("zone", ["Z", "+02:00", "-0530", "+02"])
def test_zoned_iso_times_read_as_seconds(tmp_path, zone):
    times = [f"2024-05-01T10:00:{s:02d}.{ms:03d}{zone}" for s in range(3) for ms in (0, 500)]
    f = read_flight_log(_write(tmp_path / "z.csv", "time,a\n" + _rows(times)))
    np.testing.assert_allclose(f.time, np.arange(6) * 0.5)


def test_mixed_offsets_are_converted_one_by_one(tmp_path):
    # the same instants written in three zones: one second apart in UTC
    times = ["2024-05-01T10:00:00+01:00", "2024-05-01T09:00:01Z", "2024-05-01T11:00:02+02:00"]
    f = read_flight_log(_write(tmp_path / "m.csv", "time,a\n" + _rows(times)))
    np.testing.assert_allclose(f.time, [0, 1, 2])


def test_mixed_offsets_across_chunks(tmp_path):
    times = [f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}+01:00" for i in range(100)]
    times += [f"2024-05-01T09:{i // 60:02d}:{i % 60:02d}Z" for i in range(100, 250)]
    path = _write(tmp_path / "m.csv", "time,a\n" + _rows(times))
    whole = read_flight_log(path)
    chunks = list(LogReader(path, chunk_rows=30))
    np.testing.assert_allclose(whole.time, np.arange(250.0))
    np.testing.assert_array_equal(
        np.concatenate([c.time for c in chunks]) - chunks[0].time[0], whole.time
    )


def test_unparseable_time_names_its_row_whole_and_chunked(tmp_path):
    times = [f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z" for i in range(300)]
    times[250] = "2024-05-01T10:04:1OZ"  # a letter O for a zero
    e = _err(_write(tmp_path / "u.csv", "time,a\n" + _rows(times)), chunk_rows=100)
    assert e.column == "time" and e.row == 252 and "10:04:1OZ" in str(e)


@pytest.mark.parametrize(
    "first, later, needle",
    [("+01:00", "", "has no time zone"), ("", "Z", "has a time zone")],
)
def test_zoned_and_naive_mixed_names_first_offending_row(tmp_path, first, later, needle):
    times = [f"2024-05-01T10:00:{i:02d}{first}" for i in range(40)]
    times[33] = f"2024-05-01T10:00:33{later}"
    e = _err(_write(tmp_path / "x.csv", "time,a\n" + _rows(times)), chunk_rows=10)
    assert e.column == "time" and e.row == 35 and needle in str(e)


# -- 3. read errors -----------------------------------------------------------------------------
def test_gz_that_is_not_gzip(tmp_path):
    e = _err(_write(tmp_path / "p.csv.gz", "time,a\n0,1\n"))
    assert "cannot read" in str(e)


def test_gzip_cut_inside_its_first_line(tmp_path):
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(b"time,a\n0,1\n1,2\n")[:15])
    assert "cannot read" in str(_err(path))


def test_gzip_with_corrupt_data(tmp_path):
    data = bytearray(gzip.compress(("time,a\n" + _rows(_seconds(2000))).encode()))
    data[len(data) // 2 : len(data) // 2 + 8] = b"\xff" * 8
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(bytes(data))
    assert "cannot read" in str(_err(path, chunk_rows=100))


def test_unreadable_file(tmp_path, monkeypatch):
    path = _write(tmp_path / "locked.csv", "time,a\n0,1\n1,2\n")
    if os.geteuid() == 0:  # root reads through permissions: make opening it fail instead
        real_open = builtins.open

        def refuse(file, *args, **kw):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kw)

        monkeypatch.setattr(builtins, "open", refuse)
    else:
        path.chmod(0)
    try:
        assert "Permission denied" in str(_err(path))
    finally:
        monkeypatch.undo()
        path.chmod(0o644)


def test_a_folder_named_like_a_log(tmp_path):
    (tmp_path / "x.csv").mkdir()
    assert "not a file" in str(_err(tmp_path / "x.csv"))


# -- 4. extreme values --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, needle",
    [
        ("1e300", "value 1e+300 is outside the float32 range"),
        ("-3.5e38", "outside the float32 range"),
        ("1e38", "limit on channel values"),
        ("2e18", "limit on channel values"),
        ("-inf", "infinite value"),
    ],
)
def test_extreme_values_are_refused_by_row(tmp_path, value, needle):
    values = ["1.5"] * 300
    values[220] = value
    path = _write(tmp_path / "x.csv", "time,a\n" + _rows(_seconds(300), values))
    e = _err(path, chunk_rows=100)
    assert e.column == "a" and e.row == 222 and needle in str(e)


def test_large_but_sane_values_and_subnormals_pass(tmp_path):
    values = ["1e18", "-1e18", "1e-40", "-0.0", "3"]
    f = read_flight_log(_write(tmp_path / "ok.csv", "time,a\n" + _rows(_seconds(5), values)))
    assert np.all(np.isfinite(f.values)) and f.values.dtype == np.float32


# -- 5. repeated columns and two clocks ---------------------------------------------------------
@pytest.mark.parametrize(
    "header, column", [("time,time,a", "time"), ("time,a,b,a", "a"), ("time, a ,a", "a")]
)
def test_duplicate_header_is_refused(tmp_path, header, column):
    n = header.count(",")
    path = _write(
        tmp_path / "d.csv", header + "\n" + "".join(f"{i}" + ",1" * n + "\n" for i in range(5))
    )
    e = _err(path, chunk_rows=2)
    assert e.column == column and e.row == 1 and "duplicate" in str(e)


def test_repeated_column_not_read_is_harmless(tmp_path):
    text = "time,a,b,b\n" + "".join(f"{i},{i % 3},1,1\n" for i in range(5))
    f = read_flight_log(_write(tmp_path / "r.csv", text), LogFormat(channels=("a",)))
    assert f.channels == ["a"]


def test_second_time_column_is_never_a_channel(tmp_path):
    text = "timestamp,time,a\n" + "".join(f"{100 + i},{i * 0.5},{i % 3}\n" for i in range(5))
    f = read_flight_log(_write(tmp_path / "t.csv", text))
    assert f.channels == ["a"] and f.time[1] == 0.5  # `time` is the first candidate


def test_second_label_column_is_never_a_channel(tmp_path):
    text = "time,a,label,anomaly\n" + "".join(f"{i},{i % 3},0,0\n" for i in range(5))
    f = read_flight_log(_write(tmp_path / "l.csv", text))
    assert f.channels == ["a"] and f.labels is not None


# -- 6. stray text in the time column -----------------------------------------------------------
@pytest.mark.parametrize("chunk_rows", [None, 100])
@pytest.mark.parametrize("row", [502, 1002])  # inside and beyond the rows that fix the kind
def test_stray_text_in_numeric_time_is_reported_where_it_is(tmp_path, chunk_rows, row):
    times = _seconds(2000)
    times[row - 2] = "12:00"
    path = _write(tmp_path / "s.csv", "time,a\n" + _rows(times))
    e = _err(path, chunk_rows=chunk_rows)
    assert e.column == "time" and e.row == row and "'12:00'" in str(e)


def test_numbers_in_an_iso_time_column_are_reported(tmp_path):
    times = [f"2024-05-01 10:00:{i:02d}" for i in range(30)]
    times[20] = "5"
    e = _err(_write(tmp_path / "n.csv", "time,a\n" + _rows(times)), chunk_rows=7)
    assert e.row == 22 and "'5'" in str(e)


def test_infinite_time_is_refused(tmp_path):
    times = _seconds(10)
    times[4] = "inf"
    e = _err(_write(tmp_path / "i.csv", "time,a\n" + _rows(times)))
    assert e.row == 6 and "not finite" in str(e)


# -- 9. padded headers, trailing delimiters, extra fields ---------------------------------------
def test_padded_header_names_are_stripped(tmp_path):
    text = " time , alt ,  label \n" + "".join(f"{i},{i % 4},0\n" for i in range(5))
    path = _write(tmp_path / "p.csv", text)
    f = read_flight_log(path)
    assert f.channels == ["alt"] and f.labels is not None
    assert read_flight_log(path, required_channels=["alt"]).channels == ["alt"]


@pytest.mark.parametrize("chunk_rows", [None, 3])
def test_trailing_delimiter_on_every_line_is_dropped(tmp_path, chunk_rows):
    text = "time,a,\n" + "".join(f"{i},{i % 4},\n" for i in range(10))
    path = _write(tmp_path / "t.csv", text)
    chunks = list(LogReader(path, chunk_rows=chunk_rows))
    assert np.concatenate([c.values for c in chunks]).shape == (10, 1)


def test_named_empty_channel_is_still_refused(tmp_path):
    e = _err(_write(tmp_path / "e.csv", "time,a,b\n" + "".join(f"{i},1,\n" for i in range(5))))
    assert e.column == "b" and "no values" in str(e)


def test_value_under_a_dropped_unnamed_column_is_refused(tmp_path):
    lines = [f"{i},{i % 4}," for i in range(10)]
    lines[8] += "7"
    e = _err(_write(tmp_path / "u.csv", "time,a,\n" + "\n".join(lines) + "\n"), chunk_rows=3)
    assert e.row == 10 and "no name" in str(e)


def test_data_rows_longer_than_the_header_are_refused(tmp_path):
    # pandas would take `time` as an index and shift every name by one column
    text = "time,a\n" + "".join(f"{i},{i % 4},\n" for i in range(5))
    e = _err(_write(tmp_path / "x.csv", text))
    assert e.row == 2 and "3 fields where the header has 2" in str(e)


def test_one_long_row_later_names_its_line(tmp_path):
    lines = [f"{i},{i % 4}" for i in range(300)]
    lines[250] += ",9"
    e = _err(_write(tmp_path / "l.csv", "time,a\n" + "\n".join(lines) + "\n"), chunk_rows=100)
    assert e.row == 252


# -- encodings ----------------------------------------------------------------------------------
def test_bom_crlf_and_latin1_text_cells(tmp_path):
    body = "time;alt;mode\r\n" + "".join(f"{i};{i % 3};caf\xe9\r\n" for i in range(5))
    path = tmp_path / "l.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("latin-1"))
    f = read_flight_log(path)
    assert f.channels == ["alt"] and f.n_rows == 5


def test_pandas_index_column_is_refused_unless_channels_are_named(tmp_path):
    text = ",time,alt\n" + "".join(f"{i},{i * 0.1:.1f},{i % 4}\n" for i in range(5))
    path = _write(tmp_path / "ix.csv", text)
    e = _err(path, chunk_rows=2)
    assert e.column == "Unnamed: 0" and e.row == 2 and "no name" in str(e)
    assert read_flight_log(path, LogFormat(channels=("alt",))).channels == ["alt"]


# -- found by the generated test ----------------------------------------------------------------
def test_time_only_or_non_iso_cells_in_an_iso_column_are_refused(tmp_path):
    # pandas' "mixed" format read '12:00' as today at noon: after 2024, so "sorted"
    times = [f"2024-05-01 10:00:{i:02d}" for i in range(5)] + ["12:00"]
    e = _err(_write(tmp_path / "t.csv", "time,a\n" + _rows(times)))
    assert e.row == 7 and "cannot parse time value '12:00'" in str(e)


def test_text_in_a_zoned_column_is_unparseable_not_zoneless(tmp_path):
    times = [f"2024-05-01T10:00:{i:02d}Z" for i in range(5)]
    times[3] = "--"
    e = _err(_write(tmp_path / "z.csv", "time,a\n" + _rows(times)))
    assert e.row == 5 and "cannot parse time value '--'" in str(e)


def test_the_first_problem_in_the_file_is_reported_however_it_is_chunked(tmp_path):
    times = _seconds(60)
    times[40] = times[39]  # duplicate time at row 42
    values = ["1.0"] * 60
    values[20] = "oops"  # text at row 22, in the same chunk of 50 but earlier
    path = _write(tmp_path / "f.csv", "time,a\n" + _rows(times, values))
    for chunk_rows in (None, 1, 7, 50):
        with pytest.raises(LogError) as info:
            list(LogReader(path, chunk_rows=chunk_rows))
        assert info.value.row == 22 and "oops" in str(info.value)


def test_channels_are_chosen_alike_whatever_the_chunk_size(tmp_path):
    # the first row's cell is text: in a one-row first chunk the column once looked like text
    values = ["oops"] + ["1.0"] * 9
    path = _write(
        tmp_path / "c.csv", "time,a,b\n" + "".join(f"{i},{v},1\n" for i, v in enumerate(values))
    )
    for chunk_rows in (None, 1, 3):
        with pytest.raises(LogError) as info:
            list(LogReader(path, chunk_rows=chunk_rows))
        assert info.value.column == "a" and info.value.row == 2


# -- booleans -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cell, value", [("True", 1.0), ("false", 0.0), ("TRUE", 1.0), ("tRuE", 1.0)]
)
@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_a_boolean_cell_has_one_value_however_small_the_chunk(tmp_path, cell, value, chunk_rows):
    # pandas reads a chunk holding only True as a boolean, the same cell beside numbers as
    # text: once 1.0 in chunks of one row (and in `anomaly watch`, line by line), an error whole
    values = [str(i % 7) for i in range(50)]
    values[29] = cell
    path = _write(tmp_path / "b.csv", "time,a\n" + _rows(_seconds(50), values))
    whole = read_flight_log(path).values[:, 0]
    chunked = np.concatenate([c.values[:, 0] for c in LogReader(path, LogFormat(), chunk_rows)])
    assert whole[29] == chunked[29] == value
    np.testing.assert_array_equal(whole, chunked)
    # a column of booleans alone is a channel of 0 and 1, as it always was
    flags = _write(tmp_path / "f.csv", "time,armed\n" + _rows(_seconds(4), ["True", "False"] * 2))
    np.testing.assert_array_equal(read_flight_log(flags).values[:, 0], [1, 0, 1, 0])
    # and a label: True is 1 however it is read
    labels = ["0"] * 50
    labels[29] = cell
    text = "time,a,label\n" + "".join(
        f"{t},{i % 7},{v}\n" for i, (t, v) in enumerate(zip(_seconds(50), labels))
    )
    path = _write(tmp_path / "l.csv", text)
    whole = read_flight_log(path).labels
    chunked = np.concatenate([c.labels for c in LogReader(path, LogFormat(), chunk_rows)])
    assert whole[29] == chunked[29] == value and whole.sum() == value
