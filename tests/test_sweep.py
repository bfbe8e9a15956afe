"""Sweeps on Dask: the embedded LocalCluster, a real `dask scheduler` + `dask worker` on loopback,
resume, a killed worker, a diverged run, and the CLI's one-line errors."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from explorer.sweep import SweepPlan, result_from_session, run_one, run_sweep  # noqa: E402
from explorer.config import TrainConfig  # noqa: E402
from sessions.sweep import is_sweep_file, read_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tiny_plan(out, steps=20, seq_lens=(5, 10), seeds=2, cells=("rnn", "lstm"), **kw) -> SweepPlan:
    base = TrainConfig(task="adding", hidden=4, batch=8, steps=steps, probe_every=10, lr=1e-2, **kw)
    return SweepPlan(base=base, cells=cells, seq_lens=seq_lens, seeds=seeds, out=str(out))


def env_for_subprocess() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NUMBA_NUM_THREADS"] = "1"
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_sweep(out: Path, n: int) -> list[dict]:
    path = out / "sweep.h5"
    assert is_sweep_file(path)
    sw = read_sweep(path)
    assert len(sw.runs) == n
    for r in sw.runs:
        assert r["status"] == "completed", r
        assert (out / r["session"]).is_file()
        assert r["steps"] == sw.config["train"]["steps"]
        assert r["param_count"] > 0 and r["steps_per_s"] > 0 and r["ms_per_step"] > 0
        assert r["decay_ratio"] > 0
    assert not list(out.glob("*.part")) and not list(out.glob(".sweep-*"))
    return sw.runs


# ------------------------------------------------------------------------------ embedded cluster
def test_local_cluster_sweep_then_resume(tmp_path):
    out = tmp_path / "sw"
    seen = {}

    def peek(state):  # ask the workers once what their thread settings are
        if "env" not in seen:
            seen["env"] = state["client"].run(lambda: (os.environ.get("NUMBA_NUM_THREADS"),
                                                       os.environ.get("OPENBLAS_NUM_THREADS")))
    summary = run_sweep(tiny_plan(out), workers=2, quiet=True, callback=peek, poll_s=0.05)
    assert summary.complete and summary.skipped == 0 and len(summary.results) == 8
    runs = check_sweep(out, 8)
    assert {(r["cell"], r["seq_len"], r["seed"]) for r in runs} == \
        {(c, t, s) for c in ("rnn", "lstm") for t in (5, 10) for s in (0, 1)}
    assert sorted(p.name for p in out.glob("*.h5") if p.name != "sweep.h5")[0] == "adding-lstm-T10-s0.h5"
    assert seen["env"] and all(v == ("1", "1") for v in seen["env"].values()), seen
    # the LSTM has 4x the recurrent weights of the RNN
    pc = {r["cell"]: r["param_count"] for r in runs}
    assert pc["lstm"] > 3 * pc["rnn"] - 10

    # resume: nothing to do, nothing rewritten (no cluster is even started)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("adding-*.h5")}
    again = run_sweep(tiny_plan(out), workers=2, quiet=True)
    assert again.skipped == 8 and again.complete
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("adding-*.h5")} == mtimes
    assert [r["final_loss"] for r in again.results] == pytest.approx([r["final_loss"] for r in runs])

    # a lost session file and a half-written one are trained again, the others skipped
    (out / "adding-rnn-T5-s1.h5").unlink()
    (out / "adding-lstm-T5-s0.h5").write_bytes(b"\x89HDF\r\n\x1a\ngarbage")
    third = run_sweep(tiny_plan(out), workers=1, quiet=True)
    assert third.skipped == 6 and third.complete
    check_sweep(out, 8)


def test_diverged_run_is_a_result_not_an_error(tmp_path):
    plan = tiny_plan(tmp_path, steps=200, seq_lens=(10,), seeds=1, cells=("rnn",))
    plan.base = TrainConfig(task="adding", hidden=4, batch=8, steps=200, optimizer="sgd", lr=10.0, clip=0.0,
                            momentum=0.9, probe_every=10)
    spec = plan.specs()[0]
    r = run_one(spec)
    assert r["status"] == "diverged" and not r["solved"] and r["steps"] < 200
    assert "lr" in r["message"]
    again = result_from_session(spec)   # a diverged run is finished: resume skips it
    assert again is not None and again["status"] == "diverged" and again["steps"] == r["steps"]


def test_a_run_whose_file_cannot_be_written_fails_alone_and_the_sweep_goes_on(tmp_path):
    """Its worker cannot write the run's session file (a directory in its place here; a full disk takes the
    same path: the writer's SessionError out of the run): that run is 'failed' with the reason, every other
    run completes, the sweep ends normally and a rerun, once the place is free, trains only that one."""
    out = tmp_path / "out"
    out.mkdir()
    plan = tiny_plan(out, seq_lens=(5,), seeds=2, cells=("rnn",))
    blocked = plan.specs()[0]["session"]
    (out / (blocked + ".part")).mkdir()
    summary = run_sweep(plan, workers=1, retries=0, quiet=True)
    assert summary.failed == 1 and len(summary.results) == 1 and not summary.interrupted
    rows = {r["session"]: r for r in read_sweep(out / "sweep.h5").runs}
    assert rows[blocked]["status"] == "failed" and "directory" in rows[blocked]["message"]
    assert [r["status"] for k, r in rows.items() if k != blocked] == ["completed"]
    (out / (blocked + ".part")).rmdir()
    again = run_sweep(plan, workers=1, quiet=True)
    assert again.skipped == 1 and again.failed == 0 and len(again.results) == 2


def test_changed_config_in_same_folder_is_refused(tmp_path):
    from explorer.sweep import SweepError

    run_sweep(tiny_plan(tmp_path, seq_lens=(5,), seeds=1, cells=("rnn",)), workers=1, quiet=True)
    with pytest.raises(SweepError, match="steps=20"):
        run_sweep(tiny_plan(tmp_path, steps=30, seq_lens=(5,), seeds=1, cells=("rnn",)), workers=1, quiet=True)


# ------------------------------------------------------------------------------ CLI errors
@pytest.mark.parametrize("argv, needle", [
    (["--seeds", "2"], "no seq-lens"),
    (["--seq-lens", ""], "no seq-lens"),
    (["--seq-lens", "10,x"], "not an integer"),
    (["--seq-lens", "1"], "seq-len >= 2"),
    (["--seq-lens", "10", "--cells", "tlstm"], "unknown cell"),
    (["--seq-lens", "10", "--seeds", "0"], "seeds must be"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, argv, needle):
    from explorer.cli import main

    rc = main(["sweep", "--out", str(tmp_path / "o"), "--steps", "5", *argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_cli_unreachable_scheduler(tmp_path, capsys):
    from explorer.cli import main

    t0 = time.monotonic()
    rc = main(["sweep", "--seq-lens", "5", "--seeds", "1", "--cells", "rnn", "--steps", "5", "--hidden", "4",
               "--out", str(tmp_path / "o"), "--scheduler", f"tcp://127.0.0.1:{free_port()}", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and time.monotonic() - t0 < 30
    assert len([l for l in err if "error" in l]) == 1
    assert "cannot reach the Dask scheduler" in err[-1]


def test_cli_out_not_writable(tmp_path, capsys):
    from explorer.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc = main(["sweep", "--seq-lens", "5", "--seeds", "1", "--steps", "5", "--out", str(blocker / "sub"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "not writable" in err[-1] and len([l for l in err if "error" in l]) == 1
    rc = main(["sweep", "--seq-lens", "5", "--seeds", "1", "--steps", "5", "--out", str(blocker), "--quiet"])
    assert rc == 2 and "is a file" in capsys.readouterr().err


# ------------------------------------------------------------------------------ a real cluster
class LoopbackCluster:
    """`dask scheduler` + `dask worker` subprocesses on 127.0.0.1 (each in its own process group)."""

    def __init__(self, n_workers: int = 2):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = env_for_subprocess()
        self.procs: dict[str, subprocess.Popen] = {}
        self._start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                  "--no-dashboard"])
        for i in range(n_workers):
            self._start(f"w{i}", [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1",
                                  "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--name", f"w{i}"])
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.address, timeout=5) as c:
                    c.wait_for_workers(n_workers, timeout=max(1, deadline - time.monotonic()))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def _start(self, name, cmd):
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def close(self) -> None:
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


@pytest.fixture
def loopback_cluster():
    c = LoopbackCluster(2)
    try:
        yield c
    finally:
        c.close()


@pytest.mark.slow
def test_sweep_on_external_scheduler(tmp_path, loopback_cluster, capsys):
    from explorer.cli import main

    out = tmp_path / "ext"
    rc = main(["sweep", "--task", "adding", "--cells", "rnn,lstm", "--seq-lens", "5,10", "--seeds", "2",
               "--steps", "20", "--hidden", "4", "--batch", "8", "--out", str(out),
               "--scheduler", loopback_cluster.address])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "8/8 done" in captured.err
    check_sweep(out, 8)


@pytest.mark.slow
def test_killed_worker_run_completes_elsewhere(tmp_path, loopback_cluster):
    out = tmp_path / "kill"
    plan = tiny_plan(out, steps=4000, seq_lens=(10,), seeds=2)   # 4 runs of ~1-3 s each
    killed = {}

    def kill_w1_mid_run(state):
        if killed:
            return
        client = state["client"]
        info = client.scheduler_info()["workers"]
        w1 = [addr for addr, w in info.items() if w.get("name") == "w1"]
        if not w1:
            return
        keys = [k for k in client.processing(workers=w1).get(w1[0], []) if k in state["pending_keys"]]
        for k in keys:   # kill only once that run has really started (its .part file exists)
            stem = str(k).split("-", 1)[1].rsplit("-", 1)[0]
            if (out / f"{stem}.h5.part").exists():
                loopback_cluster.kill("w1")
                killed["key"], killed["session"] = k, f"{stem}.h5"
                return

    summary = run_sweep(plan, scheduler=loopback_cluster.address, quiet=True, callback=kill_w1_mid_run,
                        poll_s=0.05)
    assert killed, "the test never caught a run in progress on w1"
    assert summary.complete and summary.failed == 0 and len(summary.results) == 4
    runs = check_sweep(out, 4)
    assert killed["session"] in {r["session"] for r in runs}
    assert loopback_cluster.procs["w1"].poll() is not None     # really dead


@pytest.mark.slow
def test_the_scheduler_killed_mid_sweep_ends_in_one_line_keeps_every_finished_run_and_a_rerun_resumes(tmp_path):
    """A real `dask scheduler` and `dask worker`; both are killed with SIGKILL once a run finished."""
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    bindir = Path(sys.executable).parent
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    sched = subprocess.Popen([str(bindir / "dask"), "scheduler", "--port", str(port), "--no-dashboard"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = None
    out = tmp_path / "out"
    argv = [str(bindir / "lstm-explorer"), "sweep", "--seq-lens", "10,20", "--seeds", "2", "--cells", "rnn",
            "--steps", "300", "--hidden", "8", "--batch", "8", "--test-size", "16", "--out", str(out), "--quiet"]
    try:
        worker = subprocess.Popen([str(bindir / "dask"), "worker", addr, "--nworkers", "1", "--nthreads", "1",
                                   "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        sweep = subprocess.Popen(argv + ["--scheduler", addr], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env)
        finished = lambda: [p for p in out.glob("adding-*.h5")]   # noqa: E731  (a .part does not match)
        deadline = time.monotonic() + 120
        while not finished() and time.monotonic() < deadline and sweep.poll() is None:
            time.sleep(0.2)
        assert finished(), "no run finished: nothing to keep"
        # the worker first (its machine gone with it): a worker left running would finish its run after the
        # sweep had ended, unlisted until the rerun picks it up, and 'every finished run is listed' would race
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        sched.send_signal(signal.SIGKILL)
        _, err = sweep.communicate(timeout=120)
    finally:
        for p in (sched, worker):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert sweep.returncode == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and errors[0].startswith("lstm-explorer sweep: error: lost the Dask scheduler at " + addr)
    assert "run the same command again to resume" in errors[0] and err.strip().endswith(errors[0])
    kept = {p.name for p in out.glob("adding-*.h5")}
    listed = {r["session"] for r in read_sweep(out / "sweep.h5").runs if r["status"] == "completed"}
    assert kept and kept <= listed                                # every finished run is in sweep.h5
    # the same command, on this machine this time, trains only the rest
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    runs = read_sweep(out / "sweep.h5").runs
    assert len(runs) == 4 and all(r["status"] == "completed" for r in runs)
    resumed = int(re.search(r"(\d+) resumed", done.stdout + done.stderr).group(1))
    assert len(kept) <= resumed < 4            # the kept runs were not trained again (the worker may have
    #                                            finished one more before it was stopped)
