import numpy as np
import pandas as pd
import pytest

from anomaly.evaluate import statistics as st
from anomaly.study.cell import ORDER_FAULT
from anomaly.study.records import KEYS, Records
from anomaly.study.report import (
    build,
    cost_section,
    factorial_section,
    lens_by_encoding_and_readout,
    time_to_quality,
)


def loco_records(
    lead: dict[str, float], arms: tuple[str, ...] = ("lstm", "transformer")
) -> Records:
    """One held-out campaign per key of `lead`, 3 seeds x 6 test flights each; the LSTM's VUS-PR
    is the Transformer's (and any other arm's) plus `lead[campaign]` and a little noise."""
    rng = np.random.default_rng(0)
    cells, flights = [], []
    for campaign, d in lead.items():
        for seed in range(3):
            for arm in arms:
                values = []
                for f in range(6):
                    base = 0.3 + 0.02 * f
                    v = base + (d if arm == "lstm" else 0.0) + rng.normal(0, 0.005)
                    values.append(v)
                    flights.append(
                        dict(
                            arm=arm,
                            train_flights=0,
                            seed=seed,
                            held_out=campaign,
                            flight_id=f"{campaign}-{f}",
                            fault_type="engine",
                            vus_pr=v,
                        )
                    )
                cells.append(
                    dict(
                        arm=arm,
                        train_flights=0,
                        seed=seed,
                        held_out=campaign,
                        epochs=30,
                        best_epoch=20,
                        steps=960,
                        hit_max_epochs=0.0,
                        fit_seconds=10.0,
                        validate_seconds=1.0,
                        vus_pr=float(np.mean(values)),
                        flight_recall=0.5,
                    )
                )
    cells = pd.DataFrame(cells).sort_values(KEYS).reset_index(drop=True)  # as load_records has them
    return Records(cells, pd.DataFrame(flights))


def test_a_campaign_only_sweep_gets_a_paired_verdict_per_held_out_campaign(tmp_path):
    r = loco_records({"2018-07": 0.10, "2018-09": 0.0, "2018-10": 0.0})
    text, verdicts = build(r, {"compare": "lstm,transformer", "margin": "0.03"}, tmp_path, "LOCO")
    assert (tmp_path / "report.md").read_text() == text
    assert "18 labelled test flights" in text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| the training and validation flights of the other two")
    ]
    assert len(rows) == 3
    assert rows[0].startswith(
        "| the training and validation flights of the other two (test 2018-07) | +0."
    )
    assert abs(float(rows[0].split("|")[2].split()[0]) - 0.10) < 0.01
    assert rows[0].endswith("| lstm better |")
    assert all(row.endswith("| equivalent within ±0.03 |") for row in rows[1:])
    assert "Holm-corrected across the held-out campaigns" in text
    (v,) = verdicts
    assert v["claim"] == "lstm reaches higher vus_pr than transformer on an unseen campaign"
    assert v["verdict"].startswith("differs by held-out campaign: lstm better")


def test_the_same_lead_everywhere_is_called_at_every_campaign(tmp_path):
    r = loco_records({"2018-07": 0.10, "2018-09": 0.10, "2018-10": 0.10})
    _, (v,) = build(r, {"compare": "lstm,transformer"}, tmp_path, "LOCO")
    assert v["verdict"] == "lstm better at every held-out campaign"


def test_the_campaigns_are_one_holm_family(tmp_path):
    r = loco_records({"2018-07": 0.004, "2018-09": 0.003, "2018-10": 0.002})
    text, _ = build(r, {"compare": "lstm,transformer"}, tmp_path, "LOCO")
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| the training")]
    assert len(rows) == 3
    raw = [float(row[4]) for row in rows]
    holm = [float(row[5]) for row in rows]
    assert np.allclose(holm, st.holm(raw), atol=1e-3)
    assert any(abs(h - p) > 1e-3 for h, p in zip(holm, raw))  # corrected, not raw


def factorial_cells(ldi) -> pd.DataFrame:
    rows = []
    for pe in ("none", "sinusoidal"):
        for ro in ("last", "mean"):
            rows.append({"arm": f"transformer-{pe}-{ro}", "lag_dependence_index": ldi(pe, ro)})
    return pd.DataFrame(rows)


