"""Every `lstm-explorer` command of README.md, and of the commands' --help examples, run as written.

Which lines are commands: in a ```bash / ```sh block every line (a trailing `\\` joins the next);
in any other fenced block only lines that start with `$ `. A line runs when its program (after
any VAR=value assignments) is `lstm-explorer`, or Python running one of the repository's `bench/`
scripts (also under `xvfb-run`, which the test replaces by Qt's offscreen platform); other programs
(make, dask, pipx) are exempt. `# comments` are dropped. Lines run in order, through bash, in one scratch folder
per document, so a later line finds the files an earlier one wrote.

The shrink rule (the only changes made to a line):
- sizes become tiny: --steps, --cap at most 30 (the k-th `--resume` line's raised --steps at most 30 (k + 1), so each
  raises the cap again); --seq-len at most 12; --seq-lens at most two
  values, each at most 12; --seeds 1; --hidden, --batch at most 8; --test-size at most 64;
  --probes at most 3, --repeats 1;
- `bench` times one tiny config (--grid 8x4x8 --seconds 0.05) of ours alone (--no-torch --no-jax:
  tests/test_bench.py runs the peers; here they cost 10 s a line in start-up);
- window commands (`replay`, or no subcommand) run offscreen and close after drawing
  (--screenshot into the scratch folder);
- absolute paths move into the scratch folder; --scheduler points at a test Dask cluster.
Each command must exit 0, print no traceback, and the files it names (--out, -o, --tensorboard,
--screenshot) must exist afterwards.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: option -> the largest value a test run uses
CAPS = {"--steps": 30, "--cap": 30, "--seq-len": 12, "--hidden": 8, "--batch": 8, "--seeds": 1, "--test-size": 64,
        "--probes": 3, "--repeats": 1}
OUTPUT_OPTIONS = ("--out", "-o", "--tensorboard", "--screenshot")
WINDOW_COMMANDS = ("replay",)


# ------------------------------------------------------------------------------------- reading
def fenced_blocks(text: str):
    """``(language, [lines])`` of every fenced code block of a Markdown text."""
    blocks, lang, lines = [], None, None
    for line in text.splitlines():
        fence = re.match(r"^\s*```(\w*)", line)
        if fence and lines is None:
            lang, lines = fence.group(1).lower(), []
        elif fence:
            blocks.append((lang, lines))
            lines = None
        elif lines is not None:
            lines.append(line)
    return blocks


def _join_continuations(lines):
    out, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment``."""
    return re.sub(r"(^|\s)#.*$", "", line)


def commands_in(text: str) -> list[str]:
    """The `lstm-explorer` command lines of a Markdown document, in order."""
    found = []
    for lang, lines in fenced_blocks(text):
        shell = lang in ("bash", "sh", "shell", "console")
        for line in _join_continuations(lines):
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            elif not shell:
                continue
            line = _strip_comment(line).strip()
            if _program(line) == "lstm-explorer" or _bench_script(line):
                found.append(line)
    return found


def help_examples() -> list[str]:
    """The command lines of the 'example(s):' sections of every subcommand's --help."""
    from explorer.cli import COMMANDS
    import importlib

    found = []
    for name in COMMANDS:
        doc = importlib.import_module(f"explorer.commands.{name}").__doc__ or ""
        m = re.search(r"^examples?:\n((?:[ \t]+.*\n?)+)", doc, flags=re.M)
        if m:
            block = [line for line in m.group(1).splitlines()]
            found += [_strip_comment(x.strip()).strip() for x in _join_continuations(block)
                      if _program(x.strip()) == "lstm-explorer"]
    return found


def _bench_script(line: str) -> bool:
    """A line running one of the repository's bench/ scripts with Python (under xvfb-run or not)."""
    try:
        words = _without_xvfb(shlex.split(line))
    except ValueError:
        return False
    return len(words) > 1 and os.path.basename(words[0]) == "python" and words[1].startswith("bench/")


def _without_xvfb(words: list[str]) -> list[str]:
    """``xvfb-run -a -s "..." CMD ...`` -> ``CMD ...`` (the test runs windows offscreen instead)."""
    if not words or words[0] != "xvfb-run":
        return words
    i = 1
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in ("-s", "--server-args", "-n", "--server-num", "-e", "--error-file") else 1
    return words[i:]


def _program(line: str) -> str | None:
    try:
        words = shlex.split(line.split("|")[0])
    except ValueError:
        return None
    words = [w for w in words if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)] if words else []
    return words[0] if words else None


