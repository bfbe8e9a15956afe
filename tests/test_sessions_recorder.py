"""explorer.recording.SessionRecorder: trainer records -> session file."""
from __future__ import annotations

import numpy as np
import pytest

from explorer.recording import SessionRecorder
from explorer.config import TrainConfig
from explorer.training import PARAM_GRAD_NAMES, ProbeRecord, RunInfo, StatusRecord, StepRecord
from sessions import SessionExistsError, open_session, validate

L, H = 5, 3


def _infos():
    def shapes(g):
        return {"weight_ih_l0": (g * H, 1), "weight_hh_l0": (g * H, H), "bias_ih_l0": (g * H,),
                "bias_hh_l0": (g * H,), "readout.weight": (1, H), "readout.bias": (1,)}
    return [RunInfo(cell=c, param_count=7 * g, param_shapes=shapes(g), length=L, hidden=H, n_gates=4 if g == 4 else 0,
                    metric_name="mse", higher_is_better=False, baseline_loss=0.17, baseline_metric=0.17)
            for c, g in (("rnn", 1), ("lstm", 4))], shapes


def test_records_become_a_session(tmp_path):
    cfg = TrainConfig(task="adding", seq_len=L, hidden=H, steps=6, probe_every=3)
    infos, shapes = _infos()
    path = tmp_path / "rec.h5"
    rec = SessionRecorder(path, cfg, infos)
    assert rec.path == str(path)
    rng = np.random.default_rng(0)
    for step in range(1, 7):
        for cell in ("rnn", "lstm"):
            rec.record(StepRecord(cell, step, 1.0 / step, 0.5 / step, 2.0, {p: float(step) for p in PARAM_GRAD_NAMES},
                                  wall_time=0.1 * step))
            if step % 3 == 0:
                lstm = cell == "lstm"
                rec.record(ProbeRecord(cell, step, rng.random(L).astype(np.float32), rng.random((L, H)),
                                       rng.random((4, L, H)) if lstm else None, rng.random((L, H)) if lstm else None,
                                       rng.random(4) if lstm else None))
    rec.record(StatusRecord("rnn", "diverged", 6, "loss became nan at step 6"))
    rec.record(StatusRecord("lstm", "completed", 6))
    params = {c: {k: np.full(s, 0.5, np.float32) for k, s in shapes(4 if c == "lstm" else 1).items()}
              for c in ("rnn", "lstm")}
    rec.finish(params)
    with open_session(path) as s:
        assert s.run_names == ["rnn", "lstm"]
        rnn, lstm = s.runs
        assert rnn.status == "diverged" and rnn.message == "loss became nan at step 6" and rnn.status_step == 6
        assert lstm.status == "completed"
        assert rnn.config == cfg.to_dict()
        np.testing.assert_array_equal(lstm.probe_steps, [3, 6])
        # a probe carries the wall time of its own step
        np.testing.assert_allclose(lstm.probe_series("time"), [0.3, 0.6])
        np.testing.assert_array_equal(lstm.scalar("grad_norm/readout.bias")[2], np.arange(1, 7))
        assert lstm.params["weight_hh_l0"].shape == (4 * H, H)
        assert lstm.baseline == {"loss": 0.17, "metric": 0.17}
    assert validate(path) == []
    with pytest.raises(SessionExistsError, match="--force"):
        SessionRecorder(path, cfg, infos)
    SessionRecorder(path, cfg, infos, overwrite=True).close()


@pytest.mark.slow
def test_recorder_with_a_real_trainer(tmp_path):
    from explorer.training import Trainer

    cfg = TrainConfig(task="adding", seq_len=10, hidden=8, batch=8, steps=30, probe_every=10, lr=1e-2)
    trainer = Trainer(cfg)
    path = tmp_path / "real.h5"
    rec = SessionRecorder(path, cfg, trainer.runs)
    n = 0
    for r in trainer.run():
        rec.record(r)
        n += isinstance(r, StepRecord)
    rec.finish({c: trainer.state_dict(c) for c in cfg.cells})
    with open_session(path) as s:
        for run in s.runs:
            assert run.status == "completed" and run.steps == 30
            assert {10, 20, 30} <= set(run.probe_steps.tolist())
            assert np.all(np.isfinite(run.scalar("loss")[2]))
            assert set(run.params) == set(trainer.state_dict(run.cell))
    assert n == 60
    assert validate(path) == []
