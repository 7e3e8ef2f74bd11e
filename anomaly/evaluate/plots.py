"""Figures of single flights: channels, score, threshold, fault onset and first alarm."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from anomaly.data.schema import Flight  # noqa: E402


def flight_figure(
    flight: Flight,
    score: np.ndarray,
    threshold: float,
    flagged: np.ndarray,
    title: str = "",
    max_channels: int = 6,
    blamed: list[str] | tuple[str, ...] = (),
):
    """A two-panel figure: up to `max_channels` standardised channels (those the flight's
    alarms blamed first, so the figure shows what raised them), then the score."""
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    first = [flight.channels.index(c) for c in dict.fromkeys(blamed) if c in flight.channels]
    shown = (first + [j for j in range(len(flight.channels)) if j not in first])[:max_channels]
    v = flight.values[:, shown]
    z = (v - np.nanmean(v, axis=0)) / (np.nanstd(v, axis=0) + 1e-9)
    for k, j in enumerate(shown):
        ax1.plot(flight.time, z[:, k] + 3 * k, lw=0.7, label=flight.channels[j])
    ax1.set_ylabel("channels (standardised, offset)")
    ax1.legend(loc="upper left", fontsize=7, ncol=3)
    ax2.plot(flight.time, score, lw=0.8, color="k", label="score")
    ax2.axhline(threshold, color="r", ls="--", lw=1, label=f"decision level {threshold:.3g}")
    # linear near 0 (where the statistic rests, and a level of 0 lies), logarithmic above
    ax2.set_yscale("symlog", linthresh=1.0)
    ax2.set_xlabel("time since flight start (s)")
    for ax in (ax1, ax2):
        if flight.labels is not None and flight.labels.any():
            lab = flight.labels > 0
            ax.fill_between(
                flight.time,
                0,
                1,
                where=lab,
                color="orange",
                alpha=0.25,
                transform=ax.get_xaxis_transform(),
            )
            ax.axvline(flight.time[flight.onset_index], color="orange", lw=1.2)
        if flagged.any():
            ax.axvline(flight.time[int(np.argmax(flagged))], color="r", lw=1, ls=":")
    ax2.legend(loc="upper left", fontsize=7)
    fig.suptitle(title or flight.flight_id, fontsize=10)
    fig.tight_layout()
    return fig


def delay_figure(outcomes: list, timeout_s: float = 5.0):
    """Per fault type: detection delay of each detected flight, and how many were detected, missed
    or lost to an alarm before onset."""
    faults = sorted({o.fault_type for o in outcomes if o.onset_s is not None})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, fault in enumerate(faults):
        delays = [o.delay_s for o in outcomes if o.fault_type == fault and o.delay_s is not None]
        ax1.scatter([i] * len(delays), delays, color="tab:blue", zorder=3)
        if delays:
            ax1.hlines(np.mean(delays), i - 0.3, i + 0.3, color="k")
    ax1.axhline(timeout_s, color="r", ls="--", lw=1, label=f"timeout {timeout_s:g} s")
    ax1.set_xticks(range(len(faults)), faults, rotation=30, ha="right")
    ax1.set_ylabel("detection delay (s); bar = mean")
    ax1.legend(fontsize=8)
    counts = {
        k: [
            sum(o.fault_type == f and o.outcome == k and o.onset_s is not None for o in outcomes)
            for f in faults
        ]
        for k in ("TP", "FN", "FP")
    }
    bottom = np.zeros(len(faults))
    for key, label, color in (
        ("TP", "detected", "tab:green"),
        ("FN", "missed", "tab:gray"),
        ("FP", "alarm before onset", "tab:red"),
    ):
        ax2.bar(range(len(faults)), counts[key], bottom=bottom, label=label, color=color)
        bottom += counts[key]
    ax2.set_xticks(range(len(faults)), faults, rotation=30, ha="right")
    ax2.set_ylabel("fault flights")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lens_figure(lenses: dict, title: str, rate_hz: float):
    """W(t, k) heat maps (|W| over channel pairs, one per set of windows) and their lag
    profiles: which past rows each output rests on."""
    n = len(lenses)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.8))
    for ax, (label, lens) in zip(axes, lenses.items()):
        im = ax.imshow(lens.weight_map, cmap="viridis", origin="upper")
        ax.set_title(f"{label}\nLDI {lens.lag_dependence_index:.2f}", fontsize=9)
        ax.set_xlabel("input row k")
        ax.set_ylabel("output row t")
        # W is d(scaled output) / d(scaled input): channels on their scalers' scales
        fig.colorbar(im, ax=ax, fraction=0.046, label="|W|, scaled units")
    ax = axes[-1]
    for label, lens in lenses.items():
        lags = np.arange(len(lens.lag_profile)) / rate_hz
        memory = lens.effective_memory_rows / rate_hz
        ax.plot(lags, lens.lag_profile, marker=".", label=f"{label} (90 % within {memory:.1f} s)")
    ax.set_xlabel("lag t - k (s)")
    ax.set_ylabel("mean |W(t, t - lag)|")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def attention_figure(maps: list[np.ndarray], rollout: np.ndarray, title: str):
    """A Transformer's attention per layer and head (mean over windows) beside its rollout: the
    content-set weights that W(t, k) sums up, seen from inside."""
    heads = [
        (f"layer {i + 1} head {h + 1}", a[:, h].mean(axis=0))
        for i, a in enumerate(maps)
        for h in range(a.shape[1])
    ]
    panels = [*heads, ("rollout", rollout.mean(axis=0))]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (label, a) in zip(axes.flat, panels):
        ax.imshow(a, cmap="magma", origin="upper", vmin=0)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("key row k", fontsize=7)
        ax.set_ylabel("query row t", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def explain_figure(
    W: np.ndarray, channels: list[str], out_channel: int, rate_hz: float, title: str, out_row: int
):
    """For one scored row: the weight of each row of its window (x: seconds before the scored
    row) and input channel (y) on the blamed channel's estimate, and the whole window's W(t, k).
    `out_row` is the output that estimates the scored row: the last for a reconstruction, the
    one before it for a forecaster (output t predicts row t + 1)."""
    T = W.shape[0]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2, 1]})
    row = np.abs(W[out_row, :, out_channel, :]).T  # (F_in, T): that output's weights
    before = ((T - 1) - np.arange(T)) / rate_hz  # seconds before the scored row, oldest first
    half = 0.5 / rate_hz
    extent = (before[0] + half, before[-1] - half, -0.5, len(channels) - 0.5)
    im = ax1.imshow(row, aspect="auto", cmap="magma", origin="lower", extent=extent)
    ax1.set_yticks(range(len(channels)), channels, fontsize=7)
    ax1.set_xlabel("seconds before the scored row")
    ax1.set_title(f"|W| on the estimate of {channels[out_channel]}", fontsize=9)
    fig.colorbar(im, ax=ax1, fraction=0.03, label="|W|, scaled units")
    im = ax2.imshow(np.sqrt((W**2).sum(axis=(2, 3))), cmap="viridis")
    ax2.set_xlabel("input row k")
    ax2.set_ylabel("output row t")
    ax2.set_title("|W(t, k)| over channel pairs", fontsize=9)
    fig.colorbar(im, ax=ax2, fraction=0.046, label="|W|, scaled units")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
