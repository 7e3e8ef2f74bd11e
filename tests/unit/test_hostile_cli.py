"""Hostile input around the logs: dataset metadata, config files, flags and `validate`'s output.
Each ends in one line naming the file (exit code 2), an argparse usage error, or a warning."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
from anomaly.config import build_config, load_config_file, load_yaml
from anomaly.data.checks import flight_suspicions, rate_suspicions, suspicious
from anomaly.data.datasets import load_dataset
from anomaly.data.schema import Flight, LogError
from anomaly.track.trials import fault_metrics
from tests.helpers import write_log


def _one_line_error(capsys, argv: list[str], needle: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and needle in err, err
    return err


# -- 1. validate goes on past a bad file --------------------------------------------------------
def test_validate_goes_on_past_a_bad_file(tmp_path, capsys):
    write_log(tmp_path / "a.csv", n=40)
    (tmp_path / "b.csv").write_text("time,a\n2024-05-01T10:00:00Z,1\n2024-05-01T10:00:01,2\n")
    write_log(tmp_path / "c.csv", n=40)
    assert main(["validate", str(tmp_path)]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert out[1].startswith("INVALID") and "b.csv" in out[1] and "row 3" in out[1]
    assert out[-1] == "2 valid, 1 invalid"


def test_validate_warns_of_a_log_that_training_would_refuse_for_its_channels(tmp_path, capsys):
    write_log(tmp_path / "a.csv", n=40, channels=3)
    write_log(tmp_path / "b.csv", n=40, channels=2)  # no ch2
    write_log(tmp_path / "c.csv", n=40, channels=4)  # ch3 besides
    assert main(["validate", str(tmp_path)]) == 0  # each log is valid on its own
    out = capsys.readouterr().out
    assert f"WARNING {tmp_path / 'b.csv'}, column 'ch2': missing here, present in the first" in out
    assert f"WARNING {tmp_path / 'c.csv'}, column 'ch3': not in the first log" in out
    assert main(["train", "--data", str(tmp_path), "--model", "pca"]) == 2
    assert "b.csv, column 'ch2', row 1: required channel missing" in capsys.readouterr().err


# -- 2. fault types as metric names -------------------------------------------------------------
def test_fault_metric_names_are_safe():
    rows = [
        {"fault_type": t, "f1_point": 0.5, "auc_pr": 0.5, "recall_point": 0.5}
        for t in ("unknown", "?", "a/b", "..", "", "stuck (élévateur)", "x-1.2 y_z")
    ]
    names = list(fault_metrics(rows))
    assert "fault/unknown/f1_point" in names and "fault/x-1.2 y_z/auc_pr" in names
    for name in names:
        _, fault, _ = name.split("/")
        assert (
            fault
            and fault.strip(".")
            and all(c.isascii() and (c.isalnum() or c in "_-. ") for c in fault)
        )


# -- 7. dataset metadata and config files -------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    (tmp_path / "flights").mkdir()
    for k in range(4):
        write_log(tmp_path / "flights" / f"f{k}.csv", n=60, seed=k)
    return tmp_path


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("split.csv", "file,side\nf0.csv,train\n", "column 'split', row 1"),
        ("split.csv", "name,split\nf0.csv,train\n", "column 'file', row 1"),
        ("split.csv", "file,split\nf0.csv,train\nf1.csv,val\n", "column 'split', row 3"),
        ("split.csv", "file,split\nf0.csv,train\nf0.csv,test\n", "listed twice"),
        ("manifest.csv", "flight,fault_type\nf0.csv,none\n", "column 'file', row 1"),
        ("manifest.csv", b"\x1f\x8b\x08\x00\xff\xfe\x00\x00binary", "manifest.csv"),
        ("manifest.csv", 'file,fault_type\n"f0.csv,none\n', "manifest.csv"),
    ],
)
def test_bad_dataset_metadata_names_the_file(folder, name, content, needle):
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(LogError) as info:
        load_dataset(str(folder))
    assert str(info.value).startswith(str(path)) and needle in str(info.value)


def test_unreadable_manifest_names_the_file(folder):
    (folder / "manifest.csv").mkdir()  # reading a folder fails for root too
    with pytest.raises(LogError, match="manifest.csv: cannot read"):
        load_dataset(str(folder))


def test_one_row_log_in_train_names_the_file(folder, capsys):
    (folder / "flights" / "short.csv").write_text("time,ch0,ch1,ch2\n0,1,2,3\n")
    _one_line_error(
        capsys, ["train", "--data", str(folder), "--model", "pca"], "short.csv: one data row"
    )


@pytest.mark.parametrize(
    "text, needle",
    [
        ("model: [pca\n", "not valid YAML (line 2)"),
        ("- pca\n- lstm\n", "expected a mapping"),
        ("train: 5\n", "train must be a mapping"),
        ("train: {max_epochs: 0}\n", "train.max_epochs must be an integer >= 1"),
        ("train: {lr: 1e-3}\n", "train.lr must be a number"),
        ("train: {steps_per_epoch: 0}\n", "train.steps_per_epoch must be an integer >= 1"),
        ("train: {min_improvement: 1.0}\n", "train.min_improvement must be a fraction below 1"),
        ("train: {min_improvement: -0.1}\n", "train.min_improvement must be finite and >= 0"),
        ("detect: {threshold: 'fixed:nan'}\n", "detect.threshold"),
        ("detect: {smooth_s: -1}\n", "detect.smooth_s"),
        ("detect: {frozen_check: 'false'}\n", "detect.frozen_check must be true or false"),
        ("seed: -3\n", "seed must be an integer >= 0"),
        ("windw: {}\n", "unknown key 'windw'"),
    ],
)
def test_bad_config_file_names_file_and_key(tmp_path, capsys, text, needle):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_config_file(path)
    assert str(info.value).startswith(str(path)) and needle in str(info.value)
    _one_line_error(capsys, ["train", "--config", str(path)], needle)


def test_sweep_spec_yaml_errors_name_the_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\nbase: {data: {data: [}\n")
    with pytest.raises(ValueError, match=f"^{path}: not valid YAML"):
        load_yaml(path)


SPEC = """name: x
base: {data: {data: DATA}}
train_sizes: [1, 2]
seeds: [0, 1]
arms:
  - {name: lstm, model: pca}
  - {name: transformer, model: pca}
