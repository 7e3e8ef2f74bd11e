"""Flights -> train / validation / test, by flight and never by window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.data.datasets import Dataset
from anomaly.data.schema import Flight
from anomaly.errors import UserError

VAL_TAIL_SHARE = 0.2
SPLIT_SEED = 0  # shuffles logs without a split.csv, whatever the training seed


@dataclass
class Split:
    """Flights on each side. `val_from_tail` says validation was cut from the training flights."""

    train: list[Flight]
    validation: list[Flight]
    test: list[Flight]
    val_from_tail: bool = False

    def describe(self) -> dict[str, str]:
        return {
            "train_flights": ",".join(f.flight_id for f in self.train),
            "validation_flights": ",".join(f.flight_id for f in self.validation),
            "test_flights": ",".join(f.flight_id for f in self.test),
        }


def _tail(flight: Flight, share: float) -> tuple[Flight, Flight]:
    """Cut the last `share` of a flight's normal prefix off as a validation piece."""
    normal = len(flight.normal_prefix())
    cut = int(normal * (1 - share))
    head = Flight(
        flight.flight_id,
        flight.time[:cut],
        flight.values[:cut],
        flight.channels,
        None if flight.labels is None else flight.labels[:cut],
        flight.fault_type,
    )
    tail = Flight(
        f"{flight.flight_id}:tail",
        flight.time[cut:normal],
        flight.values[cut:normal],
        flight.channels,
        None if flight.labels is None else flight.labels[cut:normal],
        flight.fault_type,
    )
    return head, tail


def split_flights(
    ds: Dataset,
    seed: int = 0,
    n_train: int | None = None,
    val_share: float = 0.15,
    test_share: float = 0.25,
) -> Split:
    """Split a dataset by flight.

    The dataset's fixed split wins where it has one; otherwise flights are shuffled by a fixed
    seed, not by `seed`: a seed varies weights and training subsets, never which flights are
    tested, so runs of several seeds are judged on the same test flights (a study pairs its cells
    by seed and test flight). `n_train` takes that many training flights, chosen by `seed`
    alone, so every model sees the same subset for a given size and seed. With no
    validation flight, validation is the tail of each training flight's normal part.
    """
    if ds.fixed_split is not None:
        side = {
            s: [f for f in ds.flights if ds.fixed_split.get(f.flight_id) == s]
            for s in ("train", "validation", "test")
        }
        train, val, test = side["train"], side["validation"], side["test"]
    else:
        order = np.random.default_rng(SPLIT_SEED).permutation(len(ds.flights))
        flights = [ds.flights[i] for i in order]
        n = len(flights)
        n_test = int(round(n * test_share)) if n >= 3 else 0
        n_val = int(round(n * val_share)) if n >= 4 else 0
        test, val, train = (
            flights[:n_test],
            flights[n_test : n_test + n_val],
            flights[n_test + n_val :],
        )
    if n_train is not None:
        if n_train < 1 or n_train > len(train):
            raise UserError(
                f"--train-flights {n_train}: the training pool has {len(train)} flights"
            )
        pick = np.random.default_rng(10_000 + seed).permutation(len(train))[:n_train]
        train = [train[i] for i in sorted(pick)]
    if not train:
        raise UserError(f"dataset '{ds.name}' has no training flight")
    from_tail = not val
    if from_tail:
        pieces = [_tail(f, VAL_TAIL_SHARE) for f in train]
        train, val = [h for h, _ in pieces], [t for _, t in pieces]
    return Split(train, val, test, from_tail)


def recording_folds(ds: Dataset, k: int = 5, seed: int = 0) -> dict[str, int]:
    """Training and validation flights -> one of `k` folds, whole recordings per fold, seeded.

    For choosing settings by cross-validation without test flights: flights cut from one sortie
    share a fold (the dataset's `recordings`; otherwise each flight is its own group), and a
    fixed split's test flights never appear.
    """
    side = ds.fixed_split or {}
    pool = [f.flight_id for f in ds.flights if side.get(f.flight_id, "train") != "test"]
    group = {f: (ds.recordings or {}).get(f, f) for f in pool}
    groups = sorted(set(group.values()))
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[j]: i % k for i, j in enumerate(order)}
    return {f: fold_of[group[f]] for f in pool}


def split_scheme(ds: Dataset) -> str:
    """How a dataset is split, for a sweep to record and match on: its split.csv, or plain
    logs shuffled by SPLIT_SEED (before that seed, each training seed drew its own split)."""
    return "split.csv" if ds.fixed_split is not None else f"shuffled by seed {SPLIT_SEED}"
