"""`anomaly watch` on a log another process is still writing: the injected fault's alarm is
printed and appended to the events file, at the row batch scoring raises it on."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from anomaly.study.trial import run_trial
from tests.helpers import quick_config

WRITER = """
import sys, time
src, dst = sys.argv[1], sys.argv[2]
lines = open(src).read().splitlines(keepends=True)
with open(dst, "w") as out:
    out.write(lines[0]); out.flush()
    for i in range(1, len(lines), 40):
        out.write("".join(lines[i:i + 40])); out.flush()
        time.sleep(0.01)
"""


@pytest.mark.slow
def test_watch_prints_the_alarm_of_a_fault_being_written(easy_dir, tmp_path):
    # a low decision level: the quickly trained model must raise some alarm to be watched for
    trial = run_trial(quick_config(str(easy_dir), "lstm", detect={"threshold": "quantile:0.99"}))
    model = trial.pipeline.save(tmp_path / "model")
    hit = next(r for r in trial.results if r.flight.onset_index and r.flagged.any())
    source = easy_dir / "flights" / f"{hit.flight.flight_id}.csv"
    first_alarm = hit.flight.time[hit.flagged.argmax()]
    log, events = tmp_path / "live.csv", tmp_path / "alarms.csv"
    watch = ["watch", str(log), "--model", str(model), "--events", str(events), "--poll", "0.01"]
    cmd = [sys.executable, "-m", "anomaly.cli", *watch]
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(log)])
    try:
        alarm = None
        deadline = time.time() + 120
        while alarm is None and time.time() < deadline:
            line = watcher.stdout.readline()
            if line.startswith("ALARM"):
                alarm = line
        assert alarm is not None, "no alarm printed"
        assert f"t={first_alarm:.2f} s" in alarm
        writer.wait(timeout=60)
    finally:
        watcher.send_signal(signal.SIGTERM)  # how a watch ends
        code = watcher.wait(timeout=30)
        writer.kill()
    assert code == 0
    logged = pd.read_csv(events)
    assert logged["start"].iloc[0] == pytest.approx(first_alarm, abs=1e-3)
    assert logged["file"].iloc[0] == str(log)