def test_the_lens_table_says_whether_the_readout_or_the_encoding_moves_w():
    spec = {
        "base": "transformer",
        "positional": ["none", "sinusoidal"],
        "readout": ["last", "mean"],
    }
    by_readout = lens_by_encoding_and_readout(
        factorial_cells(lambda pe, ro: 0.9 if ro == "last" else 0.3), spec
    )
    assert "| none | 0.900 | 0.300 |" in by_readout
    assert by_readout[-1].startswith(
        "Range of the index across encodings at a fixed readout: 0.000 on average; "
        "across readouts at a fixed encoding: 0.600."
    )
    assert by_readout[-1].endswith("more than the positional encoding does.")
    by_encoding = lens_by_encoding_and_readout(
        factorial_cells(lambda pe, ro: 0.9 if pe == "sinusoidal" else 0.2), spec
    )
    assert by_encoding[-1].endswith("more than the readout does.")


def test_a_lens_table_with_arms_missing_compares_no_ranges():
    spec = {
        "base": "transformer",
        "positional": ["none", "sinusoidal"],
        "readout": ["last", "mean"],
    }
    cells = factorial_cells(lambda pe, ro: 0.9 if pe == "none" else 0.2)
    part = lens_by_encoding_and_readout(cells[cells["arm"] != "transformer-sinusoidal-mean"], spec)
    assert "| sinusoidal | 0.200 | - |" in part
    assert part[-1] == "1 of 4 arms have no lens yet: no ranges compared."
    assert not any("Range" in line for line in part)


def factorial_records(
    arms: list[str], lead: float | dict = 0.2, lstm_drop: float | dict = 0.05
) -> Records:
    """lstm and `arms` at the sizes `lead` names (2 flights for a number), 4 seeds x 6
    temporal-order test flights; lstm leads each arm by `lead[size]` on every one, and loses
    `lstm_drop[size]` of its windowed VUS-PR when each window's rows are shuffled (the arms lose
    nothing)."""
    lead = lead if isinstance(lead, dict) else {2: lead}
    drops = lstm_drop if isinstance(lstm_drop, dict) else dict.fromkeys(lead, lstm_drop)
    rng = np.random.default_rng(1)
    cells, flights = [], []
    for size, d in lead.items():
        for seed in range(4):
            for arm in ["lstm", *arms]:
                for f in range(6):
                    v = 0.4 + 0.03 * f + (d if arm == "lstm" else 0.0) + rng.normal(0, 0.01)
                    flights.append(dict(arm=arm, train_flights=size, seed=seed, held_out="",
                                        flight_id=f"f{f}", fault_type=ORDER_FAULT, vus_pr=v))  # fmt: skip
                drop = (drops[size] if arm == "lstm" else 0.0) + rng.normal(0, 0.005)
                cells.append(dict(arm=arm, train_flights=size, seed=seed, held_out="",
                                  vus_pr_order=0.5, vus_pr_order_windowed=0.5,
                                  vus_pr_order_shuffled=0.5 - drop))  # fmt: skip
    return Records(pd.DataFrame(cells), pd.DataFrame(flights))


FACTORIAL = {"base": "transformer", "positional": ["none", "sinusoidal"], "readout": ["last"],
             "sizes": [2]}  # fmt: skip
BOTH = ["transformer-none-last", "transformer-sinusoidal-last"]


def test_a_factorial_part_way_gets_no_verdict_and_a_whole_one_does():
    _, verdict, evidence = factorial_section(
        factorial_records(["transformer-none-last"]), FACTORIAL, "lstm", 0.03
    )
    assert verdict == "not measured yet"
    assert evidence == "1 of 2 encoding x readout arms x sizes compared with lstm so far"
    _, verdict, evidence = factorial_section(factorial_records(BOTH), FACTORIAL, "lstm", 0.03)
    assert verdict == "reproduced"
    assert evidence.endswith("arms worse than lstm (Holm): 2 of 2 at 2 flights")