"""


@pytest.mark.parametrize(
    "change, needle",
    [
        (("seeds: [0, 1]", "seeds: 3"), "seeds must be a list of whole numbers, got 3"),
        (("train_sizes: [1, 2]", "train_sizes: [1, 2.5]"), "train_sizes must be a list"),
        (("{name: lstm, model: pca}", "{name: lstm, model: pca, seeds: [x]}"), "arms: lstm: seeds"),
        (("arms:", "compare: [lstm, tranformer]\narms:"), "compare must name two arms of"),
        (("arms:", "compare: lstm\narms:"), "compare must name two arms of"),
        (("arms:", "lens_seeds: 0\narms:"), "lens_seeds must be a list of whole numbers"),
        (
            (
                "arms:",
                "factorial: {base: lstm, sizes: 8, positional: [none], readout: [last]}\narms:",
            ),
            "factorial: sizes must be a list",
        ),
        (
            (
                "arms:",
                "factorial: {base: transfomer, sizes: [1], positional: [none], readout: [last]}\narms:",
            ),
            "factorial: base 'transfomer' is no arm",
        ),
        (("arms:", "factorial: {base: lstm}\narms:"), "factorial lacks sizes, positional, readout"),
        (
            ("arms:", "synth: {n_flights: 8, bogus: 1}\narms:"),
            "synth.bogus is no generator setting",
        ),
    ],
)
def test_a_study_spec_mistake_is_named_before_any_cell_runs(tmp_path, capsys, change, needle):
    # they ran cells that all failed, or failed inside the tool (TypeError, StopIteration), or
    # passed, leaving the report without its comparison
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace(*change))
    _one_line_error(capsys, ["sweep", str(path)], needle)


def test_an_arm_may_leave_its_sizes_and_seeds_to_the_spec(tmp_path):
    from anomaly.study.spec import SweepSpec

    path = tmp_path / "spec.yaml"
    path.write_text(
        SPEC.replace("{name: lstm, model: pca}", "{name: lstm, model: pca, seeds: []}")
        + "lens_seeds: []\n"  # no cell logs W(t, k)
    )
    spec = SweepSpec.from_yaml(path)
    assert spec.arms[0].seeds == [] and spec.lens_seeds == []


def test_a_training_size_the_pool_cannot_give_is_refused_before_any_cell(
    synth_dir, tmp_path, capsys, mlflow_store, monkeypatch
):
    from anomaly.study import sweep

    monkeypatch.setattr(sweep, "_run_cell", lambda c: pytest.fail("a cell ran"))
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("DATA", str(synth_dir)).replace("[1, 2]", "[1, 50]"))
    _one_line_error(capsys, ["sweep", str(path)], "training sizes [50] are more than the")


def test_a_configs_model_params_are_judged_for_the_models_the_command_line_chose(
    synth_dir, tmp_path, capsys, monkeypatch
):
    # a file of Transformer settings was refused as not the default LSTM's; compare trained and
    # logged its first model before finding the file's settings were not the second's
    import anomaly.study.trial as trial

    def reached(*_, **__):
        raise trial.UserError("reached training")

    monkeypatch.setattr(trial, "run_trial", reached)
    tq = tmp_path / "tq.yaml"
    tq.write_text("model_params: {d_model: 16, dim_feedforward: 32, n_layers: 1}\n")
    data = ["--data", str(synth_dir)]
    _one_line_error(
        capsys, ["train", *data, "--model", "transformer", "--config", str(tq)], "reached"
    )
    quick = tmp_path / "quick.yaml"
    quick.write_text("model_params: {hidden_size: 8}\n")
    needle = f"{quick}: config: model_params.hidden_size must be a setting of pca"
    err = _one_line_error(
        capsys, ["compare", *data, "--models", "lstm,pca", "--config", str(quick)], needle
    )
    assert err.endswith("got 8")
    _one_line_error(capsys, ["compare", *data, "--models", "pca,pca"], "a model named twice")


def test_explain_given_a_folder_asks_for_one_log(synth_dir, capsys):
    # it said the folder held no log, of a folder of logs
    _one_line_error(
        capsys,
        ["explain", str(synth_dir / "flights"), "--model", "m"],
        "a folder; explain draws one",
    )


def test_config_values_are_checked_after_layering():
    with pytest.raises(ValueError, match="window.stride"):
        build_config({}, {"window": {"stride": 0}})


# -- 8. flags -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--threshold", "fixed:nan"],
        ["train", "--threshold", "zscore:inf"],
        ["train", "--max-gap", "-1"],
        ["train", "--max-epochs", "0"],
        ["train", "--seed", "-1"],
        ["train", "--train-flights", "0"],
        ["compare", "--max-epochs", "1.5"],
        ["validate", "--max-gap", "x", "a.csv"],
        ["synth", "--out", "x", "--flights", "0"],
        ["synth", "--out", "x", "--seed", "-2"],
        ["synth", "--out", "x", "--min-duration", "0"],
        ["synth", "--out", "x", "--max-duration", "nan"],
        ["synth", "--out", "x", "--fault-free-share", "1.5"],
        ["score", "a.csv", "--model", "m", "--out", "o", "--threshold", "-1"],
    ],
)
def test_nonsense_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "expected" in capsys.readouterr().err


# -- 12. warnings -------------------------------------------------------------------------------
def _flight(time, **channels) -> Flight:
    values = np.column_stack(list(channels.values())).astype(np.float32)
    return Flight("f", np.asarray(time, dtype=np.float64), values, list(channels))


def test_milliseconds_warning():
    n = 200
    noise = np.random.default_rng(0).normal(size=n)
    (s,) = flight_suspicions(_flight(np.arange(n) * 50.0, a=noise))
    assert s.column is None and "milliseconds" in s.reason
    assert not flight_suspicions(_flight(np.arange(n) * 0.05, a=noise))


def test_constant_and_clock_channel_warnings():
    n = 300
    t = np.arange(n) / 20.0
    noise = np.random.default_rng(0).normal(size=n)
    f = _flight(t, a=noise, flat=np.full(n, 3.0), counter=np.arange(n) + 7.0, clock=2.5 * t + 1.7e9)
    found = {s.column: s.reason for s in flight_suspicions(f)}
    assert set(found) == {"flat", "counter", "clock"}
    assert "constant" in found["flat"] and "clock" in found["counter"]


def test_rate_warning_against_the_batch_median():
    flagged = rate_suspicions([20.0, 20.0, 19.9, 10.0, float("nan")])
    assert [s.flight for s in flagged] == [3]
    assert rate_suspicions([20.0]) == []


def test_suspicious_combines_and_orders_by_flight():
    n = 100
    noise = np.random.default_rng(1).normal(size=n)
    flights = [_flight(np.arange(n) / r, a=noise) for r in (20.0, 20.0, 10.0)]
    assert [(s.flight, s.column) for s in suspicious(flights)] == [(2, None)]


def test_validate_prints_warnings_after_the_ok_line_and_exits_0(tmp_path, capsys):
    n = 100
    noise = np.random.default_rng(0).normal(size=n)
    frames = {
        "a.csv": pd.DataFrame({"time": np.arange(n) / 20, "x": noise}),
        "b.csv": pd.DataFrame({"time": np.arange(n) / 20, "x": noise, "k": 1.0}),
        "c.csv": pd.DataFrame({"time": np.arange(n) * 50, "x": noise}),
    }
    for name, frame in frames.items():
        frame.to_csv(tmp_path / name, index=False)
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    b = out.index(next(line for line in out if line.startswith(f"ok {tmp_path / 'b.csv'}")))
    assert (
        out[b + 1] == f"WARNING {tmp_path / 'b.csv'}, column 'k': constant (1) over the whole log"
    )
    c_warnings = [line for line in out if line.startswith(f"WARNING {tmp_path / 'c.csv'}:")]
    assert len(c_warnings) == 2  # milliseconds, and a rate far from the other two
    assert out[-1] == "3 valid, 0 invalid"


def test_train_warns_about_logs_read_from_a_folder(tmp_path, caplog):
    """The warnings `validate` prints also come from `train` on the user's own logs."""
    from anomaly.data.datasets import load_dataset
    from anomaly.study.trial import warn_suspicious
    from tests.helpers import write_log

    folder = tmp_path / "logs"
    folder.mkdir()
    for i in range(2):
        frame = pd.read_csv(write_log(tmp_path / f"f{i}.csv", seed=i))
        frame["time"] = (frame["time"] * 1000).round().astype(int)  # milliseconds
        frame.to_csv(folder / f"f{i}.csv", index=False)
    with caplog.at_level("WARNING", logger="anomaly.study.trial"):
        warn_suspicious(load_dataset(str(folder)))
    assert sum("milliseconds" in r.getMessage() for r in caplog.records) == 2


