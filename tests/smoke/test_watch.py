"""`anomaly watch` on a log another process is still writing: the injected fault's alarm is
printed and appended to the events file, at the row batch scoring raises it on."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from anomaly.cli import main
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
    trial = run_trial(quick_config(str(easy_dir), "lstm"))  # the default, calibrated rule
    pipe = trial.pipeline
    model = pipe.save(tmp_path / "model")
    # a fault injected into a fault-free flight: a 10-sigma step on one channel from row k on,
    # early enough to come before any false alarm the quickly trained model raises there
    manifest = pd.read_csv(easy_dir / "manifest.csv")
    name = manifest.loc[manifest["fault_type"] == "none", "file"].iloc[0]
    frame = pd.read_csv(easy_dir / "flights" / name)
    normal = pipe.score(frame[pipe.channels].to_numpy(np.float32), frame["time"].to_numpy())
    k, channel = len(frame) // 4, pipe.channels[0]
    frame.loc[k:, channel] += 10 * frame[channel].std()
    source = tmp_path / "stepped.csv"
    frame.to_csv(source, index=False)
    stepped = pipe.score(frame[pipe.channels].to_numpy(np.float32), frame["time"].to_numpy())
    first = int(np.flatnonzero(stepped.is_anomaly)[0])
    assert k <= first < np.r_[np.flatnonzero(normal.is_anomaly), len(frame)][0]  # the step's
    first_alarm = frame["time"].iloc[first]
    log, events = tmp_path / "live.csv", tmp_path / "alarms.csv"
    watch = ["watch", str(log), "--model", str(model), "--events", str(events), "--poll", "0.01"]
    cmd = [sys.executable, "-m", "anomaly.cli", *watch]
    stderr = open(tmp_path / "watch.err", "w")  # a file: an unread pipe could fill and block
    watcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.Queue[str] = queue.Queue()
    # read on a thread: a watch that never prints an alarm must fail the test, not hang it
    threading.Thread(target=lambda: [lines.put(x) for x in watcher.stdout], daemon=True).start()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(log)])
    try:
        alarm = None
        deadline = time.time() + 120
        while alarm is None and time.time() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line.startswith("ALARM"):
                alarm = line
        assert alarm is not None, "no alarm printed: " + (tmp_path / "watch.err").read_text()
        assert f"t={first_alarm:.2f} s" in alarm
        writer.wait(timeout=60)
    finally:
        watcher.send_signal(signal.SIGTERM)  # how a watch ends
        code = watcher.wait(timeout=30)
        writer.kill()
        stderr.close()
    assert code == 0
    said = (tmp_path / "watch.err").read_text()
    level = float(pipe.rule.threshold.threshold_)
    # what it raised before it was stopped, and the level its scores were judged against
    assert re.search(rf"stopped; [1-9]\d* alarm\(s\), decision level {level:.3f}", said)
    logged = pd.read_csv(events)
    assert logged["start"].iloc[0] == pytest.approx(first_alarm, abs=1e-3)
    assert logged["file"].iloc[0] == str(log)
    # --once on the finished log: the same alarms, at the same rows, as batch scoring
    once = tmp_path / "once.csv"
    assert main(["watch", str(source), "--model", str(model), "--events", str(once), "--once"]) == 0
    assert main(["score", str(source), "--model", str(model), "--out", str(tmp_path / "s")]) == 0
    scored = pd.read_csv(tmp_path / "s" / "events.csv")
    watched = pd.read_csv(once)
    assert len(watched) == len(scored) > 0
    assert watched["start"].tolist() == pytest.approx(scored["start"].tolist(), abs=1e-6)
    assert watched["channel"].tolist() == scored["channel"].tolist()
    # a log shorter than one window judged no row: refused as `anomaly score` refuses it, not
    # passed as a quiet flight
    short = tmp_path / "short.csv"
    frame.iloc[: pipe.window_len - 1].to_csv(short, index=False)
    assert main(["watch", str(short), "--model", str(model), "--once"]) == 2
