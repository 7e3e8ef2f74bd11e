"""Synthetic fixed-wing flights with injected faults and known labels.

A point-mass airframe under a PID autopilot flies a random mission (climbs, cruise, turns,
descents) through gusts; sensors add noise. Because every channel comes out of one closed loop,
channels are coupled through time as in real flight logs, and a fault shows up as a broken
relation between commands and response, not just as an out-of-range value.

All flights are simulated together, vectorised over the flight axis, so 100 flights take seconds;
each flight draws from its own seeded stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = [
    "airspeed",  # m/s
    "altitude",  # m
    "climb_rate",  # m/s
    "roll",  # deg
    "pitch",  # deg
    "yaw_rate",  # deg/s
    "throttle",  # 0..1 command
    "elevator",  # deg command
    "aileron",  # deg command
    "rudder",  # deg command
]
SENSOR_SCALE = np.array([3.0, 15.0, 2.0, 10.0, 8.0, 10.0])  # typical variation of the 6 sensors
NOISE_STD = np.array([0.25, 0.4, 0.12, 0.4, 0.3, 0.5])
FAULT_TYPES = (
    "engine",
    "elevator_stuck",
    "aileron_stuck",
    "rudder_stuck",
    "sensor_stuck",
    "bias_drift",
    "spikes",
    "temporal_order",
)
G = 9.81


@dataclass(frozen=True)
class SynthConfig:
    """Generator settings; the defaults give 1 to 4 minute flights at 20 Hz."""

    n_flights: int = 64
    seed: int = 0
    rate_hz: float = 20.0
    min_duration_s: float = 60.0
    max_duration_s: float = 240.0
    fault_free_share: float = 0.25
    fault_types: tuple[str, ...] = FAULT_TYPES
    # cycle through 'none' and every fault type instead of drawing them, so that any run of
    # consecutive flights (a fixed test split) holds each type; studies use this
    balanced: bool = False
    # the sequence cycled through when balanced (default: 'none' then fault_types); a type
    # listed twice comes twice as often (the study's temporal-order faults)
    cycle: tuple[str, ...] | None = None
    # flights on the test and validation sides of the fixed split (default: a quarter, an eighth)
    n_test: int | None = None
    n_validation: int | None = None


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _draw_flight_plan(rng: np.random.Generator, cfg: SynthConfig, index: int) -> dict:
    duration = float(
        np.round(rng.uniform(cfg.min_duration_s, cfg.max_duration_s) * cfg.rate_hz) / cfg.rate_hz
    )
    faulty = rng.random() >= cfg.fault_free_share
    fault = str(rng.choice(cfg.fault_types)) if faulty else "none"
    if cfg.balanced:
        cycle = cfg.cycle or ("none", *cfg.fault_types)
        fault = cycle[index % len(cycle)]
        faulty = fault != "none"
    onset = float(np.round(rng.uniform(0.35, 0.75) * duration * cfg.rate_hz) / cfg.rate_hz)
    if fault in ("sensor_stuck", "bias_drift", "spikes"):
        length = rng.uniform(10.0, 30.0)
    elif fault == "temporal_order":
        length = rng.uniform(6.0, 15.0)
    else:
        length = duration  # engine and actuator faults are never repaired in flight
    end = float(min(duration, np.round((onset + length) * cfg.rate_hz) / cfg.rate_hz))
    # mission: reference changes every 12-35 s
    times, heading, alt, speed, kinds = [], [], [], [], []
    t, psi, h, v = 0.0, rng.uniform(-np.pi, np.pi), 100.0 + rng.uniform(-10, 10), 18.0
    while t < duration:
        kind = rng.choice(
            ["cruise", "turn", "climb", "descent", "speed"], p=[0.2, 0.35, 0.15, 0.15, 0.15]
        )
        if kind == "turn":
            psi = _wrap(psi + rng.choice([-1, 1]) * np.deg2rad(rng.uniform(45, 170)))
        elif kind == "climb":
            h = min(h + rng.uniform(15, 50), 220.0)
        elif kind == "descent":
            h = max(h - rng.uniform(15, 50), 50.0)
        elif kind == "speed":
            v = float(np.clip(v + rng.uniform(-3, 3), 15.0, 22.0))
        times.append(t)
        kinds.append(str(kind))
        heading.append(psi)
        alt.append(h)
        speed.append(v)
        t += rng.uniform(12.0, 35.0)
    if fault == "temporal_order":
        # reorder a manoeuvre, not straight and level flight: there the reversed dynamics show
        # (altitude falling while the climb rate says up); in steady cruise nothing would
        manoeuvres = [
            tm
            for tm, k in zip(times, kinds)
            if k in ("turn", "climb", "descent") and 0.3 * duration <= tm <= 0.75 * duration
        ]
        if manoeuvres:
            onset = float(np.round((manoeuvres[0] + 1.0) * cfg.rate_hz) / cfg.rate_hz)
            end = float(min(duration, np.round((onset + length) * cfg.rate_hz) / cfg.rate_hz))
    return {
        "duration": duration,
        "fault": fault,
        "onset": onset if faulty else float("nan"),
        "end": end if faulty else float("nan"),
        "sensor": int(rng.integers(0, 6)),
        "offset_deg": float(rng.choice([-1, 1]) * rng.uniform(3.0, 8.0)),
        "drift_sign": float(rng.choice([-1, 1])),
        "swap": bool(rng.random() < 0.5),
        "segments": (np.array(times), np.array(heading), np.array(alt), np.array(speed)),
        "airframe": rng.normal(1.0, 0.05, size=4),  # per-airframe spread of gains
        "gust_sigma": rng.uniform(0.2, 0.8),
    }


def _clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """np.clip's values without its dispatch, which cost a tenth of a simulation's time in
    ~100,000 calls on arrays of one value per flight."""
    return np.minimum(np.maximum(x, lo), hi)


def _simulate(
    plans: list[dict], rngs: list[np.random.Generator], cfg: SynthConfig
) -> list[np.ndarray]:
    """Closed-loop simulation of all flights at twice the output rate; returns (rows, 10) per flight."""
    n = len(plans)
    sub = 2
    dt = 1.0 / (cfg.rate_hz * sub)
    steps = [int(round(p["duration"] * cfg.rate_hz)) + 1 for p in plans]
    n_steps = max(steps) * sub
    noise = np.zeros((n, n_steps, 10))
    for k, r in enumerate(rngs):
        noise[k, : steps[k] * sub] = r.standard_normal((steps[k] * sub, 10))
    air = np.stack([p["airframe"] for p in plans])
    gust_sigma = np.array([p["gust_sigma"] for p in plans])
    fault = np.array([p["fault"] for p in plans])
    onset_step = np.array(
        [p["onset"] * cfg.rate_hz * sub if p["fault"] != "none" else np.inf for p in plans]
    )
    offset = np.deg2rad([p["offset_deg"] for p in plans])

    cd = 3.0 / 18.0**2 * air[:, 0]  # drag so that half throttle trims at 18 m/s
    t_max = 6.0
    cl, alpha0 = 9.81 / (18.0**2 * 0.07), 0.05
    me, mq, ma = 30.0 * air[:, 1], 5.0, 20.0
    la, lp = 40.0 * air[:, 2], 6.0

    V = np.full(n, 18.0)
    h = np.array([p["segments"][2][0] for p in plans])
    gam = np.zeros(n)
    alpha_trim = 9.81 / (cl * 18.0**2) - alpha0
    theta = np.full(n, alpha_trim)
    q = np.zeros(n)
    phi = np.zeros(n)
    p_rate = np.zeros(n)
    psi = np.array([p["segments"][1][0] for p in plans])
    thr = np.full(n, 0.5)
    de = np.full(n, ma * alpha_trim / me)
    da = np.zeros(n)
    dr = np.zeros(n)
    i_v = np.zeros(n)
    i_th = np.zeros(n)
    gust = np.zeros((n, 3))
    stuck = np.full((n, 3), np.nan)  # elevator, aileron, rudder
    out = np.zeros((n, max(steps), 10))
    # each step's (heading, altitude, speed) references: the segment in force at t = s * dt,
    # looked up once for all steps (a per-step loop over flights took most of the run)
    times = np.arange(n_steps) * dt
    refs = np.zeros((n_steps, n, 3))
    for k, plan in enumerate(plans):
        seg = plan["segments"]
        idx = np.maximum(np.searchsorted(np.asarray(seg[0]), times, side="right") - 1, 0)
        refs[:, k] = np.stack([np.asarray(seg[j])[idx] for j in (1, 2, 3)], axis=1)

    for s in range(n_steps):
        psi_ref, h_ref, v_ref = refs[s, :, 0], refs[s, :, 1], refs[s, :, 2]
        w = noise[:, s]
        # gusts: first-order (Dryden-like) filtered noise on forward, vertical and roll axes
        gust += dt * (-gust / 2.0) + gust_sigma[:, None] * np.sqrt(2 * dt / 2.0) * w[:, 6:9]
        # measured state (autopilot sees noisy sensors)
        hdot = V * np.sin(gam) + gust[:, 1]
        yaw_rate = G * np.tan(phi) / np.maximum(V, 5.0) + 0.6 * dr
        meas = (
            np.stack(
                [V + gust[:, 0], h, hdot, np.rad2deg(phi), np.rad2deg(theta), np.rad2deg(yaw_rate)],
                axis=1,
            )
            + NOISE_STD * w[:, :6] * 0.5
        )
        # autopilot
        phi_c = _clip(1.0 * _wrap(psi_ref - psi), -0.5, 0.5)
        da_c = _clip(1.5 * (phi_c - np.deg2rad(meas[:, 3])) - 0.25 * p_rate, -0.35, 0.35)
        dr_c = _clip(
            0.25 * phi_c - 0.4 * (np.deg2rad(meas[:, 5]) - G * np.tan(phi_c) / 18.0), -0.35, 0.35
        )
        hdot_c = _clip(0.25 * (h_ref - meas[:, 1]), -3.0, 3.0)
        theta_c = _clip(
            hdot_c / np.maximum(V, 5.0) + alpha_trim + 0.02 * (hdot_c - meas[:, 2]) + i_th,
            -0.35,
            0.35,
        )
        i_th = _clip(i_th + dt * 0.05 * (hdot_c - meas[:, 2]), -0.15, 0.15)
        de_c = _clip(
            2.5 * (theta_c - np.deg2rad(meas[:, 4])) - 0.4 * q + ma * alpha_trim / me, -0.4, 0.4
        )
        i_v = _clip(i_v + dt * 0.08 * (v_ref - meas[:, 0]), -0.4, 0.4)
        thr_c = _clip(0.5 + 0.12 * (v_ref - meas[:, 0]) + 0.8 * hdot_c / 18.0 + i_v, 0.0, 1.0)
        # actuators with first-order lag, unless stuck
        active = s >= onset_step
        for j, name in enumerate(("elevator_stuck", "aileron_stuck", "rudder_stuck")):
            hit = active & (fault == name) & np.isnan(stuck[:, j])
            # elevator authority is larger, so its stuck offset is kept smaller
            stuck[hit, j] = (de, da, dr)[j][hit] + offset[hit] * (0.35 if j == 0 else 1.0)
        de = np.where(np.isnan(stuck[:, 0]), de + dt / 0.08 * (de_c - de), stuck[:, 0])
        da = np.where(np.isnan(stuck[:, 1]), da + dt / 0.08 * (da_c - da), stuck[:, 1])
        dr = np.where(np.isnan(stuck[:, 2]), dr + dt / 0.08 * (dr_c - dr), stuck[:, 2])
        thr = thr + dt / 0.3 * (thr_c - thr)
        engine = np.where(active & (fault == "engine"), 0.0, 1.0)
        # airframe
        alpha = theta - gam
        lift = cl * V**2 * (alpha0 + alpha)
        V_dot = (
            t_max * thr * engine
            - cd * V**2 * (1 + 8 * alpha**2)
            - G * np.sin(gam)
            + 0.5 * gust[:, 0]
        )
        gam_dot = (lift * np.cos(phi) - G * np.cos(gam)) / np.maximum(V, 5.0)
        q_dot = me * de - mq * q - ma * alpha
        p_dot = la * da - lp * p_rate + 0.8 * gust[:, 2] + 4.0 * dr
        V = np.maximum(V + dt * V_dot, 5.0)
        gam = _clip(gam + dt * gam_dot, -0.6, 0.6)
        q = q + dt * q_dot
        theta = _clip(theta + dt * q, -0.8, 0.8)
        p_rate = p_rate + dt * p_dot
        phi = _clip(phi + dt * p_rate, -1.0, 1.0)
        psi = _wrap(psi + dt * yaw_rate)
        h = h + dt * hdot
        if s % sub == 0:
            row = s // sub
            sensors = (
                np.stack(
                    [
                        V + gust[:, 0],
                        h,
                        hdot,
                        np.rad2deg(phi),
                        np.rad2deg(theta),
                        np.rad2deg(yaw_rate),
                    ],
                    axis=1,
                )
                + NOISE_STD * noise[:, min(s + 1, n_steps - 1), :6]
            )
            controls = np.stack(
                [thr_c, np.rad2deg(de_c), np.rad2deg(da_c), np.rad2deg(dr_c)], axis=1
            )
            out[:, row, :6] = sensors
            out[:, row, 6:] = controls
    return [out[k, : steps[k]] for k in range(n)]


def _inject_sensor_faults(
    values: np.ndarray, plan: dict, rng: np.random.Generator, rate_hz: float
) -> None:
    """Faults that corrupt the log rather than the aircraft: applied to the recorded values in place."""
    fault = plan["fault"]
    if fault not in ("sensor_stuck", "bias_drift", "spikes", "temporal_order"):
        return
    a, b = int(round(plan["onset"] * rate_hz)), int(round(plan["end"] * rate_hz)) + 1
    ch = plan["sensor"]
    if fault == "sensor_stuck":
        values[a:b, ch] = values[a, ch]
    elif fault == "bias_drift":
        ramp = np.arange(b - a) / rate_hz
        values[a:b, ch] += plan["drift_sign"] * SENSOR_SCALE[ch] / 8.0 * ramp
    elif fault == "spikes":
        hits = rng.random(b - a) < 0.06
        amp = rng.choice([-1, 1], size=b - a) * rng.uniform(3, 6, size=b - a) * SENSOR_SCALE[ch]
        values[a:b, ch] += np.where(hits, amp, 0.0)
    elif fault == "temporal_order":
        seg = values[a:b].copy()
        if plan["swap"] and 2 * b - a <= len(values):
            later = values[b : 2 * b - a].copy()
            values[a:b], values[b : 2 * b - a] = later, seg
            plan["end"] = (2 * b - a - 1) / rate_hz
            plan["variant"] = "swapped"
        else:
            values[a:b] = seg[::-1]
            plan["variant"] = "reversed"


def generate_flights(cfg: SynthConfig) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Simulate `cfg.n_flights` flights.

    Returns
    -------
    frames : one DataFrame per flight with columns time, the 10 channels, label.
    manifest : one row per flight: file, fault_type, variant ('swapped' or 'reversed' for a
        temporal-order fault), onset_s, end_s, rows.
    """
    seqs = np.random.SeedSequence(cfg.seed).spawn(cfg.n_flights)
    rngs = [np.random.default_rng(s) for s in seqs]
    plans = [_draw_flight_plan(r, cfg, k) for k, r in enumerate(rngs)]
    traces = _simulate(plans, rngs, cfg)
    frames, rows = [], []
    for k, (plan, values) in enumerate(zip(plans, traces)):
        values = values.copy()
        _inject_sensor_faults(values, plan, rngs[k], cfg.rate_hz)
        n = len(values)
        time = np.arange(n) / cfg.rate_hz
        label = np.zeros(n, dtype=np.int8)
        if plan["fault"] != "none":
            a, b = (
                int(round(plan["onset"] * cfg.rate_hz)),
                int(round(plan["end"] * cfg.rate_hz)) + 1,
            )
            label[a:b] = 1
        frame = pd.DataFrame(values, columns=CHANNELS)
        frame.insert(0, "time", time)
        frame["label"] = label
        frames.append(frame)
        rows.append(
            {
                "file": f"flight_{k:03d}.csv",
                "fault_type": plan["fault"],
                "variant": plan.get("variant", ""),
                "onset_s": plan["onset"],
                "end_s": plan["end"],
                "rows": n,
            }
        )
    return frames, pd.DataFrame(rows)