def test_logs_with_columns_in_another_order_are_read_by_name(tmp_path):
    # two tools, one folder, no manifest: a channel must not take another's values by position
    (tmp_path / "a.csv").write_text(
        "time,alt,speed\n" + "".join(f"{i},{1000 + i},20\n" for i in range(5))
    )
    (tmp_path / "b.csv").write_text(
        "time,speed,alt\n" + "".join(f"{i},21,{900 + i}\n" for i in range(5))
    )
    ds = load_dataset(str(tmp_path))
    for f in ds.flights:
        assert f.channels == ["alt", "speed"]
    alt, speed = ds.flights[1].values[:, 0], ds.flights[1].values[:, 1]
    assert alt[0] == 900 and speed[0] == 21
    picked = ds.select(["speed"]).flights[1].values[:, 0]
    assert (picked == 21).all()


def test_log_without_a_channel_of_the_others_names_file_and_column(tmp_path):
    (tmp_path / "a.csv").write_text("time,alt,speed\n0,1,2\n1,1,2\n")
    (tmp_path / "b.csv").write_text("time,alt\n0,1\n1,1\n")
    with pytest.raises(LogError) as info:
        load_dataset(str(tmp_path))
    e = info.value
    assert e.path.endswith("b.csv") and e.column == "speed"


