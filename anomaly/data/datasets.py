"""Named presets and dataset folders -> a list of validated flights with their split.

A dataset folder holds `flights/*.csv[.gz]` and a `manifest.csv` (per-flight fault type and
onset); it may hold a `split.csv` (file, split) that fixes train / validation / test. Plain
files, folders and globs of logs are datasets too, split at random by a fixed seed
(anomaly.data.splits).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.data.csvfile import READ_OPTIONS, read_errors
from anomaly.data.logs import expand_inputs, flight_id_of, printable, read_flight_log
from anomaly.data.schema import Flight, LogError, LogFormat
from anomaly.data.synthetic import SynthConfig, write_dataset
from anomaly.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_DIR = REPO_ROOT / "data" / "synthetic"

# ALFA clean-up (see the dataset README's caveats): the 26 standard columns are named, so the file
# with 51 duplicated columns reads like the others; delta_roll_airspeed is dropped as a campaign
# artefact (constant after July 2018); delta_yaw is wrapped to [-180, 180).
ALFA_CHANNELS = (
    "field.orientation.x",
    "field.orientation.y",
    "field.orientation.z",
    "field.angular_velocity.x",
    "field.angular_velocity.y",
    "field.angular_velocity.z",
    "field.linear_acceleration.x",
    "field.linear_acceleration.y",
    "field.linear_acceleration.z",
    "field.twist.linear.x",
    "field.twist.linear.y",
    "field.twist.linear.z",
    "field.twist.angular.x",
    "field.twist.angular.y",
    "field.twist.angular.z",
    "field.alt_error",
    "field.aspd_error",
    "field.xtrack_error",
    "delta_yaw",
    "delta_pitch",
    "delta_roll",
    "delta_x",
    "delta_y",
    "delta_z",
)
ALFA_FORMAT = LogFormat(
    sep=",",
    time_col="%time",
    label_col="field.data",
    channels=ALFA_CHANNELS,
    label_onset_to_end=True,
)
ALFA_WRAP_DEGREES = ("delta_yaw",)
SYNTH_FORMAT = LogFormat(sep=",", time_col="time", label_col="label")
SIDES = ("train", "validation", "test")


@dataclass
class Dataset:
    """Flights plus where they came from.

    Attributes
    ----------
    fixed_split : flight_id -> 'train' | 'validation' | 'test' when the dataset fixes its split.
    content_hash : sha256 over file names and bytes, logged so a run names its exact data.
    tables_hash : the same over its `manifest.csv` and `split.csv` ("none" without either):
        they set the fault types and the split, which the logs' hash does not see.
    recordings : flight_id -> recording (split.csv's optional `recording` column): flights cut
        from one sortie, kept on one side of any grouped split.
    """

    name: str
    source: str
    flights: list[Flight]
    fixed_split: dict[str, str] | None = None
    content_hash: str = ""
    fmt: LogFormat = field(default_factory=LogFormat)
    recordings: dict[str, str] | None = None
    tables_hash: str = "none"

    @property
    def channels(self) -> list[str]:
        return self.flights[0].channels

    def select(self, channels: list[str]) -> Dataset:
        """The same flights restricted to `channels`, in that order (views, no copy of the logs)."""
        for ch in channels:
            if ch not in self.channels:
                raise UserError(
                    f"data.channels: {ch!r} is not a channel of {self.name} ({', '.join(self.channels)})"
                )
        flights = [
            dataclasses.replace(
                f,
                values=f.values[:, [f.channels.index(ch) for ch in channels]],
                channels=list(channels),
            )
            for f in self.flights
        ]
        return dataclasses.replace(self, flights=flights)


def alfa_dir() -> Path:
    return Path(os.environ.get("ALFA_DIR", REPO_ROOT.parent / "shared" / "datasets" / "alfa"))


def content_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(os.fsencode(p.name))  # a name that is not UTF-8 is bytes on disk
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A small metadata CSV (manifest.csv, split.csv) with the columns it must have, one row per
    file; any read error, a missing column or a file listed twice is a LogError naming it."""
    with read_errors(path):
        table = pd.read_csv(path, **READ_OPTIONS)
    table.columns = [str(c).strip() for c in table.columns]
    for col in columns:
        if col not in table.columns:
            raise LogError(str(path), f"no '{col}' column", col, 1)
    twice = table["file"].duplicated().to_numpy()
    if twice.any():
        i = int(np.argmax(twice))
        raise LogError(str(path), f"{table['file'].iloc[i]!r} listed twice", "file", i + 2)
    return table


def _read_manifest(folder: Path) -> pd.DataFrame | None:
    path = folder / "manifest.csv"
    if not path.exists():
        return None
    return read_table(path, ("file",)).set_index("file")


def _read_split(path: Path) -> tuple[dict[str, str], dict[str, str] | None]:
    """split.csv -> (flight_id -> side, flight_id -> recording or None)."""
    s = read_table(path, ("file", "split"))
    sides = s["split"].astype(str).str.strip()
    odd = ~sides.isin(SIDES).to_numpy()
    if odd.any():
        i = int(np.argmax(odd))
        why = f"{sides.iloc[i]!r} is not one of {', '.join(SIDES)}"
        raise LogError(str(path), why, "split", i + 2)
    ids = [flight_id_of(Path(str(f))) for f in s["file"]]
    recordings = dict(zip(ids, s["recording"].astype(str))) if "recording" in s else None
    return dict(zip(ids, sides)), recordings


def _check_split(path: Path, split: dict[str, str], logs: dict[str, Path]) -> None:
    """A fixed split places every log and names no other: a log it left out was silently never
    used, and a name with no log (a typo) went unsaid."""
    listed = list(split)
    ghost = [i for i, fid in enumerate(listed) if fid not in logs]
    if ghost:
        why = f"{listed[ghost[0]]!r} names no log in {path.parent}"
        raise LogError(str(path), why, "file", ghost[0] + 2)
    left_out = [p for fid, p in logs.items() if fid not in split]
    if left_out:
        why = (
            f"{len(left_out)} log(s) not in {path.name}, the first {left_out[0].name}; give each "
            "log a side, or move it out of the folder"
        )
        raise LogError(str(path), why, "file")


def flight_ids(paths: list[Path]) -> dict[str, Path]:
    """flight id -> its log: the file's name without .csv/.csv.gz, or, where logs in several
    folders share a name (`2024-01-01/log.csv`, `2024-01-02/log.csv`), its path from the folder
    they share (`2024-01-01/log`), as `score` names their outputs. One id, one flight: two logs
    of one id in one folder (`f0.csv` and `f0.csv.gz`) are refused, since they could put one
    flight on the training side and the test side."""
    stems = [flight_id_of(p) for p in paths]
    ids = stems
    if len(set(stems)) < len(stems):
        resolved = [p.resolve() for p in paths]
        base = Path(os.path.commonpath([r.parent for r in resolved]))
        ids = [
            stem if stems.count(stem) == 1 else (r.parent.relative_to(base) / stem).as_posix()
            for stem, r in zip(stems, resolved)
        ]
    first_of: dict[str, Path] = {}
    for p, fid in zip(paths, ids):
        other = first_of.setdefault(fid, p)
        if other != p:
            why = f"same flight id {fid!r} as {other}; rename or remove one"
            raise LogError(str(p), why)
    return first_of


def _read_flights(paths: list[Path], fmt: LogFormat, faults: dict[Path, str] | None = None):
    """Logs for training, each needing two rows or it has no sample rate. The first log's
    channels are every log's, picked by name: logs written by different tools order their
    columns differently, and a log without one of them is refused by file and column."""
    id_of = {p: fid for fid, p in flight_ids(paths).items()}
    flights: list[Flight] = []
    for path in paths:
        fault = (faults or {}).get(path) or None
        flight = read_flight_log(path, fmt, fault_type=fault)  # every check of its own columns
        if flight.flight_id != printable(id_of[path]):  # a name other logs share
            flight = dataclasses.replace(flight, flight_id=printable(id_of[path]))
        if flight.n_rows < 2:
            raise LogError(str(path), "one data row; a flight for training needs two or more")
        if flights and flight.channels != flights[0].channels:
            first = flights[0].channels
            missing = [c for c in first if c not in flight.channels]
            extra = [c for c in flight.channels if c not in first]
            if missing or extra:
                why = (
                    f"required channel missing (the first log, {paths[0].name}, has it)"
                    if missing
                    else f"a channel the first log ({paths[0].name}) lacks; pick channels with --channels"
                )
                raise LogError(str(path), why, (missing or extra)[0], 1)
            order = [flight.channels.index(c) for c in first]
            flight = dataclasses.replace(
                flight, values=flight.values[:, order], channels=list(first)
            )
        flights.append(flight)
    known_clean = all((faults or {}).get(p) == "none" for p in paths)  # no label is needed
    if fmt.label_col is not None and not known_clean and all(f.labels is None for f in flights):
        # a label column named on purpose that no log has is a typo, not a folder of unlabelled
        # logs: read as one, faulty rows would train the model as normal flight
        others = f" nor in the other {len(paths) - 1} logs" if len(paths) > 1 else ""
        raise LogError(
            str(paths[0]),
            f"label column not found{others}; name it as the logs do (--label-col, or a "
            "config's data.label_col), or leave it out for unlabelled logs",
            fmt.label_col,
            1,
        )
    return flights


def wrap_degrees(flight: Flight, names: tuple[str, ...]) -> None:
    for name in names:
        if name in flight.channels:
            j = flight.channels.index(name)
            flight.values[:, j] = (flight.values[:, j] + 180.0) % 360.0 - 180.0


def load_folder(folder: Path, fmt: LogFormat, name: str | None = None) -> Dataset:
    """A dataset folder (flights/ + manifest.csv [+ split.csv]) or a plain folder of logs."""
    man = _read_manifest(folder)
    paths = expand_inputs([str(folder)])
    if all(p.is_dir() for p in paths):
        raise LogError(str(folder), "no .csv or .csv.gz logs found")
    faults = {}
    for p in paths:
        if man is not None and p.name in man.index:
            value = man.loc[p.name].get("fault_type")
            faults[p] = str(value).strip() if pd.notna(value) else ""
    flights = _read_flights(paths, fmt, faults)
    for flight, p in zip(flights, paths):
        if flight.labels is None and faults.get(p) == "none":
            # a fault-free flight logged without a label column (ALFA's no-failure files): all normal
            flight.labels = np.zeros(flight.n_rows, dtype=np.int8)
        elif flight.labels is None and faults.get(p):
            # unlabelled, the whole flight would count as normal: its fault would train the
            # model, set the scaler and the decision level
            why = (
                f"manifest.csv gives fault type {faults[p]!r} but the log has no label column, "
                "so its faulty rows cannot be kept out of training; add one (1 from the onset)"
            )
            raise LogError(str(p), why)
    split, recordings = None, None
    if (folder / "split.csv").exists():
        split, recordings = _read_split(folder / "split.csv")
        _check_split(folder / "split.csv", split, flight_ids(paths))
    tables = [t for t in (folder / "manifest.csv", folder / "split.csv") if t.is_file()]
    return Dataset(
        name or folder.name,
        str(folder),
        flights,
        split,
        content_hash(paths),
        fmt,
        recordings,
        content_hash(tables) if tables else "none",
    )


def load_alfa(fmt: LogFormat = ALFA_FORMAT) -> Dataset:
    folder = alfa_dir()
    if not (folder / "flights").is_dir():
        raise LogError(
            str(folder),
            "ALFA flights not found; set ALFA_DIR to a folder with flights/, manifest.csv and split.csv "
            "(the public CMU AirLab ALFA dataset, doi:10.1184/R1/12707963, as CSVs per flight)",
        )
    ds = load_folder(folder, fmt, "alfa")
    for f in ds.flights:
        wrap_degrees(f, ALFA_WRAP_DEGREES)
    return ds


def load_synthetic(
    folder: Path = SYNTHETIC_DIR, cfg: SynthConfig | None = None, fmt: LogFormat = SYNTH_FORMAT
) -> Dataset:
    """The built-in synthetic flights, generated on first use (deterministic for a seed)."""
    if not (folder / "manifest.csv").exists():
        write_dataset(folder, cfg or SynthConfig())
    return load_folder(folder, fmt, "synthetic")


def load_dataset(spec: str | list[str], options: dict | None = None) -> Dataset:
    """Resolve a preset name ('synthetic', 'alfa'), a dataset folder, or files / globs of logs.

    `options` are `LogFormat.with_options` keywords (from flags or a config's `data` section);
    each preset applies them over its own format.
    """
    options = options or {}
    specs = [spec] if isinstance(spec, str) else list(spec)
    preset = {k: v for k, v in options.items() if k != "channels"}  # read whole, then selected
    if len(specs) == 1 and specs[0] == "alfa":
        return load_alfa(ALFA_FORMAT.with_options(**preset))
    if len(specs) == 1 and specs[0] == "synthetic":
        return load_synthetic(fmt=SYNTH_FORMAT.with_options(**preset))
    fmt = LogFormat.from_options(**options)
    if len(specs) == 1 and Path(specs[0]).is_dir():
        folder = Path(specs[0])
        return load_folder(folder, fmt, folder.name)
    paths = expand_inputs(specs)
    if all(p.is_dir() for p in paths):
        raise LogError(", ".join(specs), "no .csv or .csv.gz logs found")
    flights = _read_flights(paths, fmt)
    return Dataset("logs", ", ".join(specs), flights, None, content_hash(paths), fmt)
