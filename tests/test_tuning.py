"""The products' strategy is measured once per machine and remembered; every strategy gives the same
products (kernels/tuning.py, kernels/blas.py, kernels/packed.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from numba import njit

from kernels import tuning
from kernels.blas import columns, gemm, product, set_strategy, strategy
from kernels.cpu_common import aligned_empty
from kernels.packed import pack, packable


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """tune_products as in a new process, its cache in tmp_path; the switch restored afterwards."""
    was = strategy()
    monkeypatch.setenv("LSTM_EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(tuning.ENV_FORCE, raising=False)
    tuning.tune_products.cache_clear()
    yield tmp_path / tuning.CACHE_FILE
    tuning.tune_products.cache_clear()
    set_strategy(*was)


def _quick_measure():
    """The timings' shape without the time (tests of the cache around the measurement)."""
    return {"tiled_ms": 2.0, "whole_ms": 1.0, "rows_ms": 0.5, "blas_ms": 1.0, "packed_large_ms": 3.0,
            "packed_small_ms": 0.4}


def _operands(m, k, n, dtype, rng, transposed_b=False, aligned=True):
    make = aligned_empty if aligned else (lambda shape, dt: np.empty(shape, dt))
    a = make((m, k), dtype)
    a[:] = rng.standard_normal((m, k))
    if transposed_b:
        b = rng.standard_normal((n, k)).astype(dtype).T           # a transposed view, as the backward passes
    else:
        b = make((k, n), dtype)
        b[:] = rng.standard_normal((k, n))
    c = make((m, n), dtype)
    c[:] = rng.standard_normal((m, n))
    return a, b, c


@pytest.mark.parametrize("tiles, rows", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m, k, n, transposed_b", [
    (40, 700, 300, True),      # above the tiling size: tiles or one call
    (16, 128, 512, False),     # a recurrent product of 16 rows: the row kernel's
    (7, 33, 65, False),        # odd sizes: the row kernel's tails (3 rows, one k left over)
    (32, 2, 512, False),       # the input projection (I = 2)
])
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-4), (np.float64, 1e-12)])
def test_every_strategy_computes_the_same_product(tiles, rows, m, k, n, transposed_b, dtype, tol):
    rng = np.random.default_rng(1)
    a, b, c = _operands(m, k, n, dtype, rng, transposed_b)
    for beta in (0.0, 1.0, 0.5):
        want = a.astype(np.float64) @ b.astype(np.float64) + (beta * c if beta else 0.0)
        got = c.copy()
        was = strategy()
        try:
            set_strategy(tiles, rows)
            gemm(a, b, got, beta)
        finally:
            set_strategy(*was)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10 * np.sqrt(k))


@njit
def _product_of_columns(a, w, c, beta, lo, hi):
    product(a, columns(w, lo, hi), c, beta)


@pytest.mark.parametrize("m, k, n, lo, hi", [
    (16, 128, 512, 0, 512),    # the LSTM's h·W_hhᵀ at H = 128, 16 rows
    (7, 64, 48, 16, 48),       # a column block (the GRU's) and 3 rows left over after the 4-row blocks
    (3, 1, 16, 0, 16),         # fewer rows than a block, k = 1
    (32, 2048, 64, 0, 64),     # the reverse sweep's ∂z·W_hh: k long, n = H
])
def test_packed_weights_give_the_same_product(m, k, n, lo, hi):
    """The microkernel on packed weights (a 3-D operand of ``product``) against float64, for beta 0, 1, 0.5;
    a 2-D operand runs the same through ``gemm``."""
    rng = np.random.default_rng(3)
    a, w, c = _operands(m, k, n, np.float32, rng)
    c = np.ascontiguousarray(c[:, lo:hi])
    assert packable(w) and pack(w).shape == (n // 16, k, 16)
    want0 = a.astype(np.float64) @ w[:, lo:hi].astype(np.float64)
    for beta in (0.0, 1.0, 0.5):
        want = want0 + (beta * c if beta else 0.0)
        for weights in (pack(w), w):
            got = c.copy()
            _product_of_columns(a, weights, got, beta, lo, hi)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * 10 * np.sqrt(k))
    assert not packable(w.astype(np.float64)) and not packable(w[:, :8])