def test_channels_chosen_for_a_users_logs_leave_the_other_columns_unread(tmp_path):
    # as `validate --channels` reads them: a sparse spare column or pandas' index column must
    # not fail a training on the channels the user picked
    rows = "".join(f"{i},{i},{i % 3},{'' if i > 2 else 1},{i}\n" for i in range(40))
    (tmp_path / "a.csv").write_text(",time,a,junk,b\n" + rows)
    from anomaly.config import build_config

    cfg = build_config({}, {"data": {"data": str(tmp_path), "channels": ["a", "b"]}})
    ds = load_dataset(cfg.data.data, cfg.data.format_options())
    assert ds.channels == ["a", "b"] and ds.flights[0].values.shape == (40, 2)
    with pytest.raises(LogError):
        load_dataset(str(tmp_path))


def test_a_faulty_flight_without_labels_is_refused(tmp_path):
    (tmp_path / "flights").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "flights" / name).write_text("time,x\n0,1\n1,2\n2,3\n")
    (tmp_path / "manifest.csv").write_text("file,fault_type\na.csv,none\nb.csv,engine\n")
    with pytest.raises(LogError) as info:
        load_dataset(str(tmp_path))
    assert info.value.path.endswith("b.csv") and "'engine'" in str(info.value)


def test_a_later_log_keeps_every_check_of_its_own_columns(tmp_path):
    # a value under a column with no name is refused in any file, not only the first
    (tmp_path / "a.csv").write_text("time,a,b\n0,1,2\n1,1,2\n")
    (tmp_path / "b.csv").write_text("time,a,,b\n0,1,7,2\n1,1,7,2\n")
    with pytest.raises(LogError) as info:
        load_dataset(str(tmp_path))
    assert info.value.path.endswith("b.csv") and "no name" in str(info.value)
    (tmp_path / "b.csv").write_text("time,a,b,c\n0,1,2,3\n1,1,2,3\n")
    with pytest.raises(LogError) as info:
        load_dataset(str(tmp_path))
    assert info.value.path.endswith("b.csv") and info.value.column == "c"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("train: {max_epochs: null}\n", "train.max_epochs must be an integer >= 1, got 'null'"),
        ("seed: null\n", "seed must be"),
        ("seed: 4294967296\n", "seed must be below 2**32"),
        ("window: {scaler: bogus}\n", "window.scaler must be"),
        ("train: {accelerator: bogus}\n", "train.accelerator must be"),
        ("model: nosuch\n", "model must be one of"),
        ("data: {channels: 'a,b'}\n", "data.channels must be a list"),
        ("[]\n", "expected a mapping"),
        ("train: []\n", "train must be a mapping"),
        (
            "train: {lr: 0.01}\nseed: 1\ntrain: {batch_size: 8}\n",
            "(line 3): key 'train' given twice",
        ),
        ("model: pca\nmodel_params: {foo: 1}\n", "model_params.foo must be a setting of pca"),
        # a network's too, before any data is read (it was caught when the network was built)
        (
            "model: lstm\nmodel_params: {hiden_size: 16}\n",
            "model_params.hiden_size must be a setting of lstm",
        ),
        ("model: lstm_ae\nmodel_params: {window_len: 8}\n", "model_params.window_len must be"),
    ],
)
def test_bad_config_values_are_refused_by_key(tmp_path, text, needle):
    from anomaly.config import build_config, load_config_file
    from anomaly.errors import UserError

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        data = load_config_file(path)
        from anomaly.models.registry import get

        cfg = build_config(data)
        get(cfg.model).params(cfg)
    assert needle in str(info.value)