def test_a_lead_on_order_faults_without_order_use_proves_nothing_about_order():
    # the LSTM scores the same with each window's rows shuffled: its lead is not about order
    records = factorial_records(BOTH, lstm_drop=0.0)
    _, verdict, evidence = factorial_section(records, FACTORIAL, "lstm", 0.03)
    assert verdict == "inconclusive"
    assert "not shown to use order" in evidence and "2 of 2 at 2 flights" in evidence


def test_arms_shown_level_with_the_lstm_do_not_reproduce_claim_4():
    for drop in (0.05, 0.0):  # whether or not the LSTM uses order
        records = factorial_records(BOTH, lead=0.0, lstm_drop=drop)
        assert factorial_section(records, FACTORIAL, "lstm", 0.03)[1] == "not reproduced"


def test_claim_4_counts_arms_worse_only_where_the_lstm_uses_order():
    two = dict(FACTORIAL, sizes=[2, 8])
    # worse at both sizes, order used at 2 only: partly
    records = factorial_records(BOTH, lead={2: 0.2, 8: 0.2}, lstm_drop={2: 0.05, 8: 0.0})
    assert factorial_section(records, two, "lstm", 0.03)[1] == "partly reproduced"
    # worse only at 8, where the LSTM's lead cannot be about order; level at 2
    records = factorial_records(BOTH, lead={2: 0.0, 8: 0.2}, lstm_drop={2: 0.05, 8: 0.0})
    assert factorial_section(records, two, "lstm", 0.03)[1] == "inconclusive"


def study_records(lead: dict[int, float] | None = None) -> Records:
    """lstm, transformer and transformer-4x at 2 and 8 flights, 10 seeds, 20 test flights (2
    with a temporal-order fault). VUS-PR: lstm leads transformer by `lead[size]` (0.05); the 4x arm
    ties lstm except on the order flights, where lstm leads it by 0.1. Training: the transformer
    reaches the loss target in 2 epochs of 2 s, lstm in 6 epochs of 1 s; but the transformer
    trains 40 epochs, lstm 20, so its fit time is 4x lstm's."""
    rng = np.random.default_rng(0)
    cells, flights, curves = [], [], []
    speed = {"lstm": (1.0, 6, 20), "transformer": (2.0, 2, 40), "transformer-4x": (2.0, 2, 40)}
    params = {"lstm": 1000, "transformer": 1300, "transformer-4x": 4000}
    for size in (2, 8):
        for seed in range(10):
            for arm in ("lstm", "transformer", "transformer-4x"):
                values = []
                for f in range(20):
                    order = f < 2
                    v = 0.5 + 0.01 * f + rng.normal(0, 0.002)
                    gap = (lead or {}).get(size, 0.05)
                    v += {"lstm": gap, "transformer": 0.0}.get(arm, gap - 0.1 if order else gap)
                    values.append(v)
                    flights.append(
                        dict(
                            arm=arm,
                            train_flights=size,
                            seed=seed,
                            held_out="",
                            flight_id=f"f{f}",
                            fault_type="temporal_order" if order else "engine",
                            vus_pr=v,
                        )
                    )
                per_epoch, reach, epochs = speed[arm]
                curves += [
                    dict(
                        arm=arm,
                        train_flights=size,
                        seed=seed,
                        held_out="",
                        epoch=e,
                        val_loss=1.0 if e >= reach else 2.0,
                        fit_seconds=per_epoch * e,
                    )
                    for e in range(1, epochs + 1)
                ]
                cells.append(
                    dict(
                        arm=arm,
                        train_flights=size,
                        seed=seed,
                        held_out="",
                        epochs=epochs,
                        best_epoch=reach,
                        steps=32 * epochs,
                        hit_max_epochs=0.0,
                        fit_seconds=per_epoch * epochs,
                        validate_seconds=1.0,
                        n_params=params[arm],
                        score_us_per_row=10.0,
                        vus_pr=float(np.mean(values)),
                        flight_f1=0.5,
                    )
                )
    return Records(pd.DataFrame(cells), pd.DataFrame(flights), pd.DataFrame(curves))


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[str, dict[str, dict]]:
    params = {"compare": "lstm,transformer", "scaling": "transformer-4x", "margin": "0.03"}
    text, verdicts = build(study_records(), params, tmp_path_factory.mktemp("study"), "study")
    return text, {v["claim"]: v for v in verdicts}


