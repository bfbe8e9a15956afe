"""--until-solved, solved_at and the held-out test set: the Trainer, the session file (format 1.2),
info --json, the train summary and sweep rows; older files still read."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from explorer.config import TrainConfig
from explorer.training import SolvedRecord, StatusRecord, StepRecord, TestRecord, Trainer
from sessions.writer import FORMAT_VERSION

#: tiny and fast: both cells solve temporal-hs97 at T = 12 within a few hundred steps, the LSTM first
TINY = dict(task="temporal-hs97", seq_len=12, hidden=8, batch=8, steps=600, cells=("rnn", "lstm"),
            until_solved=True, test_size=64, seed=0)


@pytest.fixture(scope="module")
def records():
    return list(Trainer(TrainConfig(**TINY)).run())


def test_one_cell_stops_when_solved_while_the_other_goes_on(records):
    solved = {r.cell: r for r in records if isinstance(r, SolvedRecord)}
    status = {r.cell: r for r in records if isinstance(r, StatusRecord) and r.status != "running"}
    last = {c: max(r.step for r in records if isinstance(r, StepRecord) and r.cell == c) for c in ("rnn", "lstm")}
    first, second = sorted(solved, key=lambda c: solved[c].step)
    assert solved[first].step < solved[second].step      # the two cells solve at different steps
    for c in (first, second):
        assert last[c] == solved[c].step == status[c].step       # each stopped at the step it solved
        assert solved[c].sequences == solved[c].step * TINY["batch"]
        assert status[c].status == "completed" and status[c].message.startswith(f"solved at step {solved[c].step:,}")
        assert "the last 2,000 training sequences all correct" in solved[c].rule
    # the other cell trained on after the first one stopped
    assert any(isinstance(r, StepRecord) and r.cell == second and r.step > solved[first].step for r in records)


def test_each_run_is_tested_once_at_its_end_on_held_out_sequences(records):
    tests = [r for r in records if isinstance(r, TestRecord)]
    assert sorted(r.cell for r in tests) == ["lstm", "rnn"] and all(r.final and r.n == 64 for r in tests)
    for t in tests:
        status = next(r for r in records if isinstance(r, StatusRecord) and r.cell == t.cell and r.status == "completed")
        assert t.step == status.step and records.index(t) < records.index(status)
        assert 0 <= t.wrong <= 64 and np.isfinite(t.loss) and 0 <= t.metric <= 1


def test_cap_reached_says_not_solved_and_test_every():
    cfg = TrainConfig(task="adding-hs97", seq_len=12, hidden=4, batch=4, steps=30, cells=("lstm",),
                      until_solved=True, test_size=20, test_every=10)
    recs = list(Trainer(cfg).run())
    assert not any(isinstance(r, SolvedRecord) for r in recs)          # 120 sequences < the 2,000 window
    tests = [r for r in recs if isinstance(r, TestRecord)]
    assert [(t.step, t.final) for t in tests] == [(10, False), (20, False), (30, True)]
    end = recs[-1]
    assert end.status == "completed" and end.message.startswith("not solved within the cap of 30 steps (120 sequences)")


def test_test_set_is_its_own_stream_and_covers_every_length():
    a, b = Trainer(TrainConfig(**{**TINY, "seed": 0})), Trainer(TrainConfig(**{**TINY, "seed": 0, "batch": 4}))
    xa = [t.x for t in a.test_set()]
    assert [x.shape[0] for x in xa] == [12, 13]                          # T = 12: lengths 12..13, both present
    for x, y in zip(xa, (t.x for t in b.test_set())):
        np.testing.assert_array_equal(x, y)                               # independent of the training settings
    c = Trainer(TrainConfig(**{**TINY, "seed": 1}))
    assert not np.array_equal(xa[0][:, :4], c.test_set()[0].x[:, :4])
    off = Trainer(TrainConfig(**{**TINY, "test_size": 0, "steps": 5, "until_solved": False}))
    assert not any(isinstance(r, TestRecord) for r in off.run())


def test_without_until_solved_the_run_goes_to_the_end_but_records_when_it_solved():
    cfg = TrainConfig(**{**TINY, "until_solved": False, "cells": ("lstm",), "test_size": 0})
    recs = list(Trainer(cfg).run())
    solved = [r for r in recs if isinstance(r, SolvedRecord)]
    assert len(solved) == 1 and solved[0].step < 600
    assert max(r.step for r in recs if isinstance(r, StepRecord)) == 600 and recs[-1].message == ""


@pytest.mark.parametrize("bad, match", [({"test_size": -1}, "test-size"), ({"test_every": -2}, "test-every"),
                                        ({"until_solved": "yes"}, "until-solved"),
                                        ({"task": "adding-hs97", "seq_len": 3}, ">= 4")])
def test_config_errors(bad, match):
    from explorer.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        TrainConfig(**{**TINY, **bad}).validate()


# -- the session file, info --json, the summary, old files ----------------------------------------

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from explorer.cli import main

    path = tmp_path_factory.mktemp("solved") / "run.h5"
    argv = ["train", "--task", "temporal-hs97", "--seq-len", "12", "--hidden", "8", "--batch", "8", "--steps", "600",
            "--cell", "rnn,lstm", "--until-solved", "--test-size", "64", "--quiet", "--out", str(path)]
    assert main(argv) == 0
    return path


def test_solved_at_and_test_in_the_session_file_and_info_json(session, capsys):
    from explorer.cli import main
    from sessions import open_session, validate

    capsys.readouterr()
    assert main(["info", "--json", str(session)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format_version"] == FORMAT_VERSION
    with open_session(session) as s:
        for r in doc["runs"]:
            run = s.run(r["name"])
            at = r["solved_at"]
            assert at == {"step": run.steps, "sequences": run.steps * 8} == run.solved_at
            assert r["test"]["n"] == 64 and 0 <= r["test"]["wrong"] <= 64 and r["test"]["step"] == run.steps
            assert r["test"]["loss"] == pytest.approx(run.test["loss"])
    assert validate(session) == []
    assert main(["info", str(session)]) == 0
    text = capsys.readouterr().out
    assert "solved:   at step" in text and "wrong" in text and "held-out sequences" in text


def test_train_summary_shows_solved_step_and_test(tmp_path, capsys):
    from explorer.cli import main

    assert main(["train", "--task", "temporal-hs97", "--seq-len", "12", "--hidden", "8", "--batch", "8",
                 "--steps", "600", "--cell", "lstm", "--until-solved", "--test-size", "32", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "seq)" in out and "/32 wrong" in out


def _strip_to_1_1(path):
    """Make ``path`` look like a format 1.1 file: no solved_step/solved_sequences/test, version 1.1.0."""
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = "1.1.0"
        for name in f["runs"]:
            g = f["runs"][name]
            for key in ("solved_step", "solved_sequences", "test"):
                del g[key]
            del g.attrs["stop_rule"]


def test_older_session_files_still_read(session, tmp_path, capsys):
    import shutil

    from explorer.cli import main
    from sessions import open_session

    old = tmp_path / "old.h5"
    shutil.copy(session, old)
    _strip_to_1_1(old)
    with open_session(old) as s:
        assert s.format_version == "1.1.0"
        for run in s.runs:
            assert run.solved_at is None and run.test is None and run.tests == []
    capsys.readouterr()
    assert main(["info", "--json", str(old)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(r["solved_at"] is None and r["test"] is None for r in doc["runs"])


def test_sweep_row_carries_solved_and_test_and_reads_back_from_the_session(tmp_path):
    from explorer.sweep import SweepPlan, result_from_session, run_one

    plan = SweepPlan(base=TrainConfig(**{**TINY, "cells": ("lstm",)}), cells=("lstm",), seq_lens=(12,), seeds=1,
                     out=str(tmp_path))
    spec = plan.specs()[0]
    row = run_one(spec)
    assert row["solved"] and row["solved_step"] > 0 and row["solved_sequences"] == 8 * row["solved_step"]
    assert row["test_n"] == 64 and row["test_wrong"] >= 0 and row["wall_s"] > 0
    again = result_from_session(spec)
    for k in ("solved", "solved_step", "solved_sequences", "test_n", "test_wrong", "steps"):
        assert again[k] == row[k], k


def test_older_sweep_files_read_with_defaults(tmp_path):
    from sessions.sweep import COLUMNS, read_sweep, write_sweep

    path = tmp_path / "sweep.h5"
    write_sweep(path, {"train": {}}, [dict(cell="lstm", seq_len=10, seed=0, status="completed", solved=True,
                                           steps=5, session="x.h5")])
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = "1.1"
        for col in ("solved_step", "solved_sequences", "test_n", "test_loss", "test_metric", "test_wrong", "wall_s"):
            assert col in COLUMNS
            del f["runs"][col]
    r = read_sweep(path).runs[0]
    assert (r["solved_step"], r["solved_sequences"], r["test_n"], r["test_wrong"]) == (-1, -1, 0, -1)
    assert np.isnan(r["test_loss"]) and np.isnan(r["wall_s"])