def test_synth_durations_and_flights_are_usage_errors(tmp_path, capsys):
    out = str(tmp_path / "s")
    assert main(["synth", "--out", out, "--min-duration", "50", "--max-duration", "20"]) == 2
    assert main(["synth", "--out", out, "--min-duration", "0.01", "--max-duration", "0.02"]) == 2
    assert main(["synth", "--out", out, "--flights", "2"]) == 2
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_a_merge_key_may_be_overridden_in_a_config(tmp_path):
    from anomaly.config import load_yaml

    path = tmp_path / "m.yaml"
    path.write_text("base: &b {lr: 0.01, seed: 1}\nother: {<<: *b, lr: 0.02}\n")
    assert load_yaml(path)["other"] == {"lr": 0.02, "seed": 1}
    # an anchor that merges and overrides, merged again; a number and a string are two keys
    path.write_text("b: &y {k: 0}\nd: {a: &x {<<: *y, k: 1}}\nz: {<<: *x}\nn: {1: a, '1': b}\n")
    import yaml

    assert load_yaml(path) == yaml.safe_load(path.read_text())  # as PyYAML reads it, not refused
    assert len(load_yaml(path)["n"]) == 2


def test_lightnings_own_accelerators_are_accepted():
    from anomaly.config import build_config

    assert build_config({"train": {"accelerator": "mps"}}).train.accelerator == "mps"


@pytest.mark.parametrize("chunk", [1, 10, 50, 200])
def test_a_logs_rate_is_judged_on_its_first_rows_whatever_the_chunk_size(chunk):
    # 21 rows at 10 Hz, then 20 Hz: a whole first chunk of 200 rows has a 20 Hz median and
    # once passed where chunks of 1, 10 or 50 refused the same log
    from pathlib import Path
    from types import SimpleNamespace

    from anomaly.detect.batch import RateCheck

    t = np.concatenate([np.arange(21) / 10, 2.0 + np.arange(1, 180) / 20])
    check = RateCheck(SimpleNamespace(sample_rate_hz=20.0), Path("x.csv"), "time")
    with pytest.raises(LogError, match="sample rate 10 Hz is far from the model's 20 Hz"):
        for i in range(0, len(t), chunk):
            check.see(t[i : i + chunk])
        check.finish()


@pytest.mark.parametrize("chunk", [1, 7, 20, 21, 500])
def test_a_log_whose_rate_changes_part_way_is_refused_where_it_changes(chunk):
    # judged on the first 21 rows only, 10 Hz then 50 Hz passed, and every setting in seconds
    # then spanned a fifth of its time
    from pathlib import Path
    from types import SimpleNamespace

    from anomaly.detect.batch import RateCheck

    t = np.concatenate([np.arange(300) / 10, 29.9 + np.arange(1, 300) / 50])
    t[150] += 0.04  # one late row is not a new rate
    check = RateCheck(SimpleNamespace(sample_rate_hz=10.0), Path("x.csv"), "time")
    with pytest.raises(
        LogError, match=r"x.csv, column .time., row 222: sample rate 12 Hz over the 101 rows from h"
    ):
        for i in range(0, len(t), chunk):
            check.see(t[i : i + chunk])
        check.finish()
    whole = RateCheck(SimpleNamespace(sample_rate_hz=10.0), Path("x.csv"), "time")
    whole.see(t[:301])  # the rows before the change pass
    whole.finish()


