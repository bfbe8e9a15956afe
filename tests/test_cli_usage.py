"""The command line as a user types it: one set of defaults, re-running a session, closed pipes,
sweep axes from any setting, and sweep exports by plot name."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from explorer.config import TrainConfig
from tests.test_export_cli import cli

TINY = ["--task", "adding", "--seq-len", "6", "--hidden", "4", "--batch", "4", "--steps", "12"]


def test_train_without_options_trains_what_the_windows_run_trains():
    from explorer.commands.train import add_arguments, config_from_args
    from explorer.gui.settings import GUI_DEFAULTS
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    headless = config_from_args(p.parse_args([]))
    assert headless == GUI_DEFAULTS == TrainConfig()
    assert headless.lr == 1e-2 and headless.steps == 3000 and headless.probe_interval == 50


def test_auto_probe_interval_keeps_about_sixty_probes_per_run():
    assert TrainConfig(steps=3000).probe_interval == 50
    assert TrainConfig(steps=100_000).probe_interval == 1667
    assert TrainConfig(steps=10).probe_interval == 1
    assert TrainConfig(steps=3000, probe_every=7).probe_interval == 7


def test_train_from_a_session_repeats_its_configuration_and_flags_change_single_fields(tmp_path):
    first = tmp_path / "first.h5"
    r = cli("train", *TINY, "--cell", "lstm", "--lr", "0.003", "--seed", "5", "--out", str(first))
    assert r.returncode == 0, r.stderr
    again = tmp_path / "again.h5"
    r = cli("train", "--from", str(first), "--out", str(again))
    assert r.returncode == 0, r.stderr
    changed = tmp_path / "changed.h5"
    r = cli("train", "--from", str(first), "--steps", "8", "--out", str(changed))
    assert r.returncode == 0, r.stderr
    from sessions import open_session

    def config_and_losses(path):
        with open_session(path) as s:
            run = s.run("lstm")
            return dict(run.config), list(run.scalar("loss")[2])

    c1, l1 = config_and_losses(first)
    c2, l2 = config_and_losses(again)
    c3, l3 = config_and_losses(changed)
    assert c2 == c1 and l2 == l1                    # the same run, loss for loss
    assert c3 == {**c1, "steps": 8} and l3 == l1[:8]
    r = cli("train", "--from", str(tmp_path / "missing.h5"))
    assert r.returncode == 2 and "missing.h5" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["info", "{file}"], ["info", "{file}", "--json"], ["--help"],
                                  ["export", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(tmp_path, args):
    from tests.sessions_support import write_session

    path = tmp_path / "s.h5"
    write_session(path, steps=400, probe_every=100)
    command = " ".join([sys.executable, "-m", "explorer", *(a.format(file=path) for a in args)])
    r = subprocess.run(["bash", "-o", "pipefail", "-c", f"{command} | head -1"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and len(r.stdout.splitlines()) == 1


def test_vary_parses_fields_to_their_types_and_refuses_what_is_not_a_setting():
    from explorer.errors import ConfigError
    from explorer.sweep import parse_vary

    assert parse_vary(["lr=1e-3,1e-2", "hidden=8,16", "optimizer=adam,sgd"]) == {
        "lr": (1e-3, 1e-2), "hidden": (8, 16), "optimizer": ("adam", "sgd")}
    assert parse_vary(["probe-every=5"]) == {"probe_every": (5,)}
    for bad, message in ((["colour=red"], "not a training setting"), (["hidden=8,big"], "not a int"),
                         (["lr"], "FIELD=v1,v2"), (["lr=1", "lr=2"], "given twice"), (["lr="], "no values")):
        with pytest.raises(ConfigError, match=message):
            parse_vary(bad)


@pytest.mark.slow
def test_sweep_vary_is_one_more_axis_and_its_exports_work_by_name(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "sweep"
    r = cli("sweep", "--cells", "lstm", "--seq-lens", "5", "--seeds", "1", "--steps", "10", "--hidden", "4",
            "--batch", "4", "--vary", "lr=0.001,0.01", "--workers", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    from sessions.sweep import read_sweep

    runs = read_sweep(out / "sweep.h5").runs
    assert sorted(r["variant"] for r in runs) == ["lr=0.001", "lr=0.01"]
    assert sorted(r["session"] for r in runs) == ["adding-lstm-T5-s0-lr0.001.h5", "adding-lstm-T5-s0-lr0.01.h5"]
    from sessions import open_session

    with open_session(out / "adding-lstm-T5-s0-lr0.001.h5") as s:
        assert s.run("lstm").config["lr"] == 0.001
    for plot, suffix in (("frontier", "png"), ("claims", "csv"), ("frontier", "csv")):
        r = cli("export", str(out / "sweep.h5"), "--plot", plot, "--out", str(tmp_path / "figs" / f"{plot}.{suffix}"))
        assert r.returncode == 0, r.stderr
    header = (tmp_path / "figs" / "claims.csv").read_text().splitlines()[0]
    assert header == "claim,number,lstm lr=0.001,lstm lr=0.01,detail"
    r = cli("export", str(out / "sweep.h5"), "--plot", "loss", "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "is a sweep file" in r.stderr and "frontier" in r.stderr


def test_export_help_lists_the_sweep_plots():
    r = cli("export", "--help")
    assert r.returncode == 0 and "frontier" in r.stdout and "claims" in r.stdout and "--tensorboard" in r.stdout


def test_info_json_survives_a_pipe_to_a_json_reader(tmp_path):
    from tests.sessions_support import write_session

    path = tmp_path / "s.h5"
    write_session(path, steps=10, probe_every=5)
    r = subprocess.run(["bash", "-o", "pipefail", "-c",
                        f"{sys.executable} -m explorer info {path} --json | {sys.executable} -m json.tool"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["runs"]
