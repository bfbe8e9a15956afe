"""lstm-explorer bench: the JSON rows the issue specifies, the PyTorch and JAX columns, the machine block,
the JAX step's agreement with ours, the memory figure."""
from __future__ import annotations

import json

import numpy as np
import pytest

from explorer.benchmark import activation_bytes, training_memory
from explorer.cli import main

#: the keys every row had before the JAX column and the machine block; consumers may rely on them
ROW_KEYS = {"cell", "seq_len", "batch", "hidden", "ms_per_step", "torch_ms_per_step", "speedup", "peak_fraction"}
#: added since (issue 13): the JAX column, the ISA Numba compiled for, the machine (same dict in every row)
NEW_KEYS = {"jax_ms_per_step", "jax_speedup", "isa", "machine"}
MACHINE_KEYS = {"cpu", "host_isa", "isa", "emulated", "numba_cpu", "numba_features", "openblas", "torch",
                "torch_capability", "jax", "xla_threads", "threads", "matmul_peak_gflops", "load_average"}


def _bench_json(capsys, *args) -> list[dict]:
    assert main(["bench", "--json", "--seconds", "0.01", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_rows_without_peers_have_every_key_and_no_speedup(capsys):
    """--json still prints a list of rows with today's keys; the new ones are added beside them."""
    rows = _bench_json(capsys, "--no-torch", "--no-jax", "--cell", "rnn,lstm", "--grid", "3x2x4,5x1x3")
    assert [(r["cell"], r["seq_len"], r["batch"], r["hidden"]) for r in rows] == [
        ("rnn", 3, 2, 4), ("rnn", 5, 1, 3), ("lstm", 3, 2, 4), ("lstm", 5, 1, 3)]
    for r in rows:
        assert set(r) == ROW_KEYS | NEW_KEYS
        assert r["ms_per_step"] > 0 and 0 < r["peak_fraction"] < 1
        assert r["torch_ms_per_step"] is None and r["speedup"] is None
        assert r["jax_ms_per_step"] is None and r["jax_speedup"] is None
        assert r["machine"] == rows[0]["machine"] and r["isa"] == r["machine"]["isa"]


def test_the_machine_block_names_cpu_isa_and_blas(capsys):
    from kernels.machine import numba_target

    [row] = _bench_json(capsys, "--no-torch", "--no-jax", "--cell", "rnn", "--grid", "3x2x4")
    machine = row["machine"]
    assert MACHINE_KEYS <= set(machine)
    target = numba_target()
    assert machine["numba_cpu"] == target["cpu"] and row["isa"] == target["isa"]
    assert row["isa"] in ("avx512", "avx2", "avx", "sse4.2", "baseline")
    assert machine["emulated"] == (machine["host_isa"] is not None and machine["host_isa"] != row["isa"])
    # SciPy's OpenBLAS is the one Numba calls: it is always named, with its core type
    assert any(b["library"] == "scipy" and b["api"] == "openblas" and b["architecture"] for b in machine["openblas"])
    assert machine["torch"] is None and machine["jax"] is None  # not used in this run
    assert len(machine["load_average"]) == 2


def test_the_text_table_has_every_cell_and_both_peers(capsys):
    assert main(["bench", "--no-torch", "--no-jax", "--grid", "3x2x4", "--seconds", "0.01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("machine ") and out[1].startswith("ISA ")
    header = next(line for line in out if line.startswith("cell"))
    for column in ("ours ms", "torch ms", "torch x", "jax ms", "jax x", "peak"):
        assert column in header
    assert [line.split()[0] for line in out[out.index(header) + 1:]] == ["rnn", "lstm", "gru"]


def test_speedup_is_torch_time_over_ours_when_torch_is_installed(capsys):
    pytest.importorskip("torch")
    [row] = _bench_json(capsys, "--cell", "lstm", "--grid", "4x2x3")
    assert row["torch_ms_per_step"] > 0
    assert row["speedup"] == pytest.approx(row["torch_ms_per_step"] / row["ms_per_step"])


def test_jax_column_when_jax_is_installed(capsys):
    pytest.importorskip("jax")
    rows = _bench_json(capsys, "--no-torch", "--grid", "4x2x3")
    assert [r["cell"] for r in rows] == ["rnn", "lstm", "gru"]
    for r in rows:
        assert r["jax_ms_per_step"] > 0
        assert r["jax_speedup"] == pytest.approx(r["jax_ms_per_step"] / r["ms_per_step"])
    machine = rows[0]["machine"]
    assert machine["jax"] and "intra_op_parallelism_threads=" in machine["xla_flags"]
    assert machine["xla_threads"] == machine["threads"]  # XLA's intra-op pool held to the same threads


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_jax_step_is_our_step(cell):
    """Same loss, gradient norm, clipped gradient and Adam update as our kernels, float32 tolerance, with the
    clip active (targets scaled so the norm is well above 1): the JAX column times the same math."""
    pytest.importorskip("jax")
    import kernels
    from explorer.benchmark import CLIP, LR, _batch, _init, jax_initial_state, jax_module, jax_train_step

    params, batch = _init(cell, 5), _batch(7, 3)
    y = 10 * batch.y
    ours = kernels.backend("cpu").make_model(cell, params, loss_kind="mse_last", optimizer="adam", lr=LR, clip=CLIP)
    step, loss_and_grads = jax_train_step(jax_module(cell))
    loss, grads = loss_and_grads(jax_initial_state(params)[0], batch.x, y)
    stats = [ours.step(batch.x, y) for _ in range(3)]
    state = jax_initial_state(params)
    norms = []
    for _ in range(3):
        state, _, norm = step(state, batch.x, y)
        norms.append(float(norm))
    assert float(loss) == pytest.approx(stats[0].loss, rel=1e-5)
    assert norms == pytest.approx([s.grad_norm for s in stats], rel=1e-4)
    assert stats[0].grad_norm > 2 * CLIP
    # ours.grads is the last step's clipped gradient; the first step's is compared through the parameters
    for name, value in ours.state().items():
        np.testing.assert_allclose(np.asarray(state[0][name]), value, rtol=1e-5, atol=1e-6, err_msg=name)
    first = {k: np.asarray(v) * CLIP / (stats[0].grad_norm + 1e-6) for k, v in grads.items()}
    fresh = kernels.backend("cpu").make_model(cell, params, loss_kind="mse_last", optimizer="adam", lr=LR, clip=CLIP)
    fresh.step(batch.x, y)
    for name, value in fresh.grads.items():
        np.testing.assert_allclose(first[name], value, rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("args, message", [
    (["--grid", "100x32"], "is not TxBxH"),
    (["--grid", "0x2x3"], "must be >= 1"),
    (["--cell", "lstm,tanh"], "--cell must be a comma list of rnn, lstm, gru"),
    (["--seconds", "0"], "--seconds must be > 0"),
])
def test_bad_arguments_are_one_line_errors(capsys, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_memory_measurement_that_cannot_fit_is_a_one_line_error(capsys):
    """A size that does not fit in memory is refused before the measuring process starts, with the estimate."""
    assert main(["bench", "--memory", "--grid", "100000x4000x4000"]) == 2
    err = capsys.readouterr().err
    assert "GiB to train (T=100000, batch 4000, H=4000, cells lstm" in err and "GiB free" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_keeps_little_beyond_the_activations_bptt_needs():
    """The target is at most 2x the activations (the README's figure is T=1000, B=32, H=128). Here
    (23 MB of activations) training measures ~1.3x, whether Numba's cache was cold or warm; one more
    (T, B, 4H) buffer would add 0.67. At T = 400 the malloc arena left by compiling moved the ratio
    by 0.4 between a cold and a warm cache, too close to any bound."""
    result = training_memory("lstm", 1000, 16, 64, steps=2)
    assert result["activations_mb"] == activation_bytes("lstm", 1000, 16, 64) / 2 ** 20
    assert 0.9 < result["ratio"] < 1.7, result
