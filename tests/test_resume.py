"""`lstm-explorer train --resume FILE` (issue 16): the session file keeps a checkpoint (weights, optimizer state,
batch-stream state, stop rules, step); a run killed with kill -9 or stopped goes on from it, appending to the
same runs, and every step after the resume is the step an uninterrupted run takes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from explorer.config import TrainConfig
from explorer.training import CheckpointRecord, StatusRecord, StepRecord, Trainer
from sessions import open_session
from tests.terminal import ctrl_c_reaches_it

ARGS = ["--task", "adding", "--seq-len", "12", "--cell", "rnn,lstm", "--hidden", "8", "--batch", "8",
        "--test-size", "16", "--quiet"]


def _train(args, out, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "explorer", "train", *ARGS, *args, "--out", str(out)],
                            env={**os.environ, "LSTM_EXPLORER_CHECKPOINT_S": "0", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _resume(path, *more):
    return subprocess.run([sys.executable, "-m", "explorer", "train", "--resume", str(path), "--quiet", *more],
                          capture_output=True, text=True, timeout=300)


def _same_runs(a, b, tests_before=0, names=("rnn", "lstm")) -> None:
    """Every recorded step, probe, test figure and final weight of ``a``'s runs ``names`` equals ``b``'s (wall
    times aside); ``a``'s first ``tests_before`` test rows (taken at an earlier cap) aside."""
    with open_session(a) as sa, open_session(b) as sb:
        for name in names:
            ra, rb = sa.run(name), sb.run(name)
            assert ra.status == rb.status == "completed"
            for series in ("loss", "metric", "grad_norm"):
                step_a, _, va = ra.scalar(series)
                step_b, _, vb = rb.scalar(series)
                np.testing.assert_array_equal(step_a, step_b)
                np.testing.assert_array_equal(va, vb, err_msg=f"{name} {series}")
            np.testing.assert_array_equal(ra.probe_steps, rb.probe_steps)
            for key in ("grad_norm_t", "saliency", "spectrum", "h"):
                np.testing.assert_array_equal(ra.probe_series(key), rb.probe_series(key), err_msg=f"{name} {key}")
            assert [(t["step"], t["loss"]) for t in ra.tests[tests_before:]] == \
                [(t["step"], t["loss"]) for t in rb.tests]
            for k, v in ra.params.items():
                np.testing.assert_array_equal(v, rb.params[k], err_msg=k)


def _pause_at_step(path, n, proc, timeout=120):
    """Return once the file at ``path`` holds a checkpoint of step >= ``n``, with ``proc`` stopped (SIGSTOP) so
    that the signal sent next lands mid-run however fast the machine trains; each look at the file is taken
    with the writer stopped too. (Polling a running writer once let a loaded CI machine see the checkpoint
    only after the last step: the Ctrl-C then met a finished run.)"""
    deadline = time.monotonic() + timeout
    while True:
        proc.send_signal(signal.SIGSTOP)
        try:
            with open_session(path) as s:
                ck = s.checkpoint
            if ck is not None and ck["step"] >= n:
                return
        except Exception:
            pass
        proc.send_signal(signal.SIGCONT)
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the training never reached the step"
        time.sleep(0.05)


STEPS = 200


def _uninterrupted(tmp_path, steps: int):
    whole = tmp_path / "whole.h5"
    proc = _train(["--steps", str(steps)], whole)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    return whole


