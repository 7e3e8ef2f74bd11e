"""`anomaly report`: the study's tables, figures and verdicts, from its MLflow records alone.

Every verdict phrase comes from the rules in anomaly.evaluate.statistics: per training size, the
paired difference of the primary metric with a two-way (seeds x test flights) bootstrap interval,
Holm-corrected across sizes, and an equivalence test at the spec's margin; overall, the same
rules on the difference averaged over sizes, beside a mixed model of the metric on architecture
x log2(training flights) with a random intercept per seed for the trend. Training cost is called
on time to quality (a sign test over seeds), not on fit time, which early stopping decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.errors import UserError
from anomaly.evaluate import statistics as st
from anomaly.study import report_figures as fig
from anomaly.study.archive import FILE_NAME as ARCHIVE_FILE
from anomaly.study.archive import export_archive
from anomaly.study.cell import ORDER_FAULT
from anomaly.study.records import Records, load_records
from anomaly.study.spec import factorial_arm_name

log = logging.getLogger(__name__)
TARGET_LOSS_FACTOR = 1.1  # time to quality: first epoch within 10 % of the seed's worse best loss
OVERALL_BOOTSTRAP = 20000  # one test, often near the bar: Monte Carlo error of p about 0.002


def archived_note(r: Records) -> str:
    """Which cells were imported from an archive, from how many versions of the code and on
    which machines: an archive's cells may predate a fix that does not change a cell's
    settings, and their timings belong to the machine that ran them."""
    note = ""
    if "source" in r.cells and (r.cells["source"] != "").any():
        parts = [f"{n} from {src}" for src, n in r.cells["source"].value_counts().items() if src]
        note += f"; of the finished cells, {', '.join(parts)} (`anomaly sweep --resume-from`)"
    commits = sorted(set(r.cells.get("git_commit", pd.Series(dtype=str))) - {""})
    if len(commits) == 1:
        note += f"; cells ran at commit {commits[0][:8]}"
    elif commits:
        note += f"; cells ran at {len(commits)} commits: " + ", ".join(c[:8] for c in commits)
    machines = r.cells.get("machine", pd.Series(dtype=str)).fillna("")
    known, unknown = machines[machines != ""].value_counts(), int((machines == "").sum())
    if len(known) > 1 or (len(known) and unknown):
        note += f"; cells ran on {len(known)} recorded machine setup(s): " + ", ".join(
            f"{m} ({n})" for m, n in known.items()
        )
    if len(known) and unknown:
        note += f"; {unknown} cells predate the record of their machine"
    return note


def same_machine(r: Records, a: str, b: str, size: int) -> set[int]:
    """Seeds whose two cells may race: run on one recorded machine setup (CPU, cores,
    threads, GPU), or both from before the record existed (then in the same sweep). One cell
    with the record and one without ran at different times, beside other work (an arm rerun
    after its settings were refrozen, say), so that seed is left out; the report counts it."""
    c = r.cells[(r.cells["train_flights"] == size) & (r.cells["held_out"] == "")]
    c = c.assign(machine=c["machine"].fillna("") if "machine" in c else "")
    by = {arm: dict(zip(g["seed"], g["machine"])) for arm, g in c.groupby("arm")}
    ma, mb = by.get(a, {}), by.get(b, {})
    return {int(s) for s in set(ma) & set(mb) if ma[s] == mb[s]}


def split_list(text: str | None) -> list[str]:
    return [x for x in (text or "").split(",") if x]


def fmt(ci: st.Interval, digits: int = 3) -> str:
    if ci.n == 0 or np.isnan(ci.mean):
        return "-"
    return f"{ci.mean:.{digits}f} [{ci.low:.{digits}f}, {ci.high:.{digits}f}]"


def signed(ci: st.Interval) -> str:
    return f"{ci.mean:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"


def matrix(
    r: Records, arm: str, size: int, metric: str, fault: str | None = None, held_out: str = ""
) -> pd.DataFrame:
    """(seeds, flights) of one arm's per-flight metric at one size."""
    f = r.flights
    sel = (f["arm"] == arm) & (f["train_flights"] == size) & (f["held_out"] == held_out)
    if fault is not None:
        sel &= f["fault_type"] == fault
    return f[sel].pivot_table(index="seed", columns="flight_id", values=metric, aggfunc="mean")


def paired_matrix(
    r: Records, a: str, b: str, size: int, metric: str, fault: str | None = None, held_out: str = ""
) -> np.ndarray:
    """D[seed, flight] = a - b on the seeds and flights both arms have."""
    A = matrix(r, a, size, metric, fault, held_out)
    B = matrix(r, b, size, metric, fault, held_out)
    seeds = A.index.intersection(B.index)
    flights = A.columns.intersection(B.columns)
    return (A.loc[seeds, flights] - B.loc[seeds, flights]).to_numpy()


def paired_stack(r: Records, a: str, b: str, sizes: list[int], metric: str) -> np.ndarray:
    """D[size, seed, flight] = a - b on one grid of seeds and flights (NaN where a size lacks
    one), so that a bootstrap draws the same seeds and flights at every size."""
    mats = [matrix(r, a, size, metric) - matrix(r, b, size, metric) for size in sizes]
    seeds = sorted(set().union(*(m.index for m in mats)))
    flights = sorted(set().union(*(m.columns for m in mats)))
    return np.stack([m.reindex(index=seeds, columns=flights).to_numpy() for m in mats])


def cell_values(r: Records, arm: str, size: int, metric: str) -> np.ndarray:
    c = r.cells
    sel = (c["arm"] == arm) & (c["train_flights"] == size) & (c["held_out"] == "")
    return c.loc[sel, metric].to_numpy(dtype=float) if metric in c else np.array([])


def sizes_of(r: Records, arm: str) -> list[int]:
    c = r.cells
    return sorted(c.loc[(c["arm"] == arm) & (c["held_out"] == ""), "train_flights"].unique())


