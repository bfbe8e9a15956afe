"""The products' strategy is measured once per machine and remembered; either strategy gives the same
products (kernels/tuning.py, kernels/blas.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from kernels import tuning
from kernels.blas import gemm, set_tiling, tiling


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """tune_products as in a new process, its cache in tmp_path; the switch restored afterwards."""
    was = tiling()
    monkeypatch.setenv("LSTM_EXPLORER_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(tuning.ENV_FORCE, raising=False)
    tuning.tune_products.cache_clear()
    yield tmp_path / tuning.CACHE_FILE
    tuning.tune_products.cache_clear()
    set_tiling(was)


@pytest.mark.parametrize("on", [True, False])
def test_tiled_and_whole_products_agree_with_numpy(on):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 700)).astype(np.float32)       # 40·700·300 multiply-adds: above the tiling size
    b = rng.standard_normal((300, 700)).astype(np.float32).T    # a transposed view, as the kernels pass
    c = rng.standard_normal((40, 300)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64) + 0.5 * c
    was = tiling()
    try:
        set_tiling(on)
        gemm(a, b, c, 0.5)
    finally:
        set_tiling(was)
    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-3)


def test_the_choice_is_measured_once_then_read_from_the_cache(fresh):
    first = tuning.tune_products()
    assert first["source"] == "measured" and first["tiled_ms"] > 0 and first["whole_ms"] > 0
    assert first["tiling"] == (first["tiled_ms"] < first["whole_ms"]) == tiling()
    stored = json.loads(fresh.read_text())
    assert stored[tuning.machine_key()]["tiling"] == first["tiling"]
    tuning.tune_products.cache_clear()                          # the next process
    again = tuning.tune_products()
    assert again["source"] == "cache" and again["tiling"] == first["tiling"]


@pytest.mark.parametrize("forced", ["0", "1"])
def test_the_environment_forces_the_choice_without_measuring(fresh, monkeypatch, forced):
    monkeypatch.setenv(tuning.ENV_FORCE, forced)
    choice = tuning.tune_products()
    assert choice["source"] == "env" and choice["tiling"] is (forced == "1") and tiling() is (forced == "1")
    assert not fresh.exists()


@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"KEY": {"tiling": "yes"}}'])
def test_a_damaged_cache_is_measured_again_and_rewritten(fresh, damage):
    fresh.write_bytes(damage.replace(b"KEY", tuning.machine_key().encode()))
    choice = tuning.tune_products()
    assert choice["source"] == "measured"
    assert isinstance(json.loads(fresh.read_text())[tuning.machine_key()]["tiling"], bool)


def test_a_cache_folder_that_cannot_be_written_only_means_measuring(fresh, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LSTM_EXPLORER_CACHE_DIR", str(blocker / "sub"))    # a folder under a file
    assert tuning.tune_products()["source"] == "measured"
