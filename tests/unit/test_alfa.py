"""The ALFA preset loads every shared flight with the manifest's onsets and the fixed split."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from anomaly.data.datasets import alfa_dir, load_dataset
from anomaly.data.schema import LogError
from anomaly.data.splits import split_flights
from tests.helpers import needs_alfa


@pytest.fixture(scope="module")
def alfa():
    needs_alfa()
    return load_dataset("alfa")


def test_every_flight_loads_with_manifest_onsets(alfa):
    man = pd.read_csv(alfa_dir() / "manifest.csv")
    assert len(alfa.flights) == len(man) == 45
    by_id = {f.flight_id: f for f in alfa.flights}
    for row in man.itertuples():
        f = by_id[row.file[:-4]]
        assert f.n_rows == row.rows and f.fault_type == row.fault_type
        assert "delta_roll_airspeed" not in f.channels and len(f.channels) == 24
        if isinstance(row.fault_onset_s, float) and math.isnan(row.fault_onset_s):
            assert f.onset_index is None
        else:
            assert f.time[f.onset_index] == pytest.approx(row.fault_onset_s, abs=1e-6)
            assert f.labels[f.onset_index :].all()  # the fault is never repaired


def test_delta_yaw_wrapped(alfa):
    for f in alfa.flights:
        j = f.channels.index("delta_yaw")
        assert f.values[:, j].min() >= -180 and f.values[:, j].max() < 180


def test_fixed_split_matches_split_csv(alfa):
    s = split_flights(alfa, seed=5)
    table = pd.read_csv(alfa_dir() / "split.csv")
    for side in ("train", "validation", "test"):  # the same flights on each side, not only as many
        expected = set(table.loc[table["split"] == side, "file"].str.removesuffix(".csv"))
        assert {f.flight_id for f in getattr(s, side)} == expected
    assert (len(s.train), len(s.validation), len(s.test)) == (17, 8, 20)
    assert [f.flight_id for f in split_flights(alfa, seed=9).test] == [f.flight_id for f in s.test]


def test_missing_alfa_says_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(LogError, match="ALFA_DIR.*doi:10.1184/R1/12707963"):
        load_dataset("alfa")


def test_tuning_folds_hold_whole_recordings_and_no_test_flight(alfa):
    from anomaly.data.splits import recording_folds

    folds = recording_folds(alfa)
    split = pd.read_csv(alfa_dir() / "split.csv")
    split["flight_id"] = split["file"].str.removesuffix(".csv")
    tuning = split[split["split"] != "test"]
    assert set(folds) == set(tuning["flight_id"])  # 25 flights; the 20 test flights never appear
    assert len(folds) == 25 and set(folds.values()) == set(range(5))
    for _, g in tuning.groupby("recording"):
        assert len({folds[f] for f in g["flight_id"]}) == 1