def write_dataset(out: str | Path, cfg: SynthConfig) -> pd.DataFrame:
    """Write a dataset folder (`flights/*.csv`, `manifest.csv`, `split.csv`); byte-identical
    for one seed. Files are written to a temporary name and renamed, so an interrupted run
    leaves no half file."""
    out = Path(out)
    (out / "flights").mkdir(parents=True, exist_ok=True)
    frames, manifest = generate_flights(cfg)
    for frame, name in zip(frames, manifest["file"]):
        _atomic_csv(frame, out / "flights" / name, float_format="%.4f")
    _atomic_csv(manifest, out / "manifest.csv", float_format="%.2f")
    split = fixed_split(manifest["file"].tolist(), cfg.n_test, cfg.n_validation)
    _atomic_csv(split, out / "split.csv")
    return manifest


def fixed_split(
    files: list[str], n_test: int | None = None, n_val: int | None = None
) -> pd.DataFrame:
    """The generated dataset's fixed split: the last `n_test` flights test (a quarter by
    default), the `n_val` before them validation (an eighth).

    Flights are independent draws, so a split by index is a random split; fixing it keeps the
    test flights the same across runs and seeds.
    """
    n = len(files)
    n_test = max(1, n // 4) if n_test is None else n_test
    n_val = max(1, n // 8) if n_val is None else n_val
    side = [
        "test" if k >= n - n_test else "validation" if k >= n - n_test - n_val else "train"
        for k in range(n)
    ]
    return pd.DataFrame({"file": files, "split": side})


def _atomic_csv(frame: pd.DataFrame, path: Path, **kw) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frame.to_csv(tmp, index=False, lineterminator="\n", **kw)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # interrupted: nothing half-written left behind
