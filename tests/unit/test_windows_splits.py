"""Windows never cross flights and cover every row; nothing from test flights or anomalous rows
reaches training or the scaler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anomaly.data.datasets import load_dataset
from anomaly.data.splits import split_flights
from anomaly.data.windows import make_windows, window_starts


def test_window_starts_cover_last_row():
    s = window_starts(10, 4, 3)
    assert s.tolist() == [0, 3, 6]
    s = window_starts(11, 4, 3)
    assert s.tolist() == [0, 3, 6, 7]
    assert window_starts(4, 4, 10).tolist() == [0]


def test_short_flight_is_an_error_naming_it():
    with pytest.raises(ValueError, match="flight_7: 3 rows, shorter than one window"):
        window_starts(3, 4, 1, "flight_7")


def test_make_windows_values():
    v = np.arange(20, dtype=np.float32).reshape(10, 2)
    w = make_windows(v, 4, 3)
    assert w.shape == (3, 4, 2)
    np.testing.assert_array_equal(w[1], v[3:7])


def test_fixed_split_file_wins(synth_dir):
    ds = load_dataset(str(synth_dir))
    assert ds.fixed_split is not None
    a, b = split_flights(ds, seed=1), split_flights(ds, seed=2)
    table = pd.read_csv(synth_dir / "split.csv")
    listed = sorted(table.loc[table["split"] == "test", "file"].str.removesuffix(".csv"))
    assert [f.flight_id for f in a.test] == [f.flight_id for f in b.test] == listed
    assert len(listed) == 3


def test_the_tables_hash_follows_split_and_manifest_the_logs_hash_does_not(synth_dir, tmp_path):
    # the split and the fault types change the numbers a run reports: a run and a resumed
    # sweep must tell them apart, while archived cells keep their logs' hash
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(synth_dir, copy)
    before = load_dataset(str(copy))
    split = copy / "split.csv"
    split.write_text(split.read_text().replace("test", "validation", 1))
    after = load_dataset(str(copy))
    assert after.content_hash == before.content_hash and after.tables_hash != before.tables_hash
    assert load_dataset(str(copy / "flights")).tables_hash == "none"


def test_split_by_flight_is_disjoint_and_the_same_for_every_seed(synth_dir):
    # plain logs, no split.csv: the seed varies weights and training subsets, never the test
    # flights, so a study's seeds are judged on the same flights (its bootstrap pairs them)
    ds = load_dataset(str(synth_dir / "flights"))
    assert ds.fixed_split is None
    a, b = split_flights(ds, seed=1), split_flights(ds, seed=2)
    ids = lambda fl: {f.flight_id for f in fl}  # noqa: E731
    assert not ids(a.train) & ids(a.test) and not ids(a.validation) & ids(a.test)
    assert not ids(a.train) & ids(a.validation)
    assert a.test and ids(a.test) | ids(a.validation) | ids(a.train) == ids(ds.flights)
    for side in ("train", "validation", "test"):
        assert ids(getattr(a, side)) == ids(getattr(b, side))
    # a size's subset is still the seed's own draw from the same pool
    pool = ids(a.train)
    subsets = {tuple(sorted(ids(split_flights(ds, s, 2).train))) for s in range(6)}
    assert len(subsets) > 1 and all(set(t) <= pool for t in subsets)


def test_train_subset_depends_on_seed_and_size_only(synth_dir):
    ds = load_dataset(str(synth_dir))  # fixed split: the training pool is the same for all seeds
    ids = lambda s: [f.flight_id for f in s.train]  # noqa: E731
    pool = ids(split_flights(ds, seed=0))
    subsets = {}
    for seed in range(6):
        a, b = split_flights(ds, seed=seed, n_train=2), split_flights(ds, seed=seed, n_train=2)
        assert ids(a) == ids(b) and len(ids(a)) == 2 and set(ids(a)) <= set(pool)
        subsets[seed] = tuple(ids(a))
    assert len(set(subsets.values())) > 1  # the seed, not chance, picks the subset
    # test flights never depend on the seed or the size
    assert {tuple(f.flight_id for f in split_flights(ds, s, 1).test) for s in range(6)} == {
        tuple(f.flight_id for f in split_flights(ds, 0).test)
    }


def test_too_few_flights_validation_from_tail(tmp_path):
    from tests.helpers import write_log

    write_log(tmp_path / "only.csv", n=500)
    s = split_flights(load_dataset(str(tmp_path)), seed=0)
    assert s.val_from_tail and len(s.train) == 1 and s.train[0].n_rows == 400
    assert s.validation[0].n_rows == 100
    assert s.validation[0].time[0] > s.train[0].time[-1]


def test_training_windows_hold_no_anomaly_or_test_rows(synth_dir):
    from anomaly.data.training import training_windows

    ds = load_dataset(str(synth_dir))
    split = split_flights(ds, seed=0)
    prep = training_windows(split, window_len=20, stride=5, scaler="standard")
    # every training row is a normal row of a training flight: the scaler saw exactly those rows
    rows = np.concatenate([f.normal_prefix() for f in split.train])
    np.testing.assert_allclose(prep.scaler.center_, rows.mean(axis=0), rtol=1e-4, atol=1e-4)
    # windows, unscaled, are slices of a single training flight's normal part
    raw = prep.train_windows * prep.scaler.scale_ + prep.scaler.center_
    test_rows = np.concatenate([f.values for f in split.test])
    for w in raw[:: max(1, len(raw) // 25)]:
        assert not np.isclose(test_rows, w[0], atol=1e-3).all(axis=1).any()
        assert any(
            np.isclose(f.normal_prefix(), w[0], atol=1e-3).all(axis=1).any()
            and np.isclose(f.normal_prefix(), w[-1], atol=1e-3).all(axis=1).any()
            for f in split.train
        )


def test_leave_one_campaign_out_tests_only_flights_no_setting_was_chosen_on():
    from anomaly.data.datasets import Dataset
    from anomaly.data.schema import Flight
    from anomaly.study.cell import leave_campaign_out

    sides = {"2018-07": ["train", "validation", "test"], "2018-09": ["train", "validation", "test"]}
    flights, split = [], {}
    for month, these in sides.items():
        for i, side in enumerate(these):
            fid = f"carbonZ_{month}-18-11-0{i}-00_engine_failure"
            flights.append(Flight(fid, np.arange(3.0), np.zeros((3, 1), np.float32), ["a"]))
            split[fid] = side
    held = leave_campaign_out(Dataset("alfa", "alfa", flights, fixed_split=split), "2018-09")
    assert held.fixed_split == {
        "carbonZ_2018-07-18-11-00-00_engine_failure": "train",
        "carbonZ_2018-07-18-11-01-00_engine_failure": "validation",
        "carbonZ_2018-09-18-11-02-00_engine_failure": "test",  # not its training or validation
    }
    assert [f.flight_id for f in held.flights] == list(held.fixed_split)


def test_the_robust_scaler_scales_a_channel_with_no_middle_spread_by_its_std():
    # scikit-learn makes a zero IQR a scale of 1: a channel at one value for most of a flight
    # (a throttle at full power) went into the network in raw units, up to -1484..1060 here
    from anomaly.data.scaling import ChannelScaler

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(400, 2))
    held = np.zeros(400)
    held[340:] = rng.normal(0, 200, 60)
    rows = np.column_stack([rows, held])
    s = ChannelScaler("robust").fit(rows)
    assert s.scale_[2] == pytest.approx(held.std(), rel=1e-5)
    assert s.scale_[0] == pytest.approx(np.subtract(*np.percentile(rows[:, 0], [75, 25])), rel=1e-5)
    assert ChannelScaler("robust").fit(np.zeros((10, 1))).scale_[0] == 1.0  # constant: as it is
