"""The wheel a user installs: built from this checkout, installed into a fresh virtual environment
outside the repository, it trains, records and reads a session there."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "deprecated" not in r.stderr.lower(), r.stderr     # e.g. the license table setuptools will drop
    (path,) = out.glob("lstm_explorer-*.whl")
    return path


def test_the_wheel_holds_every_package_and_the_schema(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for module in ("explorer/cli.py", "explorer/gui/window.py", "explorer/commands/train.py", "kernels/cpu.py",
                   "sessions/reader.py", "sessions/SCHEMA.md"):
        assert module in names, module
    assert not [n for n in names if n.startswith("tests/")]
    meta = next(n for n in names if n.endswith("METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(meta).decode()


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_trains_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # the dependencies come from this environment's site-packages (no download), the app from the wheel only
    fresh_site = Path(subprocess.run([venv / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "-q",
                        "--no-deps", str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    app = str(venv / "bin/lstm-explorer")
    r = subprocess.run([app, "train", "--cell", "rnn", "--seq-len", "5", "--hidden", "4", "--batch", "4", "--steps",
                        "5", "--out", "run.h5"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([app, "info", "run.h5", "--json"], cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and '"completed"' in r.stdout, r.stderr
    where = subprocess.run([venv / "bin/python", "-c", "import explorer; print(explorer.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where       # the wheel's copy ran, not the checkout