def test_timestamp_jitter_and_a_rate_at_the_tolerance_are_not_a_new_rate():
    # judged on the median of each 21 rows alone, jitter of a fifth of a period refused half of
    # a batch of 10-minute logs at their model's own rate, "the log's rate changed"
    from pathlib import Path
    from types import SimpleNamespace

    from anomaly.detect.batch import RateCheck

    model = SimpleNamespace(sample_rate_hz=20.0)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = np.arange(12_000) / 20 + rng.uniform(-0.02, 0.02, 12_000)
        check = RateCheck(model, Path("x.csv"), "time")
        check.see(t)
        check.finish()
    for rate in (16.0, 24.0):  # exactly 20 % off is not "more than 20 %"
        check = RateCheck(model, Path("x.csv"), "time")
        check.see(np.arange(1000) / rate)
        check.finish()
    check = RateCheck(model, Path("x.csv"), "time")
    with pytest.raises(LogError, match="row 2: sample rate 24.2 Hz is far"):
        check.see(np.arange(1000) / 24.2)
    # timestamps rounded to 10 ms put a median of 20 steps on a grid value: 64 Hz passed for 50
    check = RateCheck(SimpleNamespace(sample_rate_hz=50.0), Path("x.csv"), "time")
    with pytest.raises(
        LogError,
        match=r"row 22: sample rate 6\d.?\d? Hz over the 101 rows from here \(the rows before",
    ):
        check.see(np.round(np.arange(3000) / 64, 2))
    # a logger that stamps rows as it writes them, 3 at a time 0.1 ms apart, logs at 10 Hz;
    # one logging every other row after a 0.3 s wait logs at 5 Hz
    model10 = SimpleNamespace(sample_rate_hz=10.0)
    burst = np.repeat(np.arange(2000) * 0.3, 3) + np.tile([0, 1e-4, 2e-4], 2000)
    check = RateCheck(model10, Path("x.csv"), "time")
    check.see(burst)
    check.finish()
    check = RateCheck(model10, Path("x.csv"), "time")
    with pytest.raises(LogError, match="row 2: sample rate 5 Hz is far"):
        check.see(np.cumsum(np.tile([0.1, 0.3], 500)))
    # a short log whose first 21 rows passed (their median) is not refused at its end by the
    # same rows judged again under the later blocks' rule, after its rows were scored
    steps = np.full(59, 0.1)
    steps[[3, 8, 14]] = 1.0
    check = RateCheck(model10, Path("x.csv"), "time")
    check.see(np.concatenate([[0.0], np.cumsum(steps)]))
    check.finish()
    # a logger that keeps 4 rows of 7 at 20 Hz logs 11.4 rows a second: near 10, as rows count
    kept = np.flatnonzero(np.arange(7000) % 7 < 4) / 20
    check = RateCheck(SimpleNamespace(sample_rate_hz=10.0), Path("x.csv"), "time")
    check.see(kept)
    check.finish()
    # the last rows are judged too, with the rows before them: milliseconds in the last 11
    t = np.concatenate([np.arange(305) / 20, 15.5e3 + np.arange(11) * 50.0])
    check = RateCheck(model, Path("x.csv"), "time")
    check.see(t)
    with pytest.raises(
        LogError, match=r"row 217: sample rate 0.00\d+ Hz over the 101 rows from here"
    ):
        check.finish()


def test_no_row_is_scored_before_the_rate_is_judged():
    # a watch printed and appended an alarm for a log it refused a second later for its rate
    from pathlib import Path
    from types import SimpleNamespace

    from anomaly.detect.batch import scored_blocks

    fed = []
    stream = SimpleNamespace(feed=lambda t, v: fed.append(len(t)) or SimpleNamespace(time=t))
    pipeline = SimpleNamespace(sample_rate_hz=10.0, stream=lambda: stream)
    reader = SimpleNamespace(file=SimpleNamespace(file_rows=None), time_col="time")
    chunks = [
        SimpleNamespace(time=np.array([float(i)]), values=np.zeros((1, 2)), row_offset=i)
        for i in range(40)
    ]  # 1 Hz, one row at a time, as a watch reads
    with pytest.raises(LogError, match="sample rate 1 Hz is far from the model's 10 Hz"):
        for _ in scored_blocks(pipeline, Path("x.csv"), reader, chunks):
            pass
    assert fed == []
    fine = [
        SimpleNamespace(time=c.time / 10, values=c.values, row_offset=c.row_offset) for c in chunks
    ]
    assert sum(len(b.time) for b in scored_blocks(pipeline, Path("x.csv"), reader, fine)) == 40


def test_watch_never_appends_its_alarms_to_a_log(tmp_path):
    from anomaly.detect.watch import append_event, check_events_path
    from anomaly.errors import UserError

    log = write_log(tmp_path / "flight.csv", n=40)
    before = log.read_bytes()
    with pytest.raises(UserError, match="the log being watched"):
        check_events_path(tmp_path / "." / "flight.csv", log)
    other = write_log(tmp_path / "other.csv", n=40)  # another log named by mistake
    with pytest.raises(UserError, match="other.csv: not an events table"):
        check_events_path(other, log)
    assert log.read_bytes() == before
    events = tmp_path / "alarms.csv"  # a new file, then one an earlier watch appended to
    check_events_path(events, log)
    append_event(events, {"flight_id": "f", "start": 1.0, "peak_score": 2.0, "channel": "a"})
    check_events_path(events, log)