# ------------------------------------------------------------------------------------- shrinking
def shrink(line: str, scratch: Path, scheduler: str | None, shot: int, raises: int = 1) -> tuple[str, dict, list[Path]]:
    """The line under the shrink rule (``raises``: which `--resume ... --steps` line of its document this is, from 1);
    returns it, the environment to add, and the files it must write."""
    pipe = ""
    if "|" in line:
        line, pipe = line.split("|", 1)
        pipe = " |" + pipe
    words = _without_xvfb(shlex.split(line))
    env = {}
    bench_script = _bench_script(shlex.join(words))
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    out, outputs, i = [], [], 0
    while i < len(words):
        w = words[i]
        value = words[i + 1] if i + 1 < len(words) else None
        if w in CAPS and value is not None:
            raised = w == "--steps" and "--resume" in words      # a raised cap stays above the shrunk ones before
            out += [w, str(min(int(value), CAPS[w] * (1 + raises if raised else 1)))]
            i += 2
            continue
        if w == "--seq-lens" and value is not None:
            lags = list(dict.fromkeys(min(int(v), CAPS["--seq-len"]) for v in value.split(",")))[:2]
            out += [w, ",".join(map(str, lags))]
            i += 2
            continue
        if w == "--scheduler" and value is not None:
            assert scheduler, "a README command needs a Dask scheduler"
            out += [w, scheduler]
            i += 2
            continue
        if w.startswith("/"):
            w = str(scratch / w.lstrip("/"))
        if i > 0 and words[i - 1] in OUTPUT_OPTIONS:
            outputs.append(scratch / w if not os.path.isabs(w) else Path(w))
        out.append(w)
        i += 1
    if bench_script:            # the repository's script, with this test's Python, windows offscreen
        env["QT_QPA_PLATFORM"] = "offscreen"
        return shlex.join([sys.executable, str(ROOT / out[1])] + out[2:]) + pipe, env, outputs
    sub = out[1] if len(out) > 1 and not out[1].startswith("-") else None
    if sub == "bench":
        out = [w for w in out]
        if "--grid" in out:
            out[out.index("--grid") + 1] = "8x4x8"
        else:
            out += ["--grid", "8x4x8"]
        if "--memory" not in out:
            out += ["--seconds", "0.05"]
            out += [flag for flag in ("--no-torch", "--no-jax") if flag not in out]
    if sub in WINDOW_COMMANDS or sub is None:
        if sub is None:
            out.append("replay")
        if "--screenshot" not in out:
            png = scratch / f"window-{shot}.png"
            out += ["--screenshot", str(png)]
            outputs.append(png)
        env["QT_QPA_PLATFORM"] = "offscreen"
    return shlex.join(out) + pipe, env, outputs


def run_all(lines: list[str], scratch: Path, scheduler: str | None = None) -> list[str]:
    """Run every line; returns a list of failures (empty when all passed)."""
    failures = []
    env0 = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                LSTM_EXPLORER_DATA_DIR=str(scratch / "sessions"))
    raises = 0
    for k, line in enumerate(lines):
        raises += "--resume" in line and "--steps" in line
        command, env, outputs = shrink(line, scratch, scheduler, k, raises)
        r = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=scratch, env={**env0, **env},
                           capture_output=True, text=True, timeout=300)
        problems = []
        if r.returncode != 0:
            problems.append(f"exit status {r.returncode}")
        if "Traceback" in r.stderr:
            problems.append("a traceback")
        missing = [str(p) for p in outputs if not p.exists()]
        if missing:
            problems.append(f"no {', '.join(missing)}")
        if problems:
            failures.append(f"{line}\n  ran: {command}\n  {'; '.join(problems)}\n  stderr: {r.stderr[-2000:]}")
    return failures


# ------------------------------------------------------------------------------------- tests
def test_the_readme_has_commands_and_the_parser_finds_them():
    lines = commands_in((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(lines) >= 10
    assert any(" train " in f" {x} " for x in lines) and any(x.split()[1] == "sweep" for x in lines)
    assert all(not x.startswith("make") for x in lines)


def test_shrink_rule_makes_sizes_tiny_and_windows_offscreen(tmp_path):
    line, env, outputs = shrink("lstm-explorer sweep --seq-lens 10,20,50,100,200 --seeds 3 --steps 2000 "
                                "--out /tmp/x", tmp_path, None, 0)
    assert "--seq-lens 10,12" in line and "--seeds 1" in line and "--steps 30" in line
    assert str(tmp_path / "tmp/x") in line and outputs == [tmp_path / "tmp/x"]
    line, env, outputs = shrink("lstm-explorer replay run.h5", tmp_path, None, 3)
    assert env["QT_QPA_PLATFORM"] == "offscreen" and "--screenshot" in line and outputs[0].name == "window-3.png"
    line, env, outputs = shrink("lstm-explorer train --resume run.h5 --steps 160000", tmp_path, None, 4)
    assert line.endswith("--steps 60")
    line, env, outputs = shrink("lstm-explorer train --resume run.h5 --steps 290000", tmp_path, None, 5, raises=2)
    assert line.endswith("--steps 90")      # the second raise of a file stays above the first


@pytest.fixture(scope="module")
def dask_scheduler():
    """A local Dask cluster for the README's `--scheduler` line (only started if one needs it)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    if "--scheduler" not in text:
        yield None
        return
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, scheduler_port=0,
                                  env={"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}) as cluster:
        yield cluster.scheduler_address


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, dask_scheduler):
    lines = commands_in((ROOT / "README.md").read_text(encoding="utf-8"))
    failures = run_all(lines, tmp_path, dask_scheduler)
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_every_help_example_runs_as_written(tmp_path):
    lines = help_examples()
    assert any(x.split()[1] == "train" for x in lines)
    failures = run_all(lines, tmp_path)
    assert not failures, "\n\n".join(failures)