def test_the_overall_verdict_is_the_difference_averaged_over_sizes(study):
    text, v = study
    claim1 = v["lstm reaches higher vus_pr than transformer"]
    assert claim1["verdict"] == "lstm better on average over the sizes"
    assert "averaged +0.050 [+0.04" in claim1["evidence"]
    assert "per size: 2: lstm better, 8: lstm better" in claim1["evidence"]
    assert "With the same seeds and test flights drawn at every size" in text
    assert (
        "Overall verdict: **lstm better on average over the sizes** (each of the average's tests Holm"
        in text
    )
    assert "fewer than 10 seeds" not in text


def test_verdicts_resting_on_few_seeds_are_marked_indicative(tmp_path):
    r = study_records()
    drop = lambda t: t[~((t["arm"] == "transformer-4x") & (t["seed"] >= 3))]  # noqa: E731
    r = Records(drop(r.cells), drop(r.flights), r.curves)
    params = {"compare": "lstm,transformer", "scaling": "transformer-4x", "margin": "0.03"}
    text, _ = build(r, params, tmp_path, "study")
    assert "Arms run with fewer than 10 seeds (transformer-4x) get intervals too narrow" in text


def test_opposite_leads_at_the_two_ends_do_not_average_to_equivalent(tmp_path):
    params = {"compare": "lstm,transformer", "margin": "0.03"}
    _, verdicts = build(study_records({2: -0.05, 8: 0.05}), params, tmp_path, "study")
    claim1 = next(v for v in verdicts if v["claim"].startswith("lstm reaches higher"))
    # averaged, the gap is 0 within +-0.03; the trend (+0.05 a doubling) is what is called
    assert claim1["verdict"] == "differs by size (lstm - transformer changes by +0.050 a doubling)"
    assert "averaged +0.000" in claim1["evidence"] or "averaged -0.000" in claim1["evidence"]


def test_training_cost_is_called_on_time_to_quality_not_fit_time(study):
    text, v = study
    claim2 = v["lstm reaches a given validation loss sooner than transformer"]
    # the transformer's fit time is 4x lstm's, yet it gets to the target first in every seed
    assert claim2["verdict"] == "transformer faster at every size"
    assert claim2["evidence"] == (
        "first there per seed: 2: 0:10 (transformer faster), 8: 0:10 (transformer faster)"
    )
    (row,) = [line for line in text.splitlines() if line.startswith("| 2 | 6.0 | 4.0 |")]
    # 10 of 10 seeds one way: two-sided sign test p = 2 / 2**10 = 0.00195, times 2 for Holm over
    # the two sizes = 0.00391
    assert "| 0 : 10 | 0.00391 | transformer faster | 20.0 | 80.0 | 4.00 [4.00, 4.00] |" in row


def test_time_to_quality_races_to_a_loss_both_arms_reach_and_skips_unpaired_seeds():
    r = study_records()
    cv = r.curves
    # seed 0: lstm ends far lower (0.1), so a pooled target would be out of the transformer's
    # reach; the race is to 1.1 x the worse best loss (1.0), where the transformer is first
    cv.loc[(cv["arm"] == "lstm") & (cv["seed"] == 0) & (cv["epoch"] >= 15), "val_loss"] = 0.1
    r.curves = cv[~((cv["arm"] == "transformer") & (cv["seed"] == 1))]  # seed 1: lstm alone
    lstm = time_to_quality(r, "lstm", 2, ("lstm", "transformer"))
    transformer = time_to_quality(r, "transformer", 2, ("lstm", "transformer"))
    assert lstm[0] == 6.0 and transformer[0] == 4.0
    assert 1 not in lstm and 1 not in transformer and len(lstm) == 9