def test_column_blocks_and_unaligned_rows_are_right_too():
    """A column block (the GRU's z[:, :2H]) and rows off the 64-byte grid: BLAS or the row kernel, the same."""
    rng = np.random.default_rng(2)
    a, b, c = _operands(16, 64, 256, np.float32, rng, aligned=False)
    wide = rng.standard_normal((16, 384)).astype(np.float32)
    block = wide[:, :256]
    want = a.astype(np.float64) @ b.astype(np.float64)
    was = strategy()
    try:
        set_strategy(False, True)
        gemm(a, b, block, 0.0)
        gemm(a[1:], b, c[1:], 0.0)
    finally:
        set_strategy(*was)
    np.testing.assert_allclose(block, want, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(c[1:], want[1:], rtol=1e-4, atol=1e-3)


def test_the_choice_is_measured_once_then_read_from_the_cache(fresh):
    first = tuning.tune_products()
    times = ("tiled_ms", "whole_ms", "rows_ms", "blas_ms", "packed_small_ms", "packed_large_ms")
    flag_names = ("tiling", "rows", "packed_small", "packed_large")
    assert first["source"] == "measured" and all(first[k] > 0 for k in times)
    assert first["tiling"] == (first["tiled_ms"] < first["whole_ms"])
    assert first["rows"] == (first["rows_ms"] < first["blas_ms"])
    assert first["packed_small"] == (first["packed_small_ms"] < min(first["rows_ms"], first["blas_ms"]))
    assert first["packed_large"] == (first["packed_large_ms"] < min(first["tiled_ms"], first["whole_ms"]))
    flags = tuple(first[k] for k in flag_names)
    assert strategy() == flags
    stored = json.loads(fresh.read_text())[tuning.machine_key()]
    assert tuple(stored[k] for k in flag_names) == flags
    tuning.tune_products.cache_clear()                          # the next process
    again = tuning.tune_products()
    assert again["source"] == "cache" and tuple(again[k] for k in flag_names) == flags


@pytest.mark.parametrize("small, large", [(True, False), (False, True)])
def test_weights_are_packed_by_their_size_as_chosen(small, large):
    """Small weights (at most ROW_KERNEL_MAX_WEIGHTS entries: the LSTM's W_hh up to H = 128) and large ones
    are packed or not each as the tuning chose."""
    from kernels import cpu
    from kernels.params import init_params

    was = strategy()
    try:
        set_strategy(was[0], was[1], small, large)
        for hidden, packed in ((16, small), (128, small), (144, large)):
            p = init_params("lstm", 2, hidden, 1, np.random.default_rng(0), np.float32)
            layer = cpu._layer(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], {})
            assert (layer.W_hhT.ndim, layer.W_hh_bwd.ndim) == ((3, 3) if packed else (2, 2)), hidden
    finally:
        set_strategy(*was)


@pytest.mark.parametrize("forced, want", [("blas", (False, False, False)), ("tiles", (True, False, False)),
                                          ("rows", (False, True, False)), ("tiles+rows", (True, True, False)),
                                          ("packed", (False, False, True)), ("rows+packed", (False, True, True))])
def test_the_environment_forces_the_choice_without_measuring(fresh, monkeypatch, forced, want):
    monkeypatch.setenv(tuning.ENV_FORCE, forced)
    choice = tuning.tune_products()
    got = (choice["tiling"], choice["rows"], choice["packed_small"], choice["packed_large"])
    assert choice["source"] == "env" and got == (*want, want[2]) == strategy()
    assert not fresh.exists()


def test_an_unknown_forced_choice_is_ignored_and_measured(fresh, monkeypatch):
    monkeypatch.setattr(tuning, "measure", _quick_measure)
    monkeypatch.setenv(tuning.ENV_FORCE, "fastest")
    assert tuning.tune_products()["source"] == "measured"


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"KEY": {"tiling": "yes"}}',
                                    b'{"KEY": {"tiling": true, "tiled_ms": 1, "whole_ms": 2}}',
                                    b'{"KEY": {"tiling": true, "rows": true, "tiled_ms": 1, "whole_ms": 2, '
                                    b'"rows_ms": 1, "blas_ms": 2}}',    # older files: no packed choice
                                    b'{"KEY": {"tiling": true, "rows": true, "packed": true, "tiled_ms": 1, '
                                    b'"whole_ms": 2, "rows_ms": 1, "blas_ms": 2, "packed_ms": 1}}',  # one for both
                                    b'{"KEY": {"tiling": true, "rows": true, "packed_small": true, "packed_large": true, '
                                    b'"tiled_ms": 1, "whole_ms": 2, "rows_ms": 1, "blas_ms": 2, "packed_small_ms": 1, '
                                    b'"packed_large_ms": 1}}'])          # no version: blas_ms was one call
def test_a_damaged_or_older_cache_is_measured_again_and_rewritten(fresh, monkeypatch, damage):
    monkeypatch.setattr(tuning, "measure", _quick_measure)
    fresh.write_bytes(damage.replace(b"KEY", tuning.machine_key().encode()))
    choice = tuning.tune_products()
    assert choice["source"] == "measured"
    assert (choice["tiling"], choice["rows"], choice["packed_small"], choice["packed_large"]) == (False, True, True, False)
    assert json.loads(fresh.read_text())[tuning.machine_key()]["rows"] is True


def test_a_cache_folder_that_cannot_be_written_only_means_measuring(fresh, monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "measure", _quick_measure)
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LSTM_EXPLORER_CACHE_DIR", str(blocker / "sub"))    # a folder under a file
    assert tuning.tune_products()["source"] == "measured"
