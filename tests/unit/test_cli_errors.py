"""The error policy: user mistakes exit 2 in one line, failures inside the tool exit 1 with the
traceback kept in a file the message names."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly.cli import main, validate


def test_a_users_mistake_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "none"), "--model", "pca"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert err.endswith("none: file not found")


def test_a_failure_inside_the_tool_exits_1_with_its_traceback_in_a_file(
    log_path, capsys, monkeypatch
):
    def broken(*args, **kwargs):
        raise ValueError("an internal bug, not the user's")

    monkeypatch.setattr("anomaly.data.logs.read_flight_log", broken)
    assert main(["validate", str(log_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "internal failure" in err and "an internal bug" in err and "Traceback" not in err
    path = Path(err.rsplit("traceback in ", 1)[1])
    text = path.read_text()
    assert "Traceback" in text and "broken" in text and "an internal bug" in text


def test_a_traceback_the_users_folder_cannot_keep_goes_to_the_temporary_one(
    log_path, tmp_path, capsys, monkeypatch
):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ANOMALY_CACHE", str(blocker))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(validate, "run", lambda args: 1 / 0)
    monkeypatch.setattr("sys.argv", ["anomaly", "validate", "caf\udce9.csv"])  # not UTF-8
    assert main(["validate", str(log_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    path = Path(err.rsplit("traceback in ", 1)[1])
    assert path.parent == tmp_path and "ZeroDivisionError" in path.read_text()
    assert "caf\\udce9.csv" in path.read_text()


def test_debug_prints_the_traceback(log_path, capsys, monkeypatch):
    monkeypatch.setattr(validate, "run", lambda args: 1 / 0)
    assert main(["--debug", "validate", str(log_path)]) == 1
    assert "ZeroDivisionError" in capsys.readouterr().err


@pytest.mark.parametrize("rule", ["bogus:1", "quantile:1.5"])
def test_a_bad_threshold_rule_is_a_users_mistake(easy_dir, rule, capsys):
    args = ["train", "--data", str(easy_dir), "--model", "pca", "--threshold", rule]
    assert main(args) == 2
    assert "threshold rule" in capsys.readouterr().err