def test_cells_timed_on_two_machines_do_not_race(tmp_path):
    r = study_records()
    c = r.cells
    c["machine"] = "cpu A, 2 cores, torch 1 threads"
    # the transformer's seeds 0-5 at 2 flights ran on a second machine, ten times slower; seeds
    # 6-9 of both arms predate the machine record: run together, they may race, except at 8
    # flights, where the LSTM's were rerun later on a recorded machine
    moved = (c["arm"] == "transformer") & (c["train_flights"] == 2) & (c["seed"] < 6)
    c.loc[moved, "machine"] = "cpu B, 16 cores, torch 1 threads"
    c.loc[moved, ["fit_seconds", "score_us_per_row"]] = [800.0, 100.0]
    c.loc[c["arm"].isin(["lstm", "transformer"]) & (c["seed"] >= 6), "machine"] = None
    rerun = (c["arm"] == "lstm") & (c["train_flights"] == 8) & (c["seed"] >= 6)
    c.loc[rerun, "machine"] = "cpu A, 2 cores, torch 1 threads"
    params = {"compare": "lstm,transformer", "margin": "0.03"}
    text, verdicts = build(r, params, tmp_path, "study")
    claim2 = next(v for v in verdicts if v["claim"].startswith("lstm reaches a given"))
    assert claim2["evidence"] == (
        "first there per seed: 2: 0:4 (inconclusive), 8: 0:6 (inconclusive)"
    )
    # no column of the 2-flight row reads a cell of the other machine
    (row,) = [line for line in text.splitlines() if line.startswith("| 2 | 6.0 | 4.0 |")]
    # 10 of 10 seeds one way: two-sided sign test p = 2 / 2**10 = 0.00195, times 2 for Holm over
    # the two sizes = 0.00391
    assert row.endswith("| 20.0 | 80.0 | 4.00 [4.00, 4.00] | 10 | 10 |")
    assert (
        "Left out, their two cells on different machine setups (or one without the record): "
        "6 seeds at 2 flights, 4 seeds at 8 flights." in text
    )
    assert "cells ran on 2 recorded machine setup(s): cpu A, 2 cores, torch 1 threads (42)" in text
    assert "cpu B, 16 cores, torch 1 threads (6)" in text
    assert "12 cells predate the record of their machine" in text


def test_a_size_whose_cells_all_ran_apart_keeps_its_row():
    r = study_records()
    c = r.cells
    c["machine"] = "cpu A"
    c.loc[(c["arm"] == "transformer") & (c["train_flights"] == 2), "machine"] = "cpu B"
    _, rows = cost_section(r, "lstm", "transformer")
    assert [row["size"] for row in rows] == [2, 8]
    assert rows[0]["verdict"] == "not raced: no seed's two cells ran on one machine setup"


def test_arms_are_listed_in_the_specs_order_not_the_alphabets(tmp_path):
    r = study_records()
    big = {"cells": r.cells, "flights": r.flights, "curves": r.curves}
    for name, frame in big.items():
        extra = frame[frame["arm"] == "transformer-4x"].assign(arm="transformer-16x")
        setattr(r, name, pd.concat([frame, extra], ignore_index=True))
    r.cells = r.cells.sort_values(KEYS).reset_index(drop=True)  # as load_records has them
    r.cells["lag_dependence_index"], r.cells["effective_memory_seconds"] = 0.5, 1.0
    params = {"compare": "lstm,transformer", "scaling": "transformer-4x,transformer-16x"}
    text, _ = build(r, params, tmp_path, "study")
    tables = 0
    for block in text.split("\n\n"):
        first = [line.split(" |")[0] for line in block.splitlines() if line.startswith("| ")]
        if "| transformer-16x" in first:
            assert first.index("| transformer-4x") < first.index("| transformer-16x"), block
            tables += 1
    assert tables >= 4 and "## What each model looks at" in text  # the lens table too


@pytest.mark.parametrize("logged", [True, False])
def test_a_campaign_only_sweep_lists_arms_in_the_specs_order(tmp_path, logged):
    spec = ("lstm", "transformer", "linear_rnn", "pca", "iforest")
    r = loco_records({"2018-07": 0.0, "2018-09": 0.0}, arms=spec)
    params = {"compare": "lstm,transformer", **({"arms": ",".join(spec)} if logged else {})}
    text, _ = build(r, params, tmp_path, "LOCO")
    listed = spec if logged else spec[:3] + ("iforest", "pca")  # unlogged: the rest as stored
    tables = 0
    for block in text.split("\n\n"):
        rows = [line.split(" |")[0][2:] for line in block.splitlines() if line.startswith("| ")]
        if "linear_rnn" in rows:
            assert [x for x in rows if x in spec] == list(listed), block
            tables += 1
    assert tables == 2  # training (the deep arms), then VUS-PR per held-out campaign