@pytest.mark.slow
def test_a_run_killed_with_kill_9_resumes_and_matches_an_uninterrupted_run(tmp_path):
    whole = _uninterrupted(tmp_path, STEPS)
    killed = tmp_path / "killed.h5"
    proc = _train(["--steps", str(STEPS)], killed)
    _pause_at_step(killed, 40, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open_session(killed) as s:
        assert {r.status for r in s.runs} == {"interrupted"}
        at = s.checkpoint["step"]
        assert 40 <= at < STEPS
    r = _resume(killed)
    assert r.returncode == 0, r.stderr
    assert f"resuming {killed} after step {at:,} of {STEPS:,}" in r.stderr
    assert [line.split()[:3] for line in r.stdout.splitlines() if line.split()[:1] in (["rnn"], ["lstm"])] == \
        [["rnn", "completed", str(STEPS)], ["lstm", "completed", str(STEPS)]]          # the summary covers the whole run
    _same_runs(killed, whole)
    # and a finished file has nothing left to resume
    again = _resume(killed)
    assert again.returncode == 2 and "nothing to resume" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path):
    whole = _uninterrupted(tmp_path, STEPS)
    stopped = tmp_path / "stopped.h5"
    proc = _train(["--steps", str(STEPS)], stopped, preexec_fn=ctrl_c_reaches_it)
    _pause_at_step(stopped, 30, proc)
    proc.send_signal(signal.SIGINT)          # Ctrl-C: the runs end "stopped", the file is closed
    proc.send_signal(signal.SIGCONT)
    assert proc.wait(timeout=120) == 130
    with open_session(stopped) as s:
        assert {r.status for r in s.runs} == {"stopped"}
    r = _resume(stopped)
    assert r.returncode == 0, r.stderr
    _same_runs(stopped, whole)


@pytest.mark.slow
def test_a_finished_run_trains_on_when_its_cap_is_raised(tmp_path):
    """`--resume FILE --steps N`: runs that reached their cap go on from the checkpoint taken there, to N,
    exactly as a run given N steps from the start; the file's configuration says N."""
    probes = ["--probe-every", "10"]
    whole = _train(["--steps", "120", *probes], tmp_path / "whole.h5")
    assert whole.wait(timeout=300) == 0, whole.communicate()
    first = _train(["--steps", "50", *probes], tmp_path / "first.h5")
    assert first.wait(timeout=300) == 0, first.communicate()
    with open_session(tmp_path / "first.h5") as s:
        assert s.checkpoint["step"] == 50 and {r.status for r in s.runs} == {"completed"}
    r = _resume(tmp_path / "first.h5", "--steps", "120")
    assert r.returncode == 0, r.stderr
    assert "after step 50 of 120 (the cap raised from 50)" in r.stderr
    assert [line.split()[:3] for line in r.stdout.splitlines() if line.split()[:1] in (["rnn"], ["lstm"])] == \
        [["rnn", "completed", "120"], ["lstm", "completed", "120"]]
    _same_runs(tmp_path / "first.h5", tmp_path / "whole.h5", tests_before=1)
    info = subprocess.run([sys.executable, "-m", "explorer", "info", "--json", str(tmp_path / "first.h5")],
                          capture_output=True, text=True, timeout=120)
    assert {run["config"]["steps"] for run in json.loads(info.stdout)["runs"]} == {120}


def test_a_resume_can_lower_the_learning_rate_for_the_steps_still_to_train(tmp_path):
    """`--resume FILE --steps N --lr-schedule S:LR`: the steps from S on train at LR, exactly as a run given the
    schedule from the start; the file says so. A schedule that rewrites trained steps is refused."""
    probes = ["--probe-every", "10"]
    whole = _train(["--steps", "120", "--lr-schedule", "61:1e-3", *probes], tmp_path / "whole.h5")
    assert whole.wait(timeout=300) == 0, whole.communicate()
    first = _train(["--steps", "60", *probes], tmp_path / "first.h5")
    assert first.wait(timeout=300) == 0, first.communicate()
    r = _resume(tmp_path / "first.h5", "--steps", "120", "--lr-schedule", "61:1e-3")
    assert r.returncode == 0, r.stderr
    assert "learning rate from step 61: 0.001" in r.stderr
    _same_runs(tmp_path / "first.h5", tmp_path / "whole.h5", tests_before=1)
    info = subprocess.run([sys.executable, "-m", "explorer", "info", "--json", str(tmp_path / "first.h5")],
                          capture_output=True, text=True, timeout=120)
    assert {run["config"]["lr_schedule"] for run in json.loads(info.stdout)["runs"]} == {"61:1e-3"}
    r = _resume(tmp_path / "first.h5", "--steps", "200", "--lr-schedule", "100:1e-4")
    assert r.returncode == 2 and "changes only steps still to train" in r.stderr and "121:1e-4" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_solved_run_trains_on_past_its_stop_rule_with_no_until_solved(tmp_path):
    """`--resume FILE --no-until-solved`: a run that stopped when its rule held goes on from its last checkpoint
    to the cap, exactly as a run given no --until-solved; the step the rule held is recorded again."""
    tiny = ["--task", "temporal-hs97", "--seq-len", "12", "--hidden", "8", "--batch", "8", "--cell", "lstm",
            "--test-size", "16", "--probe-every", "50", "--quiet"]
    env = {**os.environ, "LSTM_EXPLORER_CHECKPOINT_S": "0"}

    def train(*args):
        return subprocess.run([sys.executable, "-m", "explorer", "train", *tiny, *args], env=env,
                              capture_output=True, text=True, timeout=300)

    assert train("--steps", "600", "--until-solved", "--out", str(tmp_path / "solved.h5")).returncode == 0
    with open_session(tmp_path / "solved.h5") as s:
        at = s.run("lstm").solved_at["step"]
        assert s.run("lstm").steps == at < 600        # it stopped where the rule held
    assert train("--steps", "700", "--out", str(tmp_path / "whole.h5")).returncode == 0

    r = _resume(tmp_path / "solved.h5", "--steps", "700", "--until-solved")
    assert r.returncode == 2 and "drop --until-solved" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _resume(tmp_path / "solved.h5", "--steps", "700", "--no-until-solved")
    assert r.returncode == 0, r.stderr
    assert f"the stop rule no longer stops a run from step {at:,}: training on to step 700" in r.stderr
    _same_runs(tmp_path / "solved.h5", tmp_path / "whole.h5", names=("lstm",))
    with open_session(tmp_path / "solved.h5") as s:
        run = s.run("lstm")
        assert run.steps == 700 and run.solved_at["step"] == at and run.config["until_solved"] is False


