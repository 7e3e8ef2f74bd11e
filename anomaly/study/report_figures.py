"""The study report's figures: the metric against training flights, the paired difference, and
W(t, k) per architecture."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anomaly.evaluate import statistics as st  # noqa: E402


def learning_curves(r, arms: list[str], metric: str, path: Path) -> None:
    c = r.cells[r.cells["held_out"] == ""]
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in arms:
        sizes = sorted(c.loc[c["arm"] == arm, "train_flights"].unique())
        sel = lambda s, arm=arm: (c["arm"] == arm) & (c["train_flights"] == s)  # noqa: E731
        cis = [st.mean_interval(c.loc[sel(s), metric]) for s in sizes]
        m = np.array([ci.mean for ci in cis])
        err = np.array([[ci.mean - ci.low for ci in cis], [ci.high - ci.mean for ci in cis]])
        ax.errorbar(sizes, m, yerr=err, marker="o", capsize=3, label=arm)
    ax.set_xscale("log", base=2)
    sizes = sorted(c["train_flights"].unique())
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("training flights")
    ax.set_ylabel(f"{metric}, mean and 95 % interval over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path, 110)


def paired(rows: list[dict], a: str, b: str, metric: str, margin: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sizes = [row["size"] for row in rows]
    d = [row["cmp"].diff for row in rows]
    m = np.array([x.mean for x in d])
    err = np.array([[x.mean - x.low for x in d], [x.high - x.mean for x in d]])
    ax.errorbar(sizes, m, yerr=err, marker="o", capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.axhspan(-margin, margin, color="tab:green", alpha=0.12, label=f"±{margin:g} (equivalence)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("training flights")
    ax.set_ylabel(f"{metric}: {a} - {b}\n(95 % two-way bootstrap)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path, 110)


def lens_maps(lenses: dict, path: Path, per_row: int = 6) -> None:
    """Per arm: its W(t, k) heat map above its lag profile; at most `per_row` arms a row, so the
    claim-4 factorial's 15 arms stay readable."""
    n = len(lenses)
    cols = min(n, per_row)
    rows = -(-n // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(3.2 * cols, 6 * rows), squeeze=False)
    for ax in axes.flat:  # the used ones are shown again below
        ax.set_visible(False)
    for j, (arm, (size, lens)) in enumerate(lenses.items()):
        top, bottom = axes[2 * (j // cols), j % cols], axes[2 * (j // cols) + 1, j % cols]
        top.set_visible(True)
        bottom.set_visible(True)
        W = np.asarray(lens["weight_map"])
        top.imshow(W, cmap="viridis")
        top.set_title(f"{arm}\n({size} flights)", fontsize=8)
        top.set_xlabel("input row k", fontsize=7)
        top.set_ylabel("output row t", fontsize=7)
        profile = np.asarray(lens["lag_profile"])
        bottom.plot(np.arange(len(profile)), profile, marker=".")
        bottom.set_yscale("log")
        bottom.set_xlabel("lag (rows)", fontsize=7)
        if j % cols == 0:
            bottom.set_ylabel("mean |W| at the lag", fontsize=7)
    fig.tight_layout()
    _save(fig, path, 100)


def _save(fig, path: Path, dpi: int) -> None:
    """Written under a temporary name and renamed: a reader never sees half a figure."""
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