def test_a_label_column_no_log_has_is_a_typo_not_unlabelled_logs(tmp_path, capsys):
    frames = [pd.read_csv(write_log(tmp_path / f"log{i}.csv", n=60, seed=i)) for i in range(3)]
    for i, frame in enumerate(frames):
        frame.assign(label=0).to_csv(tmp_path / f"log{i}.csv", index=False)
    with pytest.raises(LogError, match=r"log0.csv, column 'lable', row 1: label column not found"):
        load_dataset(str(tmp_path), {"label_col": "lable"})
    assert load_dataset(str(tmp_path), {"label_col": "label"}).flights[0].labels is not None
    assert main(["validate", str(tmp_path / "log0.csv"), "--label-col", "lable"]) == 0
    assert "no labels (no column 'lable')" in capsys.readouterr().out
    # fault-free flights by their manifest need no label column (ALFA's no-failure files)
    clean = tmp_path / "clean"
    (clean / "flights").mkdir(parents=True)
    for i, frame in enumerate(frames):
        frame.to_csv(clean / "flights" / f"log{i}.csv", index=False)
    rows = [f"log{i}.csv,none" for i in range(3)]
    (clean / "manifest.csv").write_text("file,fault_type\n" + "\n".join(rows) + "\n")
    ds = load_dataset(str(clean), {"label_col": "lable"})
    assert all(f.labels is not None and not f.labels.any() for f in ds.flights)


def test_a_log_timed_in_milliseconds_is_named_as_such_at_scoring():
    from pathlib import Path
    from types import SimpleNamespace

    from anomaly.detect.batch import RateCheck

    check = RateCheck(SimpleNamespace(sample_rate_hz=20.0), Path("x.csv"), "time")
    with pytest.raises(LogError, match=r"sample rate 0.02 Hz \(time in milliseconds\?\) is far"):
        check.see(np.arange(30) * 50.0)  # 50 ms steps read as 50 s
        check.finish()


@pytest.mark.parametrize("how", ["cut", "replaced", "copied over", "rewritten", "blank line"])
def test_watch_refuses_a_log_cut_shorter_or_replaced_under_it(tmp_path, how, caplog):
    # read on from the old offset, the new file's rows would be skipped or read mid-line
    from anomaly.data.csvfile import CsvFile
    from anomaly.detect.watch import follow

    log = write_log(tmp_path / "live.csv", n=40)
    lines = log.read_text().splitlines(keepends=True)
    calls = 0

    def stop() -> bool:  # called while the watch waits for rows: the logger starts over then
        nonlocal calls
        calls += 1
        if calls == 3 and how == "cut":
            log.write_text("".join(lines[:5]))
        if calls == 3 and how == "replaced":
            (tmp_path / "new.csv").write_text("".join(lines))
            os.replace(tmp_path / "new.csv", log)
        if calls == 3 and how == "copied over":  # cp: the same file, cut and written anew
            log.write_text(
                lines[0] + "".join(x.replace(",", ",1") for x in lines[1:]) + "9,9,9,9\n"
            )
        if calls == 3 and how == "rewritten":  # the same rows first, then more: not another log
            log.write_text("".join(lines[:10]))
        if calls == 5 and how == "rewritten":
            log.write_text("".join(lines) + lines[-1].replace("1.95", "2.00"))
        if calls in (3, 5) and how == "blank line":  # a log that only grows, a blank line first
            with open(log, "a") as out:
                out.write("\n" if calls == 3 else lines[-1].replace("1.95", "2.00"))
        return calls > 100

    frames = follow(CsvFile(log), once=False, poll_s=0.001, stop=stop)
    assert len(next(frames)) == 40  # what was written before the watch began
    if how in ("rewritten", "blank line"):
        assert len(next(frames)) == 1  # the one new row, once the log is past where it was
        assert list(frames) == []  # and the watch goes on without a word until it stops
        return
    if how == "cut":  # the same first rows: said, and waited for (a logger writing it anew)
        with caplog.at_level("WARNING"):
            assert list(frames) == []
        assert "shorter than the" in caplog.text and "waiting for it to grow" in caplog.text
        return
    why = {"replaced": "removed or replaced", "copied over": "written anew"}
    with pytest.raises(LogError, match=why[how]):
        next(frames)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_a_hole_in_a_logs_time_is_said_whatever_the_chunks(chunk, caplog):
    from pathlib import Path

    from anomaly.detect.batch import TimeGaps

    t = np.arange(400) / 20.0
    t[200:] += 5.0  # 5 s of rows missing after t = 9.95 s
    t[300:] += 0.2  # and 0.2 s (4 rows) later on
    gaps = TimeGaps(20.0, Path("flight.csv"))
    with caplog.at_level("WARNING"):
        for i in range(0, len(t), chunk):  # nothing is said before the rate is judged
            gaps.see(t[i : i + chunk], i, ready=i >= 21)
            assert not caplog.records or i >= 21
        gaps.finish()
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == (
        "flight.csv: no rows for 5.05 s after t=9.95 s, before row 202 (rows either side are "
        "scored as consecutive)"
    )
    assert said[1] == "flight.csv: 2 time gaps of 0.125 s or more, the longest 5.05 s"
    caplog.clear()
    steady = TimeGaps(20.0, Path("flight.csv"))
    steady.see(np.arange(400) / 20.0 + np.random.default_rng(0).normal(0, 0.005, 400))
    steady.finish()
    assert not caplog.records  # jitter is no gap