def test_claim3_has_its_own_verdict_on_the_temporal_order_flights(study):
    text, v = study
    every = v["a Transformer needs many times more parameters to match lstm (every test flight)"]
    order = v[
        "a Transformer needs many times more parameters to match lstm (temporal-order flights)"
    ]
    assert every["verdict"] == "reproduced"
    assert every["evidence"] == (
        "smallest matching arm per size: 2: transformer-4x (4.0x), 8: transformer-4x (4.0x)"
    )
    assert order["verdict"] == "inconclusive"
    row = next(line for line in text.splitlines() if line.startswith("| 2 | transformer-4x |"))
    assert "| equivalent within ±0.03 | +0.10" in row and row.endswith("| lstm better |")


def test_claim3_needs_the_parameter_matched_arm_shown_worse():
    from anomaly.study.report import _smallest_match

    ratios = {(s, arm): x for s in (2, 8) for arm, x in [("t", 1.0), ("t16", 16.0), ("t4", 4.0)]}

    def calls(first: str, four: str, sixteen: str) -> dict:
        out = {}
        for s in (2, 8):
            out[s, "t"], out[s, "t16"], out[s, "t4"] = ("", first), ("", sixteen), ("", four)
        return out

    eq = "equivalent within ±0.03"
    # 1x inconclusive: it may match too, so no evidence that more parameters are needed
    assert _smallest_match(calls("inconclusive", eq, eq), ratios, "lstm", "t")[0] == "inconclusive"
    verdict, evidence = _smallest_match(
        calls("lstm better", "lstm better", eq), ratios, "lstm", "t"
    )
    assert verdict == "reproduced" and "2: t16 (16.0x)" in evidence
    # the 4x arm inconclusive: the smallest matching multiple might be 4, not 16
    verdict, evidence = _smallest_match(
        calls("lstm better", "inconclusive", eq), ratios, "lstm", "t"
    )
    assert verdict == "inconclusive" and "2: t16 (16.0x), t4 inconclusive" in evidence
    verdict, evidence = _smallest_match(calls("lstm better", eq, eq), ratios, "lstm", "t")
    assert "2: t4 (4.0x)" in evidence  # the smallest by ratio, not the first listed
    assert _smallest_match(calls(eq, eq, eq), ratios, "lstm", "t")[0] == "not reproduced"


def test_time_to_quality_says_where_the_arms_windows_differ(tmp_path):
    r = study_records()
    params = {"compare": "lstm,transformer", "margin": "0.03"}
    text, _ = build(r, params, tmp_path, "study")
    assert "windows differ" not in text  # no window recorded: nothing to say
    r.cells["window_len"] = np.where(
        (r.cells["arm"] == "transformer") & (r.cells["train_flights"] == 8), 64.0, 32.0
    )
    text, _ = build(r, params, tmp_path / "again", "study")
    (note,) = [line for line in text.splitlines() if line.startswith("Where the arms' windows")]
    assert note.endswith("one forecast quality: 8 flights (lstm 32 rows, transformer 64).")


def test_a_sweep_of_unlabelled_logs_gets_a_reason_not_a_crash(tmp_path):
    # a sweep of unlabelled logs logs no vus_pr; its report failed inside the tool (KeyError)
    from anomaly.errors import UserError
    from anomaly.evaluate.protocol import per_flight_table

    assert list(per_flight_table([], [], 10.0)) == [
        *("flight_id", "fault_type", "outcome", "delay_s", "first_alarm_s", "onset_s"),
        *("vus_pr", "vus_roc"),
    ]
    r = study_records()
    r = Records(r.cells.drop(columns="vus_pr"), r.flights, r.curves)
    with pytest.raises(UserError, match="no cell has a vus_pr: their test flights hold no"):
        build(r, {"compare": "lstm,transformer"}, tmp_path, "study")
    with pytest.raises(UserError, match=r"no finished cell to report \(12 failed"):
        build(Records(pd.DataFrame(), pd.DataFrame(), unfinished=12), {}, tmp_path, "study")