# -- the sections ----------------------------------------------------------------------------------
def comparison_rows(
    r: Records, a: str, b: str, metric: str, margin: float, fault: str | None = None
) -> list[dict]:
    """Per size: the paired comparison, Holm-corrected across sizes, and its verdict."""
    rows = []
    for size in sorted(set(sizes_of(r, a)) & set(sizes_of(r, b))):
        D = paired_matrix(r, a, b, size, metric, fault)
        if D.size == 0 or not np.isfinite(D).any():
            continue
        rows.append({"size": size, "cmp": st.compare(D, margin, seed=size)})
    return with_verdicts(rows, a, b, margin)


def with_verdicts(rows: list[dict], a: str, b: str, margin: float) -> list[dict]:
    """Holm-correct the rows' p-values across the family (sizes, or held-out campaigns) and
    call each row's verdict from the corrected values."""
    p = st.holm([row["cmp"].p_value for row in rows])
    pe = st.holm([row["cmp"].p_equivalent for row in rows])
    for row, p_adj, pe_adj in zip(rows, p, pe):
        row["p_holm"], row["p_equivalent_holm"] = p_adj, pe_adj
        row["verdict"] = st.verdict(row["cmp"].diff, p_adj, pe_adj, margin, a, b)
    return rows


def mixed_model_line(model: dict, primary: str, a: str) -> str:
    head = f"Mixed model {primary} ~ architecture x log2(training flights) + (1 | seed), "
    if "error" in model:
        return head + f"{model['cells']} cells: not fitted ({model['error']})."
    return head + (
        f"{model['cells']} cells: {a} effect at one flight {model['arch']:+.3f} "
        f"(p = {model['arch_p']:.3g}), change per doubling of flights "
        f"{model['interaction']:+.3f} (p = {model['interaction_p']:.3g}); averaged over the "
        f"sizes {model_effect(model)} (p = {model['mean_effect_p']:.3g})."
    )


def model_effect(model: dict) -> str:
    """The mixed model's size-averaged effect with its 95 % Wald interval."""
    est, half = model["mean_effect"], 1.96 * model["mean_effect_se"]
    return f"{est:+.3f} [{est - half:+.3f}, {est + half:+.3f}]"


def ruled_out(rows: list[dict], a: str, b: str) -> str:
    """What the intervals exclude at every size."""
    if not rows:
        return ""
    a_max = max(row["cmp"].diff.high for row in rows)
    b_max = max(-row["cmp"].diff.low for row in rows)
    return (
        f"an advantage of {a} above {a_max:+.3f} and of {b} above {b_max:+.3f} is excluded at "
        "every size (each size's 95 % two-way bootstrap interval, not corrected across sizes)"
    )


