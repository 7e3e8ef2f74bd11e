"""`anomaly search`: the equal-budget hyper-parameter search of a study's arm (Optuna)."""

from __future__ import annotations

import argparse

import yaml

from anomaly.cli.common import non_negative_int, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "search",
        help="tune one arm of a study on validation flights (VUS-PR), logged to MLflow",
    )
    p.add_argument("spec", help="study spec YAML, e.g. experiments/small_data.yaml")
    p.add_argument("--arm", required=True, help="the arm to tune (its model's search space)")
    p.add_argument("--size", type=positive_int, required=True, help="training flights")
    p.add_argument("--trials", type=positive_int, default=10, help="the budget (default 10)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from anomaly.study.search import search, searched_data, spec_arm
    from anomaly.study.spec import SweepSpec
    from anomaly.study.sweep import prepare_data
    from anomaly.track.tracker import Tracker, git_commit, git_dirty, library_versions, machine

    spec = SweepSpec.from_yaml(args.spec)
    spec_arm(spec, args.arm)
    ds = prepare_data(spec)
    searched_data(ds, args.size)  # refused before a parent run is logged
    experiment = f"{spec.experiment}-search"
    about = f"Searches of study '{spec.name}': a parent run per arm and size, a child per trial."
    tracker = Tracker(experiment, description=about)
    name = f"search-{args.arm}-n{args.size}"
    tags = {"anomaly.role": "search", "anomaly.arm": args.arm, "anomaly.size": str(args.size)}
    with tracker.run(name, tags=tags) as parent:
        settings = {"spec": args.spec, "arm": args.arm, "size": args.size, "seed": args.seed}
        # what the search ran on and with, as a training run records it
        source = {
            "data.content_hash": ds.content_hash,
            "data.tables_hash": ds.tables_hash,
            "data.source": ds.source,
            "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "libraries": library_versions(),
            "machine": machine(),
        }
        tracker.log_params(parent, {**settings, "trials": args.trials, **source})

        def log_trial(record: dict) -> None:
            over = record["overrides"]
            flat = {f"{s}.{k}": v for s, d in over.items() for k, v in d.items()}
            child_tags = {**tags, "anomaly.role": "search-trial"}
            with tracker.run(f"{name}-t{record['number']}", parent, child_tags) as child:
                # the whole config, as a training run logs it: a trial compares and reruns
                tracker.log_params(child, {**record["config"], **source})
                # on the validation flights: `vus_pr` elsewhere is the test flights'
                score = {f"validation_{spec.primary}": record["value"]}
                tracker.log_metrics(child, {**score, **record["cost"]})
            # one line per trial: a search of tens of minutes shows its progress, and its
            # printed output is the trial table a results folder keeps
            point = " ".join(
                f"{k.split('.', 1)[1]}={f'{v:.4g}' if isinstance(v, float) else v}"
                for k, v in flat.items()
            )
            line = f"trial {record['number']}: {spec.primary} {record['value']:.4f} {point}"
            print(line, flush=True)

        result = search(spec, ds, args.arm, args.size, args.trials, args.seed, log_trial)
        tracker.log_dict(parent, {"best": result.best, "value": result.best_value}, "best.json")
        tracker.log_metrics(parent, {f"best_validation_{spec.primary}": result.best_value})
    print(f"best {spec.primary} {result.best_value:.4f} on validation flights; for the spec:")
    print(yaml.safe_dump({args.size: result.best}, sort_keys=True).rstrip())
    return 0
