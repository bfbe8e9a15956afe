"""The Qt-free trainer and the `train` command, as a user sees them."""
import subprocess
import sys
import threading

import numpy as np
import pytest

from explorer.errors import ConfigError
from explorer.config import TrainConfig
from explorer.training import ProbeRecord, StatusRecord, StepRecord, Trainer

TINY = dict(task="adding", seq_len=8, hidden=6, batch=4, steps=12, probe_every=5)


def _losses(records, cell):
    return [r.loss for r in records if isinstance(r, StepRecord) and r.cell == cell]


def test_same_seed_gives_identical_losses_and_a_different_seed_does_not():
    a = list(Trainer(TrainConfig(**TINY, seed=3)).run())
    b = list(Trainer(TrainConfig(**TINY, seed=3)).run())
    c = list(Trainer(TrainConfig(**TINY, seed=4)).run())
    assert _losses(a, "lstm") == _losses(b, "lstm") and _losses(a, "rnn") == _losses(b, "rnn")
    assert _losses(a, "lstm") != _losses(c, "lstm")


def test_cells_train_on_the_same_batches_so_adding_a_cell_changes_nothing():
    both = list(Trainer(TrainConfig(**TINY, cells=("rnn", "lstm"))).run())
    alone = list(Trainer(TrainConfig(**TINY, cells=("lstm",))).run())
    assert _losses(both, "lstm") == _losses(alone, "lstm")


def test_records_carry_steps_probes_and_final_status():
    records = list(Trainer(TrainConfig(**{**TINY, "task": "copy", "seq_len": 3})).run())
    steps = [r for r in records if isinstance(r, StepRecord) and r.cell == "lstm"]
    assert [r.step for r in steps] == list(range(1, 13))
    assert set(steps[0].param_grad_norms) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                               "readout.weight", "readout.bias"}
    assert all(0 <= r.metric <= 1 for r in steps)
    probes = [r for r in records if isinstance(r, ProbeRecord)]
    assert [p.step for p in probes if p.cell == "lstm"] == [1, 5, 10, 12]
    lstm_probe = next(p for p in probes if p.cell == "lstm")
    L = 3 + 20
    assert lstm_probe.grad_norm_t.shape == (L,) and lstm_probe.h.shape == (L, 6)
    assert lstm_probe.gates.shape == (4, L, 6) and lstm_probe.c.shape == (L, 6)
    assert lstm_probe.saturation.shape == (4,) and np.all((0 <= lstm_probe.saturation) & (lstm_probe.saturation <= 1))
    rnn_probe = next(p for p in probes if p.cell == "rnn")
    assert rnn_probe.gates is None and rnn_probe.c is None
    final = [r for r in records if isinstance(r, StatusRecord) and r.status == "completed"]
    assert {(r.cell, r.step) for r in final} == {("rnn", 12), ("lstm", 12)}


def test_a_diverging_cell_stops_with_a_message_and_the_other_goes_on():
    trainer = Trainer(TrainConfig(**{**TINY, "steps": 40}))
    trainer.models["rnn"].params["readout.weight"][:] = 1e30  # the RNN's loss overflows at once
    records = list(trainer.run())
    diverged = [r for r in records if isinstance(r, StatusRecord) and r.status == "diverged"]
    assert [r.cell for r in diverged] == ["rnn"]
    assert "smaller --lr" in diverged[0].message
    assert diverged[0].step == 0
    assert any(isinstance(r, StatusRecord) and r.cell == "lstm" and r.status == "completed" and r.step == 40
               for r in records)


def test_pause_resume_and_stop_from_another_thread():
    trainer = Trainer(TrainConfig(**{**TINY, "steps": 100_000}, cells=("rnn",)))
    seen = []
    gen = trainer.run()

    def consume():
        for r in gen:
            seen.append(r)

    worker = threading.Thread(target=consume)
    trainer.pause()
    worker.start()
    worker.join(0.3)
    assert worker.is_alive() and not any(isinstance(r, StepRecord) for r in seen)  # held before step 1
    trainer.resume()
    while sum(isinstance(r, StepRecord) for r in seen) < 20:
        worker.join(0.01)
    trainer.stop()
    worker.join(5)
    assert not worker.is_alive()
    assert isinstance(seen[-1], StatusRecord) and seen[-1].status == "stopped"


