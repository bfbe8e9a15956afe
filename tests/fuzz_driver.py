"""The driver of the hostile-file fuzzer: a pool of worker processes, one case at a time, each with a
timeout, so a crash or a hang is caught and reported with its mutation (see :mod:`tests.fuzz_files`)."""
from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "@@FUZZ "   # the workers' answers, among whatever else Qt prints


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def entry_kind(entry: str) -> str:
    """"export gates png" -> "export", "export --all svg" -> "export --all", "info --check" stays."""
    if entry.startswith("export"):
        return "export --all" if "--all" in entry else "export"
    return entry


# ---------------------------------------------------------------------------------- driver
@dataclass
class FuzzReport:
    count: int = 0                       # mutations applied and checked
    skipped: int = 0                     # mutations that could not be applied
    seconds: float = 0.0
    cpu_seconds: float = 0.0             # CPU time of the worker processes
    failures: list[dict] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)    # (entry point kind, outcome) -> n
    seconds_by_entry: Counter = field(default_factory=Counter)   # entry point kind -> seconds in workers

    def summary(self) -> str:
        kinds = Counter()
        for (entry, outcome), n in self.outcomes.items():
            kinds[(entry_kind(entry), outcome)] += n
        parts = "; ".join(f"{e}: " + ", ".join(f"{o} {n}" for (e2, o), n in sorted(kinds.items()) if e2 == e)
                          + f" ({self.seconds_by_entry[e]:.0f} s)" for e in sorted({e for e, _ in kinds}))
        return (f"{self.count} mutations checked in {self.seconds:.1f} s (workers' CPU time {self.cpu_seconds:.0f} s; "
                f"{self.skipped} not applicable), "
                f"{len(self.failures)} failure(s); {parts}")

    def describe_failures(self, limit: int = 20) -> str:
        return "\n\n".join(f"case {f['index']} (base {f['base']}, seed {f['seed']}): {f['what']}\n"
                           f"  {f['entry']}: {f['detail']}" for f in self.failures[:limit])


class _Worker:
    def __init__(self, slot: int, workdir: str, window_every: int, all_every: int, start_timeout_s: float):
        self.dir = os.path.join(workdir, f"w{slot}")
        os.makedirs(self.dir, exist_ok=True)
        self.log = open(os.path.join(self.dir, "worker.log"), "ab")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz_files", "worker", self.dir,
                                      str(window_every), str(all_every)], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self._buf = b""
        self.eof = False     # its output ended (it exited or died)
        msg = self.read(start_timeout_s)
        if msg is None or "ready" not in msg:
            self.kill()
            raise RuntimeError(f"the fuzz worker did not start: {self.log_tail()}")

    def send(self, case: dict) -> None:
        self.proc.stdin.write((json.dumps(case) + "\n").encode())
        self.proc.stdin.flush()

    def read(self, timeout_s: float) -> dict | None:
        """The next tagged message, or None on timeout or end of output."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                if text.startswith(TAG):
                    return json.loads(text[len(TAG):])
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self.eof = True
                return None
            self._buf += chunk

    def log_tail(self, n: int = 2500) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as fh:
            return fh.read()[-n:].decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.kill()
        self.log.close()


def plan_cases(bases: dict[str, str], n: int, seed: int) -> list[dict]:
    """n cases: about 45% finished sessions, 30% interrupted ones, 25% sweep files."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        r = rng.random()
        kind = "session" if r < 0.45 else "interrupted" if r < 0.75 else "sweep"
        cases.append(dict(index=i, base=bases[kind], kind=kind, seed=rng.randrange(2**31), sweep=kind == "sweep"))
    return cases


def run_fuzz(bases: dict[str, str], n: int, seed: int, workdir: str, workers: int = 2, timeout_s: float = 60.0,
             window_every: int = 16, all_every: int = 60, inject: dict[int, str] | None = None) -> FuzzReport:
    """Run ``n`` seeded mutations of ``bases`` on ``workers`` worker processes; see the module docstring.
    ``inject`` ({case index: "crash" | "hang"}) makes a worker fail on purpose (to test the harness)."""
    cases = plan_cases(bases, n, seed)
    for c in cases:
        c["inject"] = (inject or {}).get(c["index"])
    report = FuzzReport()
    lock = threading.Lock()
    t0 = time.perf_counter()
    cpu0 = _children_cpu()

    def fail(case, what, entry, detail):
        with lock:
            report.failures.append(dict(index=case["index"], base=os.path.basename(case["base"]),
                                        seed=case["seed"], what=what, entry=entry, detail=detail))

    def slot(k: int) -> None:
        worker = None
        while True:
            with lock:
                if not cases:
                    break
                case = cases.pop(0)
            if worker is None:
                worker = _Worker(k, workdir, window_every, all_every, start_timeout_s=120)
            worker.send(case)
            what, msg = "?", None
            while True:
                msg = worker.read(timeout_s)
                if msg is None or msg.get("end") == case["index"]:
                    break
                what = msg.get("what", what)
            if msg is None:   # a crash or a hang: report it with its mutation, start a new worker
                hung = not worker.eof
                if not hung:
                    try:
                        worker.proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                worker.kill()
                how = f"hung (no answer in {timeout_s:.0f} s)" if hung else f"crashed (exit status {worker.proc.returncode})"
                fail(case, what, "worker", f"{how}; log tail:\n{worker.log_tail()}")
                worker.close()
                worker = None
                with lock:
                    report.count += 1
                continue
            with lock:
                if "skipped" in msg:
                    report.skipped += 1
                    continue
                report.count += 1
                for entry, (outcome, detail, secs) in msg["results"].items():
                    report.outcomes[(entry, outcome)] += 1
                    report.seconds_by_entry[entry_kind(entry)] += secs
            for entry, (outcome, detail, _secs) in msg["results"].items():
                if outcome == "FAIL":
                    fail(case, msg["what"], entry, detail)
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=slot, args=(k,), daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - t0
    report.cpu_seconds = _children_cpu() - cpu0
    report.failures.sort(key=lambda f: f["index"])
    return report
