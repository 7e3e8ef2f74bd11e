"""Each validation error, from files the tests write; the NaN policy; inputs never modified."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
from anomaly.data.logs import LogReader, expand_inputs, read_flight_log
from anomaly.data.schema import LogError, LogFormat
from tests.helpers import write_log


def _write(path, text):
    path.write_text(text)
    return path


def _err(path, fmt=LogFormat(), **kw) -> LogError:
    with pytest.raises(LogError) as info:
        read_flight_log(path, fmt, **kw)
    return info.value


def test_good_log_reads(log_path):
    f = read_flight_log(log_path)
    assert f.values.shape == (200, 3) and f.channels == ["ch0", "ch1", "ch2"]
    assert f.sample_rate_hz == pytest.approx(20.0)
    assert f.labels is None


def test_missing_file(tmp_path):
    e = _err(tmp_path / "nope.csv")
    assert "file not found" in str(e) and "nope.csv" in str(e)


def test_empty_file(tmp_path):
    assert "empty" in str(_err(_write(tmp_path / "e.csv", "")))


def test_header_only(tmp_path):
    assert "header only" in str(_err(_write(tmp_path / "h.csv", "time,a,b\n")))


def test_no_numeric_channel(tmp_path):
    e = _err(_write(tmp_path / "t.csv", "time,mode\n0,cruise\n1,cruise\n"))
    assert "no numeric channel" in str(e)


def test_non_numeric_cell_names_column_and_row(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5}" for i in range(20))
    e = _err(_write(tmp_path / "n.csv", "time,alt\n" + rows + "\n20,oops\n"))
    assert e.column == "alt" and e.row == 22 and "oops" in str(e)


def test_required_channel_missing(log_path):
    e = _err(log_path, required_channels=["ch0", "airspeed"])
    assert e.column == "airspeed" and "missing" in str(e)


def test_unsorted_time(tmp_path):
    e = _err(_write(tmp_path / "u.csv", "time,a\n0,1\n1,2\n0.5,3\n"))
    assert e.row == 4 and e.column == "time" and "not sorted" in str(e)


def test_duplicate_time(tmp_path):
    e = _err(_write(tmp_path / "d.csv", "time,a\n0,1\n1,2\n1,3\n"))
    assert e.row == 4 and "duplicate" in str(e)


def test_infinite_value(tmp_path):
    e = _err(_write(tmp_path / "i.csv", "time,a,b\n0,1,2\n1,inf,3\n"))
    assert e.column == "a" and e.row == 3 and "infinite" in str(e)


def test_all_nan_channel(tmp_path):
    e = _err(_write(tmp_path / "a.csv", "time,a,b\n0,1,\n1,2,\n2,3,\n"))
    assert e.column == "b" and "no values" in str(e)


def test_long_gap_is_an_error_naming_rows(tmp_path):
    vals = ["1"] * 5 + [""] * 4 + ["2"] * 5
    text = "time,a\n" + "\n".join(f"{i},{v}" for i, v in enumerate(vals)) + "\n"
    e = _err(_write(tmp_path / "g.csv", text), LogFormat(max_gap_rows=3))
    assert e.column == "a" and "rows 7-10" in str(e)


def test_channel_silent_from_the_start_fails_at_the_gap_limit_of_a_growing_log(tmp_path):
    # a watched log is never finished: a sensor dead from power-on must be refused once its
    # empty run passes the limit, not when a value (or the end of the file) finally comes
    path = _write(tmp_path / "w.csv", "time,a,b\n" + "".join(f"{i},1,\n" for i in range(5)))

    def growing(file):
        for k in range(100):
            yield file.parse("".join(f"{5 * k + i},1,\n" for i in range(5)))
        raise AssertionError("read 500 rows past a channel that never reported")

    with pytest.raises(LogError) as info:
        list(LogReader(path, LogFormat(max_gap_rows=10), frames=growing))
    e = info.value
    assert e.column == "b" and "first 11 rows (rows 2-12)" in str(e)


def test_short_gaps_forward_filled_leading_back_filled(tmp_path):
    text = "time,a\n0,\n1,\n2,5\n3,\n4,7\n"
    f = read_flight_log(_write(tmp_path / "f.csv", text), LogFormat(max_gap_rows=3))
    np.testing.assert_allclose(f.values[:, 0], [5, 5, 5, 5, 7])
    assert f.longest_gap_rows == 2


def test_iso_time_semicolon_and_gzip(tmp_path):
    t = pd.date_range("2024-01-01 10:00:00", periods=50, freq="100ms")
    frame = pd.DataFrame(
        {"timestamp": t.strftime("%Y-%m-%d %H:%M:%S.%f"), "x": np.arange(50.0), "label": 0}
    )
    path = tmp_path / "iso.csv.gz"
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh, index=False, sep=";")
    f = read_flight_log(path)
    assert f.sample_rate_hz == pytest.approx(10.0) and f.channels == ["x"]
    assert f.labels is not None and f.labels.sum() == 0


def test_tab_separated_and_label_onset_to_end(tmp_path):
    text = (
        "time\tx\tstatus\n" + "\n".join(f"{i}\t{i}\t{1 if i == 3 else 0}" for i in range(6)) + "\n"
    )
    f = read_flight_log(
        _write(tmp_path / "tab.csv", text), LogFormat(label_col="status", label_onset_to_end=True)
    )
    assert f.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_streaming_equals_whole(tmp_path):
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(1000, 2))
    vals[rng.random((1000, 2)) < 0.02] = np.nan
    vals[:3, 0] = np.nan
    frame = pd.DataFrame(vals, columns=["a", "b"])
    frame.insert(0, "time", np.arange(1000) / 10)
    path = tmp_path / "s.csv"
    frame.to_csv(path, index=False)
    whole = read_flight_log(path)
    chunks = list(LogReader(path, chunk_rows=97))
    np.testing.assert_array_equal(np.concatenate([c.values for c in chunks]), whole.values)


def test_inputs_never_modified(tmp_path):
    path = _write(tmp_path / "bad.csv", "time,a\n0,1\n0,2\n")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(LogError):
        read_flight_log(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_expand_inputs_files_folders_globs(tmp_path):
    for k in range(3):
        write_log(tmp_path / f"f{k}.csv", n=30)
    (tmp_path / "notes.txt").write_text("x")
    assert len(expand_inputs([str(tmp_path)])) == 3
    assert len(expand_inputs([str(tmp_path / "f*.csv")])) == 2 + 1
    assert len(expand_inputs([str(tmp_path / "f0.csv"), str(tmp_path / "f0.csv")])) == 1


def test_a_plain_folders_manifest_and_split_are_not_logs(tmp_path):
    # a user's folder of logs may hold the tables of a dataset folder beside them
    for k in range(3):
        write_log(tmp_path / f"f{k}.csv", n=30)
    (tmp_path / "manifest.csv").write_text("file,fault_type\nf0.csv,none\n")
    (tmp_path / "split.csv").write_text("file,split\nf0.csv,train\n")
    logs = [f"f{k}.csv" for k in range(3)]
    assert [p.name for p in expand_inputs([str(tmp_path)])] == logs
    assert [p.name for p in expand_inputs([str(tmp_path / "*.csv")])] == logs
    assert [p.name for p in expand_inputs([str(tmp_path / "split.csv")])] == ["split.csv"]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty"),
        ("time,a\n", "header only"),
        ("time,a\n0,1\n0,2\n", "row 3"),
        ("time,a\n0,1\n1,x\n", "column 'a', row 3"),
        # read on, pandas took line 2 for the header and named every bad row one too early
        ("\ntime,a\n0,1\n1,x\n", "row 1: the first line is blank"),
    ],
)
def test_validate_cli_one_line_exit_2(tmp_path, capsys, text, needle):
    path = _write(tmp_path / "bad.csv", text)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("INVALID") and needle in out[0] and str(path) in out[0]


def test_validate_cli_reports_good_file(log_path, capsys):
    assert main(["validate", str(log_path)]) == 0
    out = capsys.readouterr().out
    assert "200 rows" in out and "20.0 Hz" in out and "3 channels" in out


def test_a_pattern_that_matches_no_log_is_reported_not_dropped(tmp_path, capsys):
    # it vanished from the inputs: validating it beside a good log said "1 valid", exit 0
    good = write_log(tmp_path / "good.csv")
    assert main(["validate", "--sep", ",", str(tmp_path / "missing*.csv"), str(good)]) == 2
    out = capsys.readouterr().out
    assert "missing*.csv: file not found" in out and "1 valid, 1 invalid" in out


@pytest.mark.parametrize("block", [64, 1 << 20])
def test_watched_log_refuses_an_extra_field_on_the_row_score_names(tmp_path, monkeypatch, block):
    from anomaly.data.csvfile import CsvFile
    from anomaly.detect import watch

    monkeypatch.setattr(watch, "BLOCK", block)  # a log read as it grows, a few lines at a time
    lines = [f"{i},{i % 7},2" for i in range(100)]
    lines[50] += ",9"  # file row 52 (the header is row 1)
    lines[30] = ""  # a blank line: skipped, but still a row of the file
    path = _write(tmp_path / "x.csv", "time,a,b\n" + "\n".join(lines) + "\n")
    with pytest.raises(LogError) as scored:
        read_flight_log(path)
    with pytest.raises(LogError) as watched:
        list(watch.follow(CsvFile(path), once=True, poll_s=0.0, stop=lambda: True))
    assert scored.value.row == watched.value.row == 52
    assert "4 fields where the header has 3" in str(watched.value)


def test_watched_log_rows_keep_their_values_across_blocks(tmp_path, monkeypatch):
    from anomaly.data.csvfile import CsvFile
    from anomaly.detect import watch

    monkeypatch.setattr(watch, "BLOCK", 50)
    text = "time,a,b\n" + "".join(f"{i},{i % 7},{i}\n" for i in range(60)) + "60,1"  # cut short
    path = _write(tmp_path / "y.csv", text)
    frames = list(watch.follow(CsvFile(path), once=True, poll_s=0.0, stop=lambda: True))
    rows = pd.concat(frames, ignore_index=True)
    assert list(rows.columns) == ["time", "a", "b"] and len(rows) == 61
    assert rows["b"].iloc[:60].tolist() == list(range(60)) and np.isnan(rows["b"].iloc[60])


def test_watch_refuses_a_compressed_log(tmp_path):
    from anomaly.detect.watch import wait_for_header

    path = tmp_path / "z.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("time,a\n0,1\n")
    with pytest.raises(LogError, match="compressed"):
        wait_for_header(path, once=True, poll_s=0.0, stop=lambda: True)


@pytest.mark.parametrize(
    "channels, label_col, why",
    [
        (["a", "time"], None, "time or label"),
        (["a", "l"], "l", "time or label"),
        (["a", "a"], None, "twice"),
    ],
)
def test_chosen_channels_exclude_time_label_and_repeats(tmp_path, channels, label_col, why):
    path = _write(tmp_path / "c.csv", "time,a,l\n0,1,0\n1,2,0\n")
    e = _err(path, LogFormat(channels=tuple(channels), label_col=label_col))
    assert e.column == channels[1] and why in str(e)


def test_delimiter_inside_a_quoted_name_does_not_decide_the_separator(tmp_path):
    text = 'time;"speed, m/s";"alt, m"\n0;1.5;100\n1;2.5;101\n'
    f = read_flight_log(_write(tmp_path / "q.csv", text))
    assert f.channels == ["speed, m/s", "alt, m"]


def test_a_separator_the_log_does_not_use_is_named(tmp_path):
    # a model trained on comma logs scoring a semicolon log: say so, not "time column not found"
    e = _err(_write(tmp_path / "s.csv", "time;a\n0;1\n1;2\n"), LogFormat(sep=","))
    assert e.row == 1 and "';'-separated" in str(e)


def test_utf16_log_is_named_as_such(tmp_path):
    path = tmp_path / "u.csv"
    path.write_bytes("time,a\n0,1\n1,2\n".encode("utf-16"))
    assert "UTF-16" in str(_err(path))


def test_a_separator_of_two_characters_is_a_usage_error():
    from anomaly.errors import UserError

    with pytest.raises(UserError, match="one character"):
        LogFormat.from_options(sep=";;")


def test_a_folder_of_upper_case_names_is_read(tmp_path):
    for name in ("FLIGHT1.CSV", "FLIGHT2.CSV.GZ"):
        opener = gzip.open if name.endswith(".GZ") else open
        with opener(tmp_path / name, "wt") as fh:
            fh.write("time,a\n0,1\n1,2\n2,3\n")
    paths = expand_inputs([str(tmp_path)])
    assert [p.name for p in paths] == ["FLIGHT1.CSV", "FLIGHT2.CSV.GZ"]
    assert [read_flight_log(p).flight_id for p in paths] == ["FLIGHT1", "FLIGHT2"]


@pytest.mark.parametrize("chunk_rows", [None, 4])
def test_rows_are_the_files_rows_with_blank_lines_above(tmp_path, chunk_rows):
    lines = [f"{i},{i % 3}" for i in range(30)]
    lines[5] = ""  # blank lines: pandas skips them, a spreadsheet counts them
    lines[9] = "   "
    lines[20] = "20,oops"  # file row 22 (the header is row 1)
    path = _write(tmp_path / "b.csv", "time,a\n" + "\n".join(lines) + "\n")
    with pytest.raises(LogError) as info:
        list(LogReader(path, chunk_rows=chunk_rows))
    e = info.value
    assert e.row == 22 and "oops" in str(e)
    gap = ["1", "", "", "", "", "2"]  # a gap of 4 empty cells, file rows 5-8 after the blank
    text = "time,a\n0,1\n\n" + "".join(f"{i + 1},{v}\n" for i, v in enumerate(gap))
    e = _err(_write(tmp_path / "g.csv", text), LogFormat(max_gap_rows=3))
    assert "rows 5-8" in str(e)


def test_a_named_folder_without_logs_is_reported_not_dropped(tmp_path, log_path):
    empty = tmp_path / "day2"
    empty.mkdir()
    paths = expand_inputs([str(empty), str(log_path)])
    assert paths == [empty, log_path]
    assert "a folder with no .csv" in str(_err(empty))


def test_a_dataset_folder_says_which_logs_beside_flights_it_leaves(tmp_path, caplog):
    # a folder holding flights/ reads it alone: logs beside it vanished without a word
    from anomaly.data.logs import expand_inputs

    (tmp_path / "flights").mkdir()
    write_log(tmp_path / "flights" / "f0.csv")
    write_log(tmp_path / "f1.csv")
    (tmp_path / "manifest.csv").write_text("file,fault_type\nf0.csv,none\n")
    assert expand_inputs([str(tmp_path)]) == [tmp_path / "flights" / "f0.csv"]
    assert "1 log(s) beside it are not read (f1.csv)" in caplog.text
