"""`anomaly explain` draws W(t, k) of a trained model on one row of a log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from anomaly.cli import main
from anomaly.study.trial import run_trial
from tests.helpers import quick_config


@pytest.fixture(scope="module")
def lstm_ae(easy_dir, tmp_path_factory) -> Path:
    out = run_trial(quick_config(str(easy_dir), "lstm_ae"))
    return out.pipeline.save(tmp_path_factory.mktemp("model") / "pipeline")


def _log(easy_dir) -> Path:
    return sorted((easy_dir / "flights").glob("*.csv"))[0]


def test_explain_writes_the_figure_of_the_chosen_row(lstm_ae, easy_dir, tmp_path, capsys):
    out = tmp_path / "explain"
    args = ["explain", str(_log(easy_dir)), "--model", str(lstm_ae), "--at", "20"]
    args += ["--out", str(out)]
    assert main(args) == 0
    pngs = list(out.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].name.endswith("-W-20.00s.png")
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pngs[0].stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "t = 20.00 s (the row nearest 20 s)" in printed and "leans most on the row" in printed
    # the same row again (another model's figure, say) is refused rather than drawn over
    before = pngs[0].read_bytes()
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert pngs[0].read_bytes() == before
    assert main([*args, "--overwrite"]) == 0


def test_explain_defaults_to_the_first_alarm_or_the_peak(lstm_ae, easy_dir, tmp_path, capsys):
    assert (
        main(["explain", str(_log(easy_dir)), "--model", str(lstm_ae), "--out", str(tmp_path)]) == 0
    )
    printed = capsys.readouterr().out
    assert "first alarm" in printed or "the highest statistic" in printed


def test_explain_refuses_a_row_without_a_window_and_a_model_without_a_network(
    lstm_ae, easy_dir, tmp_path, capsys
):
    log = str(_log(easy_dir))
    assert main(["explain", log, "--model", str(lstm_ae), "--at", "0", "--out", str(tmp_path)]) == 2
    assert "within its first window" in capsys.readouterr().err
    (tmp_path / "taken").write_text("")
    assert main(["explain", log, "--model", str(lstm_ae), "--out", str(tmp_path / "taken")]) == 2
    assert "a file, not a folder" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp*"))  # nothing half-written left behind
    import pandas as pd

    slow = pd.read_csv(log)
    slow["time"] = slow["time"] * 2  # logged at half the model's rate
    slow.to_csv(tmp_path / "slow.csv", index=False)
    args = ["explain", str(tmp_path / "slow.csv"), "--model", str(lstm_ae), "--out", str(tmp_path)]
    assert main(args) == 2
    assert "far from the model's" in capsys.readouterr().err
    # a log shorter than a window: argmax of no row failed inside the tool before it was said
    slow.iloc[:10].assign(time=lambda f: f["time"] / 2).to_csv(tmp_path / "short.csv", index=False)
    args = ["explain", str(tmp_path / "short.csv"), "--model", str(lstm_ae), "--out", str(tmp_path)]
    assert main(args) == 2
    assert "short.csv: 10 rows, shorter than one window" in capsys.readouterr().err
    # a name that is not UTF-8 reaches the figure's title escaped (matplotlib refused it)
    odd = tmp_path / os.fsdecode(b"fl\xe9ght.csv")
    odd.write_bytes(Path(log).read_bytes())
    args = ["explain", str(odd), "--model", str(lstm_ae), "--at", "20", "--out", str(tmp_path)]
    assert main(args) == 0
    pca = run_trial(quick_config(str(easy_dir), "pca")).pipeline.save(tmp_path / "pca")
    assert main(["explain", log, "--model", str(pca), "--out", str(tmp_path)]) == 2
    assert "no network to explain" in capsys.readouterr().err


def test_a_forecasters_figure_is_the_output_that_estimated_the_scored_row(
    easy_dir, tmp_path, capsys
):
    # output t of a forecaster predicts row t + 1: the scored row's estimate is the one before
    # the last, which cannot use the scored row itself, so its strongest row lies in the past
    import re

    lstm = run_trial(quick_config(str(easy_dir), "lstm")).pipeline.save(tmp_path / "lstm")
    log = str(_log(easy_dir))
    assert main(["explain", log, "--model", str(lstm), "--at", "20", "--out", str(tmp_path)]) == 0
    lag = float(re.search(r"leans most on the row ([0-9.]+) s before", capsys.readouterr().out)[1])
    assert lag > 0


def test_explain_at_a_time_takes_the_nearest_row_and_names_the_files_line(
    lstm_ae, easy_dir, tmp_path, capsys
):
    import pandas as pd

    frame = pd.read_csv(_log(easy_dir))
    frame["time"] = frame["time"] + 1000.0  # times since the first row then carry rounding
    log = tmp_path / "late.csv"
    text = frame.to_csv(index=False).splitlines(keepends=True)
    log.write_text("".join(text[:3]) + "\n" + "".join(text[3:]))  # a blank line: file line 4
    args = ["explain", str(log), "--model", str(lstm_ae), "--out", str(tmp_path / "x")]
    assert main([*args, "--at", "3.35"]) == 0
    printed = capsys.readouterr().out
    assert "-W-3.35s.png" in printed
    assert "window ending at row 70, " in printed  # data row 69 (3.35 s at 20 Hz), one blank above


def test_explain_leaves_the_label_column_unread(lstm_ae, easy_dir, tmp_path):
    # as score does: a blank label cell refused a log whose labels explain never uses
    import pandas as pd

    frame = pd.read_csv(_log(easy_dir)).astype({"label": object})
    frame.loc[5, "label"] = None
    frame.to_csv(tmp_path / "blank_label.csv", index=False)
    args = ["explain", str(tmp_path / "blank_label.csv"), "--model", str(lstm_ae), "--at", "20"]
    assert main([*args, "--out", str(tmp_path / "fig")]) == 0


def test_explain_at_a_time_in_a_gap_takes_the_nearer_row(lstm_ae, easy_dir, tmp_path, capsys):
    # the first row at or after `--at` minus half a period: 10.4 s in a gap from 10.0 to 11.1
    # took the 11.1 s row
    import pandas as pd

    frame = pd.read_csv(_log(easy_dir))
    t = frame["time"]
    frame[(t <= 10.0 + 1e-9) | (t >= 11.1 - 1e-9)].to_csv(tmp_path / "gap.csv", index=False)
    args = ["explain", str(tmp_path / "gap.csv"), "--model", str(lstm_ae), "--at", "10.4"]
    assert main([*args, "--out", str(tmp_path / "fig")]) == 0
    assert "t = 10.00 s (the row nearest 10.4 s)" in capsys.readouterr().out
    assert main([*args[:-1], "1e6", "--out", str(tmp_path / "fig")]) == 2  # past the log's end
    assert "outside" in capsys.readouterr().err