def comparison_table(rows: list[dict], a: str, b: str, label: str) -> list[str]:
    md = [
        f"| training flights | {label}: {a} - {b} [95 % CI] | seeds x flights | p | p (Holm) | "
        "TOST p (Holm) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        c = row["cmp"]
        md.append(
            f"| {row['size']} | {signed(c.diff)} | {c.seeds} x {c.flights} | {c.p_value:.4f} | "
            f"{row['p_holm']:.4f} | {row['p_equivalent_holm']:.4f} | {row['verdict']} |"
        )
    return md


def training_rule(deep: pd.DataFrame) -> list[str]:
    """The stopping rule in words, from the settings the deep cells were trained with."""

    def one(key: str, fmt: str = "{:g}") -> str:
        values = sorted({v for v in deep.get(key, pd.Series(dtype=float)).dropna()})
        return " or ".join(fmt.format(v) for v in values) or "-"

    steps = one("steps_per_epoch")
    kinds = [] if steps == "-" else [f"{steps} optimizer steps"]
    if not kinds or deep.get("steps_per_epoch", pd.Series(dtype=float)).isna().any():
        kinds.append("one pass over its training windows")
    epoch = " or ".join(kinds)
    fall = one("min_improvement", "{:.1%}")
    bar = "no fall" if fall in ("-", "0.0%") else f"no fall of more than {fall}"
    return [
        f"Every deep cell trains to a validation plateau: an epoch is {epoch}, and training "
        f"stops once {one('patience')} epochs in a row bring {bar} of the best validation "
        "loss, though never during the learning-rate warm-up, or at the cap of "
        f"{one('max_epochs')} epochs. A cell stopped by the cap may still have been improving."
    ]


def training_section(c: pd.DataFrame, arms: list[str]) -> tuple[list[str], float]:
    deep = c[c.get("epochs", pd.Series(0, index=c.index)).fillna(0) > 0]
    md = ["## Training", "", *training_rule(deep), ""]
    md += [
        "| arm | cells | epochs (median) | best epoch (median) | steps (median) | hit the cap | "
        "fit s (median) | validation s (median) | checkpoint s (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        sub = c[c["arm"] == arm]
        if "epochs" not in sub or sub["epochs"].fillna(0).max() == 0:
            continue
        cap = sub["hit_max_epochs"].mean() if "hit_max_epochs" in sub else float("nan")
        # runs logged before checkpoint time was counted apart have none
        ckpt = sub["checkpoint_seconds"].median() if "checkpoint_seconds" in sub else float("nan")
        md.append(
            f"| {arm} | {len(sub)} | {sub['epochs'].median():.0f} | {sub['best_epoch'].median():.0f} "
            f"| {sub['steps'].median():.0f} | {cap:.0%} | {sub['fit_seconds'].median():.1f} | "
            f"{sub['validate_seconds'].median():.1f} | {'-' if np.isnan(ckpt) else f'{ckpt:.1f}'} |"
        )
    share = deep["hit_max_epochs"].mean() if len(deep) else float("nan")
    return [*md, "", f"Share of deep cells that hit the epoch cap: **{share:.1%}**.", ""], share


def metric_table(r: Records, arms: list[str], metric: str, label: str) -> list[str]:
    sizes = sorted(set().union(*(sizes_of(r, a) for a in arms)))
    md = [
        "| arm | " + " | ".join(f"{s} flights" for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for arm in arms:
        cells = []
        for s in sizes:
            values = cell_values(r, arm, s, metric)
            cells.append(fmt(st.mean_interval(values, seed=s)) if len(values) else "-")
        md.append(f"| {arm} | " + " | ".join(cells) + " |")
    return [f"**{label}** (mean over seeds [95 % bootstrap interval])", "", *md, ""]


def cost_section(r: Records, a: str, b: str) -> tuple[list[str], list[dict]]:
    """Claim 2: time to quality (the verdict), fit time and per-row inference cost."""
    md = [
        "## Claim 2: training and inference cost",
        "",
        f"Time to quality, the verdict's measure: per seed, the optimizer-step time until the "
        f"validation loss first comes within {TARGET_LOSS_FACTOR - 1:.0%} of the worse of the two "
        "arms' best validation losses, a quality both reach. The arm that gets there first wins "
        "the seed (equal times tie); an exact sign test over seeds, Holm-corrected across sizes, "
        "calls the faster arm. Fit time is all optimizer steps (forward, backward, update; "
        "validation, checkpoints and set-up excluded), however long early stopping let the cell "
        "run. Measured on the CPU of the machine that ran each cell; a seed whose two cells ran on "
        "different recorded machine setups is left out of every column.",
        "",
        f"| training flights | time to quality s {a} (median) | time to quality s {b} (median) "
        f"| first there {a} : {b} | sign test p (Holm) | faster to quality | fit s {a} | fit s {b} "
        f"| {b} / {a} fit time [95 % CI] | inference us/row {a} | inference us/row {b} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows, apart = [], {}
    for size in sorted(set(sizes_of(r, a)) & set(sizes_of(r, b))):
        fa, fb = (_by_seed(r, arm, size, "fit_seconds") for arm in (a, b))
        if not set(fa) & set(fb):
            continue  # no fit times for both arms at this size
        paired = same_machine(r, a, b, size)
        apart[size] = len(set(fa) & set(fb) - paired)
        fa, fb = ({s: v for s, v in f.items() if s in paired} for f in (fa, fb))
        seeds = sorted(set(fa) & set(fb))
        ratio = st.mean_interval([np.log(fb[s] / fa[s]) for s in seeds], seed=size)
        ta, tb = (
            {s: v for s, v in time_to_quality(r, arm, size, (a, b)).items() if s in paired}
            for arm in (a, b)
        )
        both = sorted(set(ta) & set(tb))
        wins = (sum(ta[s] < tb[s] for s in both), sum(tb[s] < ta[s] for s in both))
        us = [_by_seed(r, arm, size, "score_us_per_row") for arm in (a, b)]
        us = [[v for s, v in u.items() if s in paired] for u in us]
        row = dict(size=size, fa=fa, fb=fb, ratio=ratio, ta=ta, tb=tb, wins=wins, us=us)
        rows.append({**row, "n": len(both)})
    p_holm = st.holm([st.sign_test(*row["wins"]) for row in rows])
    for row, p in zip(rows, p_holm):
        wins_a, wins_b = row["wins"]
        if not row["fa"]:
            row["verdict"] = "not raced: no seed's two cells ran on one machine setup"
        elif not row["n"]:
            row["verdict"] = "not measured"  # no training curves for both arms
        elif p < 0.05:
            row["verdict"] = (a if wins_a > wins_b else b) + " faster"
        else:
            row["verdict"] = "inconclusive"
        ratio = row["ratio"]
        fit_ratio = (
            f"{np.exp(ratio.mean):.2f} [{np.exp(ratio.low):.2f}, {np.exp(ratio.high):.2f}]"
            if ratio.n
            else "-"
        )
        md.append(
            f"| {row['size']} | {_median(row['ta'].values())} | {_median(row['tb'].values())} | "
            f"{wins_a} : {wins_b} | {p:.3g} | {row['verdict']} | {_median(row['fa'].values())} | "
            f"{_median(row['fb'].values())} | {fit_ratio} | {_median(row['us'][0], 0)} | "
            f"{_median(row['us'][1], 0)} |"
        )
    windows = {row["size"]: _windows(r, (a, b), row["size"]) for row in rows}
    unlike = {size: w for size, w in windows.items() if len(w) == 2 and w[a] != w[b]}
    if unlike:
        md += [
            "",
            "Where the arms' windows differ, each validation loss is a one-step forecast error "
            "averaged over windows of another length, so the target is a level each reaches on "
            "its own yardstick rather than one forecast quality: "
            + ", ".join(
                f"{size} flights ({a} {w[a]:g} rows, {b} {w[b]:g})" for size, w in unlike.items()
            )
            + ".",
        ]
    if any(apart.values()):
        md += [
            "",
            "Left out, their two cells on different machine setups (or one without the "
            "record): "
            + ", ".join(f"{n} seeds at {size} flights" for size, n in apart.items() if n)
            + ".",
        ]
    return [*md, ""], rows


def _median(values, digits: int = 1) -> str:
    values = list(values)
    return f"{np.median(values):.{digits}f}" if values else "-"


def _by_seed(r: Records, arm: str, size: int, metric: str) -> dict[int, float]:
    c = r.cells
    sub = c[(c["arm"] == arm) & (c["train_flights"] == size) & (c["held_out"] == "")]
    if metric not in sub:
        return {}
    return {int(s): float(v) for s, v in zip(sub["seed"], sub[metric]) if np.isfinite(v)}


def _windows(r: Records, arms: tuple[str, str], size: int) -> dict[str, float]:
    """Arm -> its window length at `size` (the first cell's), for the arms whose cells record
    one."""
    c = r.cells
    if "window_len" not in c:
        return {}
    out = {}
    for arm in arms:
        w = c.loc[(c["arm"] == arm) & (c["train_flights"] == size), "window_len"].dropna()
        if len(w):
            out[arm] = float(w.iloc[0])
    return out


def time_to_quality(r: Records, arm: str, size: int, pair: tuple[str, str]) -> dict[int, float]:
    """Seed -> optimizer seconds until the validation loss first comes within the target of the
    seed's worse best loss of the pair: a quality both arms reach, so the race is about speed
    alone (which arm ends lower is claim 1's business). Seeds without a time are left out."""
    cv = r.curves
    if cv.empty:
        return {}
    at = cv[(cv["train_flights"] == size) & (cv["held_out"] == "") & cv["arm"].isin(pair)]
    worse = at.groupby(["seed", "arm"])["val_loss"].min().unstack()
    out = {}
    for seed, g in at[at["arm"] == arm].groupby("seed"):
        best = worse.loc[seed].reindex(list(pair))
        if best.isna().any():  # only one arm has this seed: no race
            continue
        hit = g[g["val_loss"] <= float(best.max()) * TARGET_LOSS_FACTOR].sort_values("epoch")
        t = float(hit["fit_seconds"].iloc[0]) if len(hit) else float("nan")
        if np.isfinite(t):
            out[int(seed)] = t
    return out


def scaling_section(
    r: Records, a: str, arms: list[str], primary: str, margin: float
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Claim 3: Transformers at multiples of the LSTM's parameters, at every size, on every
    test flight and on temporal-order flights alone (each its own Holm family).

    Returns the section and (which flights, verdict, evidence) per family."""
    md = [
        f"## Claim 3: does a Transformer need many times more parameters to match {a}?",
        "",
        f"Each arm's parameters are counted on the channels and window it uses. An arm *matches* "
        f"{a} at a size when the paired difference is within ±{margin:g} (TOST) or in the arm's "
        f"favour; p-values are Holm-corrected over every arm and size, separately for every test "
        "flight and for the temporal-order flights.",
        "",
        f"| training flights | arm | parameters (x {a}) | {primary}: {a} - arm [95 % CI] | "
        f"verdict | on temporal-order flights [95 % CI] | verdict there |",
        "|---|---|---|---|---|---|---|",
    ]
    families = {"every test flight": None, "temporal-order flights": ORDER_FAULT}
    called = {}
    for name, fault in families.items():
        found = []
        for arm in arms:
            for size in sorted(set(sizes_of(r, a)) & set(sizes_of(r, arm))):
                d = paired_matrix(r, a, arm, size, primary, fault)
                if d.size and np.isfinite(d).any():
                    found.append((size, arm, st.compare(d, margin, seed=size)))
        p = st.holm([c.p_value for _, _, c in found])
        pe = st.holm([c.p_equivalent for _, _, c in found])
        called[name] = {
            (size, arm): (c, st.verdict(c.diff, p_adj, pe_adj, margin, a, arm))
            for (size, arm, c), p_adj, pe_adj in zip(found, p, pe)
        }
    ratios = {}
    for size, arm in called["every test flight"]:
        ratios[size, arm] = np.nanmean(cell_values(r, arm, size, "n_params")) / np.nanmean(
            cell_values(r, a, size, "n_params")
        )
        c, v = called["every test flight"][size, arm]
        oc, ov = called["temporal-order flights"].get((size, arm), (None, "-"))
        o = signed(oc.diff) if oc else "-"
        md.append(
            f"| {size} | {arm} | {ratios[size, arm]:.1f}x | {signed(c.diff)} | {v} | {o} | {ov} |"
        )
    summary = [
        (name, *_smallest_match(calls, ratios, a, arms[0]))
        for name, calls in called.items()
        if calls
    ]
    return [*md, ""], summary


def _smallest_match(calls: dict, ratios: dict, a: str, first_arm: str) -> tuple[str, str]:
    """Claim 3's verdict from the smallest arm, by parameters, that matches `a` at each size.
    The claim holds at a size only where every smaller arm is shown worse (`a` better): an
    inconclusive one might match too, and then the smallest matching multiple is not known."""
    kinds, first = {}, {}
    for s in sorted({size for size, _ in calls}):
        arms = sorted(
            (x for size, x in calls if size == s), key=lambda x: ratios.get((s, x), np.inf)
        )
        verdicts = [calls[s, x][1] for x in arms]
        at = [i for i, v in enumerate(verdicts) if v not in (f"{a} better", "inconclusive")]
        if not at:
            kinds[s], first[s] = "inconclusive", "none"
            continue
        m = at[0]
        first[s] = f"{arms[m]} ({ratios.get((s, arms[m]), np.nan):.1f}x)"
        open_ = [x for x, v in zip(arms[:m], verdicts[:m]) if v == "inconclusive"]
        if m == 0:
            kinds[s] = "not reproduced"
        elif not open_:
            kinds[s] = "reproduced"
        else:
            kinds[s] = "inconclusive"
            first[s] += f", {', '.join(open_)} inconclusive"
    found = set(kinds.values())
    definite = found - {"inconclusive"}
    verdict = found.pop() if len(found) == 1 else "differs by size" if definite else "inconclusive"
    evidence = "smallest matching arm per size: " + ", ".join(f"{s}: {first[s]}" for s in first)
    return verdict, evidence


def factorial_arm_names(spec: dict) -> list[str]:
    return [
        factorial_arm_name(spec["base"], pe, ro)
        for pe in spec["positional"]
        for ro in spec["readout"]
    ]


def factorial_section(r: Records, spec: dict, a: str, margin: float) -> tuple[list[str], str, str]:
    """Claim 4: positional encoding x readout on temporal-order faults, with the order control."""
    arms = factorial_arm_names(spec)
    refs = [x for x in (a, "linear_rnn") if x in set(r.cells["arm"])]
    md = [
        "## Claim 4: does positional encoding capture strict temporal order worse than recurrence?",
        "",
        "Temporal-order faults replay a manoeuvre backwards or swap two segments: every value is "
        "one the flight really had; only order gives them away. VUS-PR on those flights only. "
        "Order control: the same flights scored window by window with each window's earlier rows "
        "shuffled; a model that ignores order loses nothing.",
        "",
    ]
    calls, drops = [], {}
    for size in spec["sizes"]:
        md += [
            f"**{size} training flights**",
            "",
            "| arm | VUS-PR, temporal order | windowed | rows shuffled | drop when shuffled | "
            f"{a} - arm [95 % CI] |",
            "|---|---|---|---|---|---|",
        ]
        for arm in refs + arms:
            order = cell_values(r, arm, size, "vus_pr_order")
            win = cell_values(r, arm, size, "vus_pr_order_windowed")
            shuf = cell_values(r, arm, size, "vus_pr_order_shuffled")
            drop = st.mean_interval(
                win - shuf if len(win) and len(shuf) == len(win) else np.array([])
            )
            if arm == a:
                drops[size] = drop
            cmp = "-"
            if arm != a:
                D = paired_matrix(r, a, arm, size, "vus_pr", ORDER_FAULT)
                if D.size and np.isfinite(D).any():
                    c = st.compare(D, margin, seed=size)
                    cmp = signed(c.diff)
                    calls.append((size, arm, c))
            md.append(
                f"| {arm} | {fmt(st.mean_interval(order))} | {fmt(st.mean_interval(win))} | "
                f"{fmt(st.mean_interval(shuf))} | {fmt(drop)} | {cmp} |"
            )
        md.append("")
    verdict, evidence = _order_verdict(calls, drops, arms, spec["sizes"], a, margin)
    md += [
        f"The verdict (below) counts an arm worse than {a} on these flights (Holm over every arm "
        f"and size) only at a size where {a} itself is shown to use order, its drop when "
        "shuffled above zero: otherwise its lead there may come from anything but order.",
        "",
    ]
    return md, verdict, evidence


def _order_verdict(
    calls: list, drops: dict, arms: list[str], sizes: list[int], a: str, margin: float
) -> tuple[str, str]:
    """Claim 4's verdict: encoding x readout arms worse than `a` on temporal-order flights
    (Holm over every arm and size), counted only where `a`'s own score falls when each window's
    rows are shuffled."""
    factorial_calls = [(s, arm, c) for s, arm, c in calls if arm in arms]
    wanted = len(arms) * len(sizes)
    if len(factorial_calls) < wanted:  # a sweep part way, or failed cells: no verdict on a part
        return "not measured yet", (
            f"{len(factorial_calls)} of {wanted} encoding x readout arms x sizes compared with "
            f"{a} so far"
        )
    p = st.holm([c.p_value for _, _, c in factorial_calls])
    pe = st.holm([c.p_equivalent for _, _, c in factorial_calls])
    called = [
        (size, st.verdict(c.diff, pa, pea, margin, a, arm))
        for (size, arm, c), pa, pea in zip(factorial_calls, p, pe)
    ]
    # with 3 seeds the percentile interval's lower end is the smallest seed's drop: "uses
    # order" then means every seed lost VUS-PR when its windows' rows were shuffled
    uses_order = {s: s in drops and drops[s].n > 0 and drops[s].low > 0 for s in sizes}
    order_use = ", ".join(
        f"{fmt(drops[s]) if s in drops and drops[s].n else 'not measured'} at {s}" for s in sizes
    )
    worse = {size: sum(v == f"{a} better" for s, v in called if s == size) for size in sizes}
    counted = ", ".join(f"{worse[s]} of {len(arms)} at {s} flights" for s in sizes)
    evidence = f"{a}'s drop when shuffled: {order_use}; arms worse than {a} (Holm): {counted}"
    if all(v != "inconclusive" and v != f"{a} better" for _, v in called):
        return "not reproduced", f"every arm is level with {a} or ahead; {evidence}"
    if not any(uses_order.values()):
        return (
            "inconclusive",
            f"{a} is not shown to use order, so its lead is not about order; {evidence}",
        )
    if all(uses_order.values()) and all(worse[s] == len(arms) for s in sizes):
        return "reproduced", evidence
    if any(worse[s] for s in sizes if uses_order[s]):
        return "partly reproduced", evidence
    return "inconclusive", evidence


def lens_section(
    r: Records, arms: list[str], out: Path, factorial: dict | None = None
) -> list[str]:
    c = r.cells[r.cells["held_out"] == ""]
    if "lag_dependence_index" not in c:
        return []
    md = [
        "## What each model looks at: W(t, k)",
        "",
        "Each deep model's output as, to first order, a weighted sum of past inputs: W(t, k) = "
        "d out_t / d u_k (autograd, the local Jacobian; exact for a linear RNN, whose W is "
        "C A^(t-k) B; for a forecaster, of its correction to the last row). Lag-dependence index: "
        "the share of W's variance across positions and windows explained by the lag alone (1 "
        "for a linear RNN; near 0 for weights set purely by content). Effective memory: the lag "
        "holding 90 % of the weight, at most the arm's window. Normal windows of the test flights.",
        "",
        "| arm | lag-dependence index | effective memory (s) | cells |",
        "|---|---|---|---|",
    ]
    for arm in arms:
        sub = c[(c["arm"] == arm) & c["lag_dependence_index"].notna()]
        if len(sub):
            md.append(
                f"| {arm} | {sub['lag_dependence_index'].mean():.3f} | "
                f"{sub['effective_memory_seconds'].mean():.2f} | {len(sub)} |"
            )
    shown = {arm: r.lenses[arm] for arm in arms if arm in r.lenses}
    if shown:
        fig.lens_maps(shown, out / "lens.png")
        md += ["", "![W(t, k) per arm](lens.png)"]
    if factorial:
        md += ["", *lens_by_encoding_and_readout(c, factorial)]
    return [*md, ""]


def lens_by_encoding_and_readout(c: pd.DataFrame, factorial: dict) -> list[str]:
    """Claim 4 through the lens: if position shaped what attention looks at, the lag-dependence
    index would move with the encoding (rows); the table shows whether it moves more with the
    readout (columns)."""
    encodings, readouts = factorial["positional"], factorial["readout"]
    ldi = pd.DataFrame(index=encodings, columns=readouts, dtype=float)
    for pe in encodings:
        for ro in readouts:
            arm = factorial_arm_name(factorial["base"], pe, ro)
            ldi.loc[pe, ro] = c.loc[c["arm"] == arm, "lag_dependence_index"].mean()
    if ldi.isna().all().all():
        return []
    table = [
        "Lag-dependence index of the claim-4 arms (positional encoding x readout):",
        "",
        "| encoding | " + " | ".join(readouts) + " |",
        "|---|" + "---|" * len(readouts),
    ]
    for pe in encodings:
        row = " | ".join("-" if np.isnan(v) else f"{v:.3f}" for v in ldi.loc[pe])
        table.append(f"| {pe} | {row} |")
    missing = int(ldi.isna().sum().sum())
    if missing:  # ranges over a part of the table would compare unlike with unlike
        return [*table, "", f"{missing} of {ldi.size} arms have no lens yet: no ranges compared."]
    across_encodings = (ldi.max(axis=0) - ldi.min(axis=0)).mean()  # per readout, then averaged
    across_readouts = (ldi.max(axis=1) - ldi.min(axis=1)).mean()
    return [
        *table,
        "",
        f"Range of the index across encodings at a fixed readout: {across_encodings:.3f} on "
        f"average; across readouts at a fixed encoding: {across_readouts:.3f}. "
        + (
            "The readout moves W's dependence on the lag more than the positional encoding does."
            if across_readouts > across_encodings
            else "The positional encoding moves W's dependence on the lag more than the readout "
            "does."
        ),
    ]


def per_fault_section(r: Records, arms: list[str], primary: str) -> list[str]:
    f = r.flights[(r.flights["held_out"] == "") & r.flights["arm"].isin(arms)]
    if f.empty or primary not in f:
        return []
    size = int(f["train_flights"].max())
    f = f[f["train_flights"] == size]
    table = f.pivot_table(index="arm", columns="fault_type", values=primary, aggfunc="mean")
    md = [
        f"## {primary} per fault type at {size} training flights",
        "",
        "| arm | " + " | ".join(table.columns) + " |",
        "|---|" + "---|" * len(table.columns),
    ]
    for arm in arms:
        if arm in table.index:
            md.append(f"| {arm} | " + " | ".join(f"{v:.3f}" for v in table.loc[arm]) + " |")
    return [*md, ""]


# Keipour et al., ICRA 2019: the ALFA authors' online recursive-least-squares detector
ALFA_PUBLISHED = {
    "flight_precision": 0.882,
    "flight_recall": 0.882,
    "detection_delay_seconds": 2.02,
}
PROTOCOL = [
    ("flight_precision", "flight precision"),
    ("flight_recall", "flight recall"),
    ("detection_delay_seconds", "delay s"),
    ("false_alarms_per_hour", "false alarms / h"),
]


def protocol_section(r: Records, arms: list[str], params: dict) -> list[str]:
    """The per-flight protocol (secondary): an alarm before onset or in a fault-free flight is
    a false positive; a fault is detected when the first alarm after onset comes within 5 s."""
    c = r.cells[r.cells["held_out"] == ""]
    if "flight_precision" not in c:
        return []
    size = int(c["train_flights"].max())
    md = [
        f"## Per-flight protocol at {size} training flights (secondary)",
        "",
        "| arm | " + " | ".join(label for _, label in PROTOCOL) + " |",
        "|---|" + "---|" * len(PROTOCOL),
    ]
    for arm in arms:
        md.append(
            f"| {arm} | "
            + " | ".join(fmt(st.mean_interval(cell_values(r, arm, size, k))) for k, _ in PROTOCOL)
            + " |"
        )
    if "alfa" in str(params.get("spec", "")):
        ref = " | ".join(
            f"{ALFA_PUBLISHED[k]:.3f}" if k in ALFA_PUBLISHED else "-" for k, _ in PROTOCOL
        )
        md.append(f"| published: ALFA authors' RLS detector (Keipour et al., ICRA 2019) | {ref} |")
    return [*md, ""]


def campaign_section(
    r: Records, arms: list[str], primary: str, a: str, b: str, margin: float
) -> tuple[list[str], list[dict]]:
    """VUS-PR per held-out campaign (and training size), and the paired a - b comparison on
    each, Holm-corrected across them: an unseen campaign is the question, not a pooled mean."""
    c = r.cells[r.cells["held_out"] != ""]
    groups = sorted(c.groupby(["held_out", "train_flights"]).groups)
    if not groups:
        return [], []

    def trained_on(size: int) -> str:
        return "the training and validation flights" if size == 0 else f"{size} flights"

    several = c["train_flights"].nunique() > 1
    names = [f"test {h}" + (f", {trained_on(n)}" if several else "") for h, n in groups]
    md = [
        "## Leave one campaign out",
        "",
        "Trained on the training and validation flights of two campaigns, tested on the third's "
        "flights of the fixed split's test side (no setting was chosen on them).",
        "",
        "| arm | " + " | ".join(f"{primary}, {x}" for x in names) + " | flight recall (mean) |",
        "|---|" + "---|" * (len(groups) + 1),
    ]
    for arm in arms:
        sub = c[c["arm"] == arm]
        if sub.empty:
            continue
        values = [
            sub.loc[(sub["held_out"] == h) & (sub["train_flights"] == n), primary]
            for h, n in groups
        ]
        cells = [fmt(st.mean_interval(v)) if len(v) else "-" for v in values]
        md.append(f"| {arm} | " + " | ".join(cells) + f" | {sub['flight_recall'].mean():.3f} |")
    rows = []
    for h, n in groups:
        D = paired_matrix(r, a, b, int(n), primary, held_out=h)
        if D.size and np.isfinite(D).any():
            label = f"{trained_on(int(n))} of the other two (test {h})"
            rows.append({"size": label, "cmp": st.compare(D, margin, seed=int(n))})
    rows = with_verdicts(rows, a, b, margin)
    if rows:
        md += ["", *comparison_table(rows, a, b, primary), ""]
    return [*md, ""], rows


def campaign_report(
    r: Records,
    md: list[str],
    out: Path,
    arms: list[str],
    primary: str,
    a: str,
    b: str,
    margin: float,
) -> tuple[str, list[dict]]:
    """The report of a sweep that only holds campaigns out: training, the per-campaign
    comparison and its verdict, the family being the held-out campaigns instead of the sizes."""
    training, _ = training_section(r.cells, arms)
    section, rows = campaign_section(r, arms, primary, a, b, margin)
    verdicts = []
    if rows:
        verdicts.append(
            {
                "claim": f"{a} reaches higher {primary} than {b} on an unseen campaign",
                "verdict": st.overall([row["verdict"] for row in rows], a, b, "held-out campaign"),
                "evidence": ", ".join(f"{row['size']}: {row['verdict']}" for row in rows),
            }
        )
    return finish(out, [*md, *training, *section], verdicts, "held-out campaign")


# -- the report ------------------------------------------------------------------------------------
def in_spec_order(arms: Iterable[str], params: dict, a: str, b: str) -> list[str]:
    """The spec's order, as the sweep logged it, not the alphabet's in which records come; for
    a sweep that did not log it: the pair, the scaling arms, the linear RNN, then the rest."""
    arms = list(dict.fromkeys(arms))
    spec = split_list(params.get("arms")) or [
        a,
        b,
        *split_list(params.get("scaling")),
        "linear_rnn",
    ]
    first = [x for x in dict.fromkeys(spec) if x in arms]
    return first + [x for x in arms if x not in first]


def build(r: Records, params: dict, out: Path, title: str) -> tuple[str, list[dict]]:
    """Write report.md and figures into `out`; returns (markdown, verdict rows)."""
    out.mkdir(parents=True, exist_ok=True)
    a, b = split_list(params.get("compare")) or ["lstm", "transformer"]
    primary = params.get("primary", "vus_pr")
    margin = float(params.get("margin", 0.03))
    if r.cells.empty:
        raise UserError(f"no finished cell to report ({r.unfinished} failed or killed cells)")
    if primary not in r.cells or r.cells[primary].isna().all():
        raise UserError(
            f"no cell has a {primary}: their test flights hold no labelled fault (a folder of "
            "unlabelled logs trains and sweeps, but a study compares detection; label the "
            "faults, 1 from the onset, or name the label column)"
        )
    main_cells = r.cells[r.cells["held_out"] == ""]
    all_sizes = main_cells["train_flights"].nunique()
    factorial = _factorial(params)
    factorial_arms = set(factorial_arm_names(factorial)) if factorial else set()
    ordered = in_spec_order(r.cells["arm"].unique(), params, a, b)
    main = [  # the arms run at every size; claim 4's factorial has its own section
        arm for arm in ordered if len(sizes_of(r, arm)) == all_sizes and arm not in factorial_arms
    ]
    tested = r.flights if main_cells.empty else r.flights[r.flights["held_out"] == ""]
    n_flights = tested.loc[tested["arm"] == a, "flight_id"].nunique()
    order = r.flights[(r.flights["fault_type"] == ORDER_FAULT)]["flight_id"].nunique()
    md = [
        f"# {title}",
        "",
        f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from MLflow records alone: "
        f"{len(r.cells)} finished cells, {r.unfinished} failed or killed (the next sweep runs them "
        f"again){archived_note(r)}. {n_flights} labelled test flights, {order} of them with a temporal-order fault. "
        f"Data hash `{params.get('data.content_hash', '?')}`. Primary metric **{primary}** "
        "(per flight, then averaged: never across a flight boundary); equivalence margin "
        f"±{margin:g}.",
        "",
    ]
    if main_cells.empty:  # a leave-one-campaign-out sweep alone
        return campaign_report(r, md, out, ordered, primary, a, b, margin)
    trained = main + [x for x in r.cells["arm"].unique() if x in factorial_arms]
    training, cap_share = training_section(main_cells, trained)
    md += training
    fig.learning_curves(r, main, primary, out / "metric_vs_training_flights.png")
    md += [
        f"## {primary} against training flights",
        "",
        "![metric against training flights](metric_vs_training_flights.png)",
        "",
        *metric_table(r, main, primary, primary),
        *metric_table(r, main, "flight_f1", "flight F1 (per-flight protocol, secondary)"),
    ]
    rows = comparison_rows(r, a, b, primary, margin)
    verdicts = []
    if rows:
        fig.paired(rows, a, b, primary, margin, out / "paired.png")
        model = st.interaction_model(r.cells[r.cells["held_out"] == ""], primary, a, b)
        per_size = ", ".join(f"{row['size']}: {row['verdict']}" for row in rows)
        overall_line, verdict_text, evidence = (
            "",
            st.overall([row["verdict"] for row in rows], a, b),
            per_size,
        )
        if len(rows) > 1:  # the trend with size first: a reversal must not average away
            sizes = [row["size"] for row in rows]
            stack = paired_stack(r, a, b, sizes, primary)
            every, trend, p_trend = st.compare_over_sizes(
                stack, sizes, margin, n_boot=OVERALL_BOOTSTRAP
            )
            verdict_text, h_trend, h_average, h_equivalent = st.overall_call(
                trend, p_trend, every, margin, a, b
            )
            overall_line = (
                f"With the same seeds and test flights drawn at every size: the difference changes "
                f"by {signed(trend)} per doubling of training flights (p = {p_trend:.3g}, Holm "
                f"{h_trend:.3g}); averaged over the sizes, each weighted alike, it is "
                f"{signed(every.diff)} (p = {every.p_value:.3g}, Holm {h_average:.3g}, TOST p = "
                f"{every.p_equivalent:.3g}, Holm {h_equivalent:.3g}). Overall verdict: "
                f"**{verdict_text}** (each of the average's tests Holm-corrected with the trend's; "
                "a trend comes first, so that opposite differences at the two ends "
                "never average to 'equivalent'). The mixed model's 95 % Wald intervals treat "
                "the test flights as fixed."
            )
            evidence = (
                f"per doubling {signed(trend)}, averaged {signed(every.diff)}; per size: {per_size}"
            )
        md += [
            f"## Claim 1: {a} minus {b} on {primary}",
            "",
            "![paired](paired.png)",
            "",
            *comparison_table(rows, a, b, primary),
            "",
            mixed_model_line(model, primary, a),
            "",
            *([overall_line, ""] if overall_line else []),
            f"Ruled out: {ruled_out(rows, a, b)}.",
            "",
        ]
        verdicts.append(
            {
                "claim": f"{a} reaches higher {primary} than {b}",
                "verdict": verdict_text,
                "evidence": evidence,
            }
        )
    cost, cost_rows = cost_section(r, a, b)
    md += cost
    if cost_rows:
        verdicts.append(
            {
                "claim": f"{a} reaches a given validation loss sooner than {b}",
                "verdict": st.overall([row["verdict"] for row in cost_rows], a, b),
                "evidence": "first there per seed: "
                + ", ".join(
                    f"{row['size']}: {row['wins'][0]}:{row['wins'][1]} ({row['verdict']})"
                    for row in cost_rows
                ),
            }
        )
    scaling = split_list(params.get("scaling"))
    if scaling:
        section, summary = scaling_section(r, a, [b, *scaling], primary, margin)
        md += section
        for flights, v, ev in summary:
            verdicts.append(
                {
                    "claim": f"a Transformer needs many times more parameters to match {a} "
                    f"({flights})",
                    "verdict": v,
                    "evidence": ev,
                }
            )
    if factorial:
        section, v, ev = factorial_section(r, factorial, a, margin)
        md += section
        verdicts.append(
            {
                "claim": "positional encoding captures strict temporal order worse than recurrence",
                "verdict": v,
                "evidence": ev,
            }
        )
    spec_arms = factorial_arm_names(factorial) if factorial else []
    in_order = main + spec_arms + ordered
    lensed = set(r.lenses) | set(main)
    md += lens_section(r, [x for x in dict.fromkeys(in_order) if x in lensed], out, factorial)
    md += protocol_section(r, main, params)
    md += per_fault_section(r, main, primary)
    c = r.cells[r.cells["held_out"] == ""]
    few = c.groupby("arm")["seed"].nunique()
    return finish(out, md, verdicts, "size", sorted(few[few < 10].index))


def finish(
    out: Path, md: list[str], verdicts: list[dict], unit: str, few_seeds: list[str] = ()
) -> tuple[str, list[dict]]:
    """The verdict table and the rules that produced it (per `unit`: a training size or a
    held-out campaign); written to a temporary name and renamed, so a crash or a reader never
    sees half a report."""
    md = [*md, "## Verdicts", "", "| claim | verdict | evidence |", "|---|---|---|"]
    md += [f"| {v['claim']} | **{v['verdict']}** | {v['evidence']} |" for v in verdicts]
    md += [
        "",
        f"Rules: at each {unit} the paired difference (same seeds, training flights "
        "and test flights for both arms) gets a 95 % interval from a bootstrap that resamples "
        "seeds and test flights; its p-value and the equivalence (TOST) p-value at the margin "
        f"are Holm-corrected across the {unit}s. Each verdict is 'X better' when the corrected "
        "p < 0.05, 'equivalent within ±margin' when the corrected TOST p < 0.05, else "
        "'inconclusive'. Failed cells are left out, never counted as zeros. Unless a rule "
        f"below says otherwise, a claim's line over the {unit}s reads '<verdict> at every {unit}' when every {unit} has the same "
        f"verdict, else 'differs by {unit}' with each {unit}'s verdict.",
        "",
    ]
    if unit == "size":
        md[-2] += (
            " Claim 1's overall verdict, with the same seeds and test flights drawn at every "
            "size: 'differs by size' when the slope of the difference against log2(size) has "
            "p < 0.05; otherwise the same rules on the difference averaged over the sizes, each "
            "weighted alike (in a balanced design, the mixed model's architecture effect at its "
            "mean log2 size), its difference and equivalence p-values each Holm-corrected with the "
            "slope's as a pair; with one size, that "
            "size's. "
            "Claim 2's verdicts are exact sign tests over seeds of which arm first reaches a "
            "validation loss both reach, Holm-corrected across the sizes ('X faster' or "
            "'inconclusive'; 'not raced' when no seed's two cells ran on one machine setup, "
            "'not measured' without both arms' training curves). Claim 3 (over the larger "
            "Transformers, ordered by parameters; an arm *matches* when it is equivalent or "
            "better): at a size, 'not reproduced' when the smallest arm matches, 'reproduced' "
            "when a larger one matches and every smaller one is shown worse, else inconclusive "
            "(an inconclusive smaller arm might match); over the sizes, one of these when every "
            "size has it, 'inconclusive' when no size has a definite one, else 'differs by "
            "size'. Claim 4 (over the encoding x readout "
            "arms, on temporal-order flights): 'not reproduced' when every arm is equivalent "
            "or better; else 'reproduced' when every arm is worse at every size and the "
            "reference arm uses order at every size (its drop when shuffled has a 95 % "
            "interval over seeds above zero, uncorrected; with 3 seeds, every seed drops), "
            "'partly reproduced' when some arm is worse at a size where it uses order, else "
            "'inconclusive'; 'not measured yet' while cells are missing."
        )
    if few_seeds:
        md[-2] += (
            f" Arms run with fewer than 10 seeds ({', '.join(few_seeds)}) get intervals too "
            "narrow: a bootstrap over 3 seeds cannot see how far a fourth would fall, and with "
            "no true difference it calls p < 0.05 in 15 % of runs against 6 % with 10 seeds "
            "(`scripts/null_seed_bootstrap.py`); read the verdicts that rest on them as "
            "indicative."
        )
    text = "\n".join(md)
    tmp = out / ".report.md.tmp"
    tmp.write_text(text)
    tmp.replace(out / "report.md")
    return text, verdicts


def _factorial(params: dict) -> dict | None:
    import json

    f = json.loads(params.get("factorial") or "{}")
    return f or None


def make_report(sweep: str, out: str | Path) -> Path:
    """Build the report of a sweep, with the archive of its cells beside it (archive.py), and
    log both as artifacts of the sweep's parent run."""
    from anomaly.track.tracker import Tracker

    parent_id, params, records = load_records(sweep)
    out = Path(out)
    build(records, params, out, f"Study report: {params.get('spec', sweep)}")
    export_archive(parent_id, out / ARCHIVE_FILE)
    tracker = Tracker(params.get("experiment") or "anomaly")
    tracker.log_artifacts(parent_id, out, "report")
    return out / "report.md"
