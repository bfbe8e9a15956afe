"""lstm-explorer bench: the JSON rows the issue specifies, the PyTorch column, the memory figure."""
from __future__ import annotations

import json

import pytest

from explorer.benchmark import activation_bytes, training_memory
from explorer.cli import main

ROW_KEYS = {"cell", "seq_len", "batch", "hidden", "ms_per_step", "torch_ms_per_step", "speedup", "peak_fraction"}


def _bench_json(capsys, *args) -> list[dict]:
    assert main(["bench", "--json", "--seconds", "0.01", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_rows_without_torch_have_every_key_and_no_speedup(capsys):
    rows = _bench_json(capsys, "--no-torch", "--grid", "3x2x4,5x1x3")
    assert [(r["cell"], r["seq_len"], r["batch"], r["hidden"]) for r in rows] == [
        ("rnn", 3, 2, 4), ("rnn", 5, 1, 3), ("lstm", 3, 2, 4), ("lstm", 5, 1, 3)]
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["ms_per_step"] > 0 and 0 < r["peak_fraction"] < 1
        assert r["torch_ms_per_step"] is None and r["speedup"] is None


def test_speedup_is_torch_time_over_ours_when_torch_is_installed(capsys):
    pytest.importorskip("torch")
    [row] = _bench_json(capsys, "--cell", "lstm", "--grid", "4x2x3")
    assert row["torch_ms_per_step"] > 0
    assert row["speedup"] == pytest.approx(row["torch_ms_per_step"] / row["ms_per_step"])


@pytest.mark.parametrize("args, message", [
    (["--grid", "100x32"], "is not TxBxH"),
    (["--grid", "0x2x3"], "must be >= 1"),
    (["--cell", "gru"], "--cell must be rnn, lstm"),
    (["--seconds", "0"], "--seconds must be > 0"),
])
def test_bad_arguments_are_one_line_errors(capsys, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_memory_measurement_that_cannot_run_is_a_one_line_error(capsys):
    """A size that does not fit in memory fails in the measuring process; the user gets its reason."""
    assert main(["bench", "--memory", "--grid", "100000x4000x4000"]) == 2
    err = capsys.readouterr().err
    assert "memory measurement of lstm T=100000 B=4000 H=4000 failed" in err and "Unable to allocate" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_keeps_little_beyond_the_activations_bptt_needs():
    """The target is at most 2x the activations (the README's figure is T=1000, B=32, H=128). Here,
    where fixed costs weigh more, training measures ~1.3x; one more (T, B, 4H) buffer would make ~2x."""
    result = training_memory("lstm", 400, 16, 64, steps=2)
    assert result["activations_mb"] == activation_bytes("lstm", 400, 16, 64) / 2 ** 20
    assert 0.9 < result["ratio"] < 1.6, result
