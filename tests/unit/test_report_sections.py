import numpy as np
import pandas as pd

from anomaly.evaluate import statistics as st
from anomaly.study.records import Records
from anomaly.study.report import build, lens_by_encoding_and_readout


def loco_records(lead: dict[str, float]) -> Records:
    """Two arms, three held-out campaigns, 3 seeds x 6 test flights each; the LSTM's VUS-PR is
    the Transformer's plus `lead[campaign]` and a little noise."""
    rng = np.random.default_rng(0)
    cells, flights = [], []
    for campaign, d in lead.items():
        for seed in range(3):
            for arm in ("lstm", "transformer"):
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
    return Records(pd.DataFrame(cells), pd.DataFrame(flights))


def test_a_campaign_only_sweep_gets_a_paired_verdict_per_held_out_campaign(tmp_path):
    r = loco_records({"2018-07": 0.10, "2018-09": 0.0, "2018-10": 0.0})
    text, verdicts = build(r, {"compare": "lstm,transformer", "margin": "0.03"}, tmp_path, "LOCO")
    assert (tmp_path / "report.md").read_text() == text
    assert "18 labelled test flights" in text
    rows = [
        line for line in text.splitlines() if line.startswith("| every flight of the other two")
    ]
    assert len(rows) == 3
    assert rows[0].startswith("| every flight of the other two (test 2018-07) | +0.")
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
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| every flight")]
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
