"""Generator determinism, fault onsets and labels, and that its output validates."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
from anomaly.data.logs import read_flight_log
from anomaly.data.synthetic import (
    CHANNELS,
    FAULT_TYPES,
    SynthConfig,
    _inject_sensor_faults,
    generate_flights,
    write_dataset,
)


def _digest(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.csv"))
    }


def test_same_seed_gives_byte_identical_files(tmp_path):
    cfg = SynthConfig(n_flights=4, seed=7, min_duration_s=30, max_duration_s=40)
    write_dataset(tmp_path / "a", cfg)
    write_dataset(tmp_path / "b", cfg)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    write_dataset(
        tmp_path / "c", SynthConfig(n_flights=4, seed=8, min_duration_s=30, max_duration_s=40)
    )
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_labels_start_at_onset_and_match_manifest(synth_dir):
    man = pd.read_csv(synth_dir / "manifest.csv")
    assert set(man.columns) >= {"file", "fault_type", "onset_s", "end_s", "rows"}
    for row in man.itertuples():
        f = read_flight_log(synth_dir / "flights" / row.file)
        assert f.n_rows == row.rows
        if row.fault_type == "none":
            assert f.labels.sum() == 0
            continue
        onset = f.onset_index
        assert abs(f.time[onset] - row.onset_s) < 0.06
        last = len(f.labels) - 1 - int(np.argmax(f.labels[::-1] > 0))
        assert abs(f.time[last] - row.end_s) < 0.06


def test_flight_shape_rate_and_channels():
    frames, man = generate_flights(
        SynthConfig(n_flights=3, seed=1, rate_hz=10, min_duration_s=60, max_duration_s=60)
    )
    for frame in frames:
        assert list(frame.columns) == ["time", *CHANNELS, "label"]
        assert np.allclose(np.diff(frame["time"]), 0.1)
        assert 590 <= len(frame) <= 610
        assert np.isfinite(frame[CHANNELS].to_numpy()).all()


def test_every_fault_type_is_generated_and_shares_hold():
    _, man = generate_flights(
        SynthConfig(n_flights=80, seed=0, min_duration_s=20, max_duration_s=25)
    )
    assert set(man["fault_type"]) == set(FAULT_TYPES) | {"none"}
    assert 0.1 < (man["fault_type"] == "none").mean() < 0.45


def test_engine_fault_changes_the_dynamics():
    frames, man = generate_flights(
        SynthConfig(
            n_flights=40,
            seed=2,
            fault_types=("engine",),
            fault_free_share=0.0,
            min_duration_s=60,
            max_duration_s=80,
        )
    )
    frame, row = frames[0], man.iloc[0]
    before = frame[frame["time"] < row.onset_s]
    after = frame[frame["time"] > row.onset_s + 5]
    # thrust is gone: the autopilot pushes the throttle up while airspeed or altitude falls
    assert after["throttle"].mean() > before["throttle"].mean()


def test_temporal_order_fault_only_reorders_rows():
    rng = np.random.default_rng(0)
    for swap in (False, True):
        values = np.arange(400.0)[:, None] * np.ones((1, 10))
        plan = {"fault": "temporal_order", "onset": 5.0, "end": 9.95, "sensor": 0, "swap": swap}
        _inject_sensor_faults(values, plan, rng, 20.0)
        # every value stays one the flight really had; only the order changed
        np.testing.assert_array_equal(np.sort(values[:, 0]), np.arange(400.0))
        assert (values[100:200, 0] != np.arange(100, 200)).any()


def test_synth_cli_output_validates(tmp_path, capsys):
    out = tmp_path / "ds"
    assert (
        main(["synth", "--out", str(out), "--flights", "3", "--seed", "5", "--max-duration", "70"])
        == 0
    )
    assert main(["validate", str(out)]) == 0
    assert "3 valid, 0 invalid" in capsys.readouterr().out


def test_synth_refuses_to_mix_two_datasets(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--seed", "5", "--max-duration", "70"]
    assert main([*args, "--flights", "4"]) == 0
    assert main([*args, "--flights", "3"]) == 2  # would leave flights of the first behind
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--flights", "3", "--overwrite"]) == 0
    assert len(list((out / "flights").glob("*.csv"))) == 3


def test_an_interrupted_overwrite_is_refused_until_written_again(tmp_path, monkeypatch, capsys):
    # flights were written over one by one, the tables last: stopped part way, old and new
    # flights sat under the old manifest, and validate called them all valid
    from anomaly.data import synthetic

    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--flights", "6", "--max-duration", "70"]
    assert main([*args, "--seed", "1"]) == 0
    real, written = synthetic._atomic_csv, []

    def stops(frame, path, **kw):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        real(frame, path, **kw)

    monkeypatch.setattr(synthetic, "_atomic_csv", stops)
    assert main([*args, "--seed", "2", "--overwrite"]) == 130  # as Ctrl-C ends it
    capsys.readouterr()
    one = str(next((out / "flights").glob("*.csv")))
    for command in (
        ["validate", str(out)],
        ["validate", str(out / "flights")],
        ["validate", f"{out}/flights/*.csv"],
        ["validate", one],
        ["train", "--data", str(out), "--model", "pca"],
    ):
        assert main(command) == 2, command
        assert "interrupted `anomaly synth` left it half written" in capsys.readouterr().err
    # a user's log put there meanwhile is not taken for one of synth's flights
    (out / "flights" / "mylog.csv").write_text("x")
    assert main([*args, "--seed", "2", "--overwrite"]) == 2
    assert "mylog.csv, which synth did not write" in capsys.readouterr().err
    (out / "flights" / "mylog.csv").unlink()
    monkeypatch.setattr(synthetic, "_atomic_csv", real)
    assert main([*args, "--seed", "2", "--overwrite"]) == 0
    assert main(["validate", str(out)]) == 0


def test_synth_never_deletes_what_it_did_not_write(tmp_path, capsys):
    # a log and a note beside generated flights were deleted, with or without --overwrite
    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--flights", "3", "--max-duration", "70"]
    assert main(args) == 0
    for name in ("mylog.csv.gz", "mylog.csv"):  # a .csv log too: not one of the manifest's
        (out / "flights" / name).write_bytes(b"x")
        assert main(args) == 2 and "already holds a dataset" in capsys.readouterr().err
        assert main([*args, "--overwrite"]) == 2
        assert f"{name}, which synth did not write" in capsys.readouterr().err
        assert (out / "flights" / name).read_bytes() == b"x"
        (out / "flights" / name).unlink()
    (out / ".DS_Store").write_bytes(b"")  # hidden files are no one's dataset
    assert main([*args, "--overwrite"]) == 0
    # a manifest names files of its flights/ only: a path in it deletes nothing elsewhere
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    manifest = out / "manifest.csv"
    manifest.write_text(manifest.read_text() + f"{victim},none,,,,10\n")
    assert main([*args, "--overwrite"]) == 0 and victim.read_text() == "keep"
    manifest.write_bytes(b"\xff\xfe\x00garbage")
    assert main([*args, "--overwrite"]) == 2
    assert "manifest.csv, column 'file', row 1: no 'file' column" in capsys.readouterr().err


def test_a_swap_cut_short_puts_the_old_folder_back(tmp_path, monkeypatch):
    # stopped between moving the old folder aside and moving the new one in, both were deleted
    from pathlib import Path

    from anomaly.study.sweep import replace_folder

    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "kept.txt").write_text("old")
    real = Path.rename

    def cut(self, target):
        if self.name.startswith(".ds-new-"):
            raise KeyboardInterrupt
        return real(self, target)

    monkeypatch.setattr(Path, "rename", cut)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(folder, lambda tmp: (tmp / "new.txt").write_text("new"))
    assert (folder / "kept.txt").read_text() == "old" and not (folder / "new.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    monkeypatch.setattr(Path, "rename", real)
    replace_folder(folder, lambda tmp: (tmp / "new.txt").write_text("new"))
    assert [p.name for p in folder.iterdir()] == ["new.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's owner-only 0700