def test_a_hole_in_time_is_named_by_the_files_row_past_blank_lines(tmp_path, caplog):
    from anomaly.data.csvfile import CsvFile
    from anomaly.detect.batch import TimeGaps

    lines = [f"{i / 20:.2f},{i}\n" for i in range(30)] + [
        f"{5 + i / 20:.2f},{i}\n" for i in range(5)
    ]
    log = tmp_path / "holes.csv"
    log.write_text("time,a\n" + "".join(lines[:30]) + "\n\n" + "".join(lines[30:]))
    gaps = TimeGaps(20.0, log, CsvFile(log).file_rows)
    t = np.array([float(x.split(",")[0]) for x in lines])
    with caplog.at_level("WARNING"):
        gaps.see(t, 0)
    assert "before row 34 " in caplog.text  # data row 32, after two blank lines


def test_one_flight_id_is_one_flight(tmp_path):
    # f0.csv and f0.csv.gz (the same flight gzipped) trained on one side and tested on the other
    for i in range(4):
        write_log(tmp_path / f"f{i}.csv", n=60, seed=i)
    write_log(tmp_path / "f0.csv.gz", n=60, seed=0, compression="gzip")
    with pytest.raises(LogError, match=r"f0.csv.gz: same flight id 'f0' as .*f0.csv; rename"):
        load_dataset(str(tmp_path))
    with pytest.raises(LogError, match="same flight id 'f0'"):  # as a glob, or in subfolders
        load_dataset(str(tmp_path / "f*"))
    # logs of one name in several folders (one folder a day) are named by their folder
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_log(tmp_path / sub / "f9.csv", n=60)
    write_log(tmp_path / "b" / "f8.csv", n=60)
    ds = load_dataset(str(tmp_path / "*" / "f*.csv"))
    assert sorted(f.flight_id for f in ds.flights) == ["a/f9", "b/f9", "f8"]  # as score names


def test_a_split_places_every_log_and_names_no_other(tmp_path):
    for i in range(4):
        write_log(tmp_path / f"f{i}.csv", n=60, seed=i)
    split = tmp_path / "split.csv"
    split.write_text("file,split\nf0.csv,train\nf1.csv,train\nf2.csv,test\nghost.csv,test\n")
    with pytest.raises(LogError, match=r"split.csv, column 'file', row 5: 'ghost' names no log"):
        load_dataset(str(tmp_path))
    split.write_text("file,split\nf0.csv,train\nf1.csv,train\nf2.csv,test\n")  # f3 never used
    with pytest.raises(LogError, match=r"1 log\(s\) not in split.csv, the first f3.csv"):
        load_dataset(str(tmp_path))
    split.write_text("file,split\nf0.csv,train\nf1.csv,train\nf2.csv,test\nf3.csv,validation\n")
    assert load_dataset(str(tmp_path)).fixed_split["f3"] == "validation"


def test_a_log_name_that_is_not_utf8_trains(tmp_path):
    # the data hash encoded the name as UTF-8 and failed inside the tool on such a name
    for i in range(3):
        write_log(tmp_path / f"f{i}.csv", n=60, seed=i)
    write_log(tmp_path / os.fsdecode(b"fl\xe9ght.csv"), n=60, seed=9)
    ds = load_dataset(str(tmp_path))
    assert len(ds.flights) == 4 and len(ds.content_hash) == 16


def test_no_normal_row_to_train_on_is_the_users_error(tmp_path, capsys):
    # the scaler was fitted on no rows first: an internal failure, exit 1
    frame = pd.read_csv(write_log(tmp_path / "x.csv", n=80))
    frame.assign(label=1).to_csv(tmp_path / "x.csv", index=False)
    assert main(["train", "--data", str(tmp_path / "x.csv"), "--model", "pca"]) == 2
    assert "no normal rows to train on: every training flight (x) is labelled anomalous" in (
        capsys.readouterr().err
    )


def test_a_trial_with_no_usable_validation_flight_is_refused_before_training(tmp_path, monkeypatch):
    # the refusal came after the whole training run
    from anomaly.errors import UserError
    from anomaly.models import registry
    from anomaly.study.trial import run_trial
    from tests.helpers import quick_config

    for i in range(3):
        write_log(tmp_path / f"t{i}.csv", n=200, seed=i)
    write_log(tmp_path / "v0.csv", n=10, seed=7)  # shorter than the 16-row window
    write_log(tmp_path / "x0.csv", n=200, seed=8)
    rows = ["t0.csv,train", "t1.csv,train", "t2.csv,train", "v0.csv,validation", "x0.csv,test"]
    (tmp_path / "split.csv").write_text("file,split\n" + "\n".join(rows) + "\n")

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the validation flights were judged")

    monkeypatch.setattr(registry, "make_detector", no_training)
    with pytest.raises(UserError, match="no validation flight has a full window of normal rows"):
        run_trial(quick_config(str(tmp_path), "pca"))
