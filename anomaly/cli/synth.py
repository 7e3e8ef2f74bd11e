"""`anomaly synth`: write a folder of synthetic flights with injected faults."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from anomaly.cli.common import non_negative_int, positive_float, positive_int, unit_share


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic dataset folder")
    p.add_argument("--out", required=True, help="the dataset folder to write")
    p.add_argument("--flights", type=positive_int, default=64, help="default: %(default)s")
    p.add_argument("--seed", type=non_negative_int, default=0, help="default: %(default)s")
    p.add_argument(
        "--rate-hz", type=float, default=20.0, choices=[10.0, 20.0], help="default: %(default)s"
    )
    p.add_argument(
        "--min-duration", type=positive_float, default=60.0, help="seconds (default: %(default)s)"
    )
    p.add_argument(
        "--max-duration", type=positive_float, default=240.0, help="seconds (default: %(default)s)"
    )
    p.add_argument(
        "--fault-free-share",
        type=unit_share,
        default=0.25,
        help="share of flights with no fault (default: %(default)s)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    p.set_defaults(func=run)


DATASET_FILES = {"flights", "manifest.csv", "split.csv", "synth.json"}  # synth's, a sweep's


def synth_files(out: Path) -> set[str]:
    """The flights of the dataset in `out`: those its manifest lists that are files of its
    `flights/` (a name with a folder in it, `../x` or `/x`, names none), and after a run that
    did not finish, the flights synth names (`flight_000.csv`, ...)."""
    from anomaly.data.datasets import read_table
    from anomaly.data.logs import UNFINISHED

    manifest = out / "manifest.csv"
    names = (
        {str(f) for f in read_table(manifest, ("file",))["file"]} if manifest.is_file() else set()
    )
    flights = {p.name for p in (out / "flights").glob("*.csv") if p.is_file()}
    if (out / UNFINISHED).exists():
        names |= {n for n in flights if re.fullmatch(r"flight_\d{3,}\.csv", n)}
    return names & flights


def run(args: argparse.Namespace) -> int:
    from anomaly.data.logs import UNFINISHED
    from anomaly.data.synthetic import SynthConfig, write_dataset
    from anomaly.errors import UserError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    held = [p for p in sorted(out.iterdir()) if not p.name.startswith(".")] if out.is_dir() else []
    if held and not args.overwrite:
        # a second dataset written over the first would mix their flights
        what = "a dataset" if (out / "manifest.csv").exists() else f"files ({held[0].name}, ...)"
        raise UserError(f"--out {out}: already holds {what}; pass --overwrite to replace a dataset")
    ours = synth_files(out)
    if theirs := [p for p in held if p.name not in DATASET_FILES] + [
        p for p in (out / "flights").glob("*") if p.name not in ours and not p.name.startswith(".")
    ]:
        raise UserError(
            f"--out {out}: holds {theirs[0]}, which synth did not write; move it first, or "
            "write the dataset to another folder"
        )

    if args.min_duration > args.max_duration:
        raise UserError(
            f"--min-duration {args.min_duration:g} (default 60) is above --max-duration "
            f"{args.max_duration:g}; lower --min-duration too"
            if args.min_duration == 60.0
            else f"--min-duration {args.min_duration:g} is above --max-duration "
            f"{args.max_duration:g}"
        )
    if args.min_duration < 10.0:
        raise UserError(f"--min-duration {args.min_duration:g}: a flight needs 10 s or more")
    if args.flights < 3:
        raise UserError(
            f"--flights {args.flights}: 3 or more (a training, a validation and a test flight)"
        )
    cfg = SynthConfig(
        n_flights=args.flights,
        seed=args.seed,
        rate_hz=args.rate_hz,
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
        fault_free_share=args.fault_free_share,
    )
    out.mkdir(parents=True, exist_ok=True)
    unfinished = out / UNFINISHED  # until the last file is written, every command refuses out
    unfinished.write_text("anomaly synth was writing here and did not finish\n")
    (out / "synth.json").unlink(missing_ok=True)  # a sweep's record of other settings
    man = write_dataset(out, cfg)
    for name in ours - set(man["file"]):  # the replaced dataset's flights the new one lacks
        (out / "flights" / name).unlink(missing_ok=True)
    unfinished.unlink()
    counts = man["fault_type"].value_counts().to_dict()
    print(f"wrote {len(man)} flights to {Path(args.out) / 'flights'} ({counts})")
    return 0