def test_the_trainer_goes_on_from_a_checkpoint_exactly(monkeypatch):
    """In process: a trainer stopped after step 7 yields a checkpoint first; a new trainer given it yields the
    same steps as one that was never stopped (an until-solved cell's stop rule and the batch stream included)."""
    monkeypatch.setenv("LSTM_EXPLORER_CHECKPOINT_S", "1e9")     # only the stop's checkpoint
    cfg = TrainConfig(task="adding", seq_len=6, cells=("rnn", "lstm", "gru"), hidden=4, batch=4, steps=20,
                      test_size=0, lr=0.05)
    whole = [(r.cell, r.step, r.loss) for r in Trainer(cfg).run() if isinstance(r, StepRecord)]
    first = Trainer(cfg)
    records = []
    for rec in first.run():
        records.append(rec)
        if isinstance(rec, StepRecord) and rec.step == 7 and rec.cell == "gru":
            first.stop()
    ck = [r for r in records if isinstance(r, CheckpointRecord)]
    assert len(ck) == 1 and ck[0].step == 7
    assert [r.status for r in records if isinstance(r, StatusRecord)][-3:] == ["stopped"] * 3
    rest = [(r.cell, r.step, r.loss) for r in Trainer(cfg).run(ck[0]) if isinstance(r, StepRecord)]
    before = [(r.cell, r.step, r.loss) for r in records if isinstance(r, StepRecord)]
    assert before + rest == whole


def test_resume_errors_are_one_line(tmp_path):
    from tests.gui_fixtures import record_session

    old = record_session(tmp_path / "old.h5", steps=5)            # finished: nothing to resume
    r = _resume(old)
    assert r.returncode == 2 and "nothing to resume" in r.stderr
    assert "add --steps N" in r.stderr                            # ... unless its cap is raised
    results = [r]
    r = subprocess.run([sys.executable, "-m", "explorer", "train", "--resume", old, "--seed", "9"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "drop --seed" in r.stderr
    results.append(r)
    results.append(_resume(old, "--steps", "5"))                  # a cap that is not raised
    assert results[-1].returncode == 2 and "give more than the file's 5 steps" in results[-1].stderr
    none = tmp_path / "none.h5"                                  # stopped before its first checkpoint
    shutil.copy(old, none)
    with h5py.File(none, "r+") as f:
        del f["checkpoint"]
        f["runs/lstm/status"][()] = np.bytes_(b"stopped")
    results.append(_resume(none))
    assert results[-1].returncode == 2 and "holds no checkpoint to resume from" in results[-1].stderr
    results.append(_resume(tmp_path / "missing.h5"))
    assert results[-1].returncode == 2 and "missing.h5" in results[-1].stderr
    for res in results:
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