@pytest.mark.slow
def test_lstm_learns_the_adding_problem_at_a_short_lag():
    cfg = TrainConfig(task="adding", seq_len=10, cells=("lstm",), hidden=16, batch=32, steps=800, lr=1e-2, seed=0)
    losses = _losses(list(Trainer(cfg).run()), "lstm")
    assert np.mean(losses[:20]) > 0.05
    assert np.mean(losses[-50:]) < 0.01  # solved


@pytest.mark.parametrize("field, value, message", [
    ("task", "sorting", "unknown task 'sorting'"),
    ("seq_len", 0, "seq-len must be an integer from 1"),
    ("lr", -1.0, r"lr must be a number in \(0, 10\]"),
    ("backend", "tpu", "unknown backend 'tpu'"),
    ("cells", "tlstm", "unknown cell 'tlstm'"),
    ("init", "chrono:x", "init: "),
    ("rnn_activation", "sigmoid", "rnn-activation must be tanh or relu"),
    ("hidden", 0, "hidden must be an integer"),
    ("optimizer", "lbfgs", "unknown optimizer 'lbfgs'"),
    ("clip", float("nan"), "clip must be a number >= 0"),
    ("lr_schedule", "1e-4", "lr-schedule: '1e-4' is not STEP:LR"),
    ("lr_schedule", "1:1e-4", "starts at step 1; the first step trains at --lr"),
    ("lr_schedule", "500:1e-3,400:1e-4", "the steps must rise"),
    ("lr_schedule", "500:0", r"outside \(0, 10\]"),
])
def test_invalid_configs_name_the_field_and_the_allowed_values(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value}).validate()


def test_a_learning_rate_schedule_changes_the_rate_from_its_step_on():
    cfg = TrainConfig(**{**TINY, "steps": 10}, lr=0.05, lr_schedule="5:1e-3, 8:0.2").validate()
    assert [cfg.lr_at(step) for step in range(1, 11)] == [0.05] * 4 + [1e-3] * 3 + [0.2] * 3
    scheduled = list(Trainer(cfg).run())
    constant = list(Trainer(TrainConfig(**{**TINY, "steps": 10}, lr=0.05)).run())
    # the loss of step k comes before its update: steps 1-5 are the same, step 6 follows the first smaller step
    assert _losses(scheduled, "lstm")[:5] == _losses(constant, "lstm")[:5]
    assert all(a != b for a, b in zip(_losses(scheduled, "lstm")[5:], _losses(constant, "lstm")[5:]))
    same = list(Trainer(TrainConfig(**{**TINY, "steps": 10}, lr=0.05, lr_schedule="5:0.05")).run())
    assert _losses(same, "lstm") == _losses(constant, "lstm")


def test_config_round_trips_through_a_dict():
    cfg = TrainConfig(**TINY, cells="lstm")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown config field"):
        TrainConfig.from_dict({"colour": "red"})


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=300)


def test_train_command_prints_progress_and_a_summary_per_cell():
    r = _cli("train", "--task", "adding", "--seq-len", "8", "--hidden", "6", "--batch", "4", "--steps", "30")
    assert r.returncode == 0, r.stderr
    assert "preparing kernels" in r.stderr and "30/30" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("adding problem, T=8")
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("rnn", "lstm")}
    assert set(rows) == {"rnn", "lstm"} and rows["lstm"][1] == "completed" and rows["lstm"][2] == "30"


@pytest.mark.parametrize("args, message", [
    (["--task", "sorting"], "unknown task 'sorting'"),
    (["--seq-len", "0"], "seq-len must be"),
    (["--lr", "-1"], "lr must be"),
    (["--backend", "tpu"], "unknown backend 'tpu'"),
    (["--lr-schedule", "2000=1e-3"], "is not STEP:LR"),
])
def test_train_command_bad_input_is_one_line_and_exit_code_2(args, message):
    r = _cli("train", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
