"""Where an LSTM training step spends its time on this machine (issue 13): one thread, phase by phase.

    .venv/bin/python bench/profile_lstm.py [--configs 100x32x128,100x64,512] [--repeats 7]

For each (T, B, H) it times, best of ``--repeats`` (the least disturbed run on a shared machine):

- the whole training step on 1 thread and on every thread (``kernels.config.limit_threads``);
- the forward and the BPTT kernels alone, one thread, on the whole batch and on half of it;
- their parts, T steps each, in @njit loops here (no Python between calls): the recurrent product
  h_{t-1} W_hhᵀ as the kernels run it (kernels.blas.gemm: tiled GEMM_TILE above SMALL_GEMM_MACS) and
  as one OpenBLAS call, for B rows (one thread owns the batch) and B/2 rows (two threads split it);
  the gate loops; ∂L/∂h_{t-1} = ∂L/∂z W_hh; the weight-gradient panels (∂L/∂zᵀ h over 256-row panels);
- the recurrent product under other tile shapes, to size GEMM_TILE for this machine's OpenBLAS.

Nothing in kernels/ is changed; the load average is printed beside the figures (they are noisy when
the machine is shared). Shapes follow kernels/cpu_lstm.py.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from numba import njit

from kernels import config
from kernels.blas import _gemm_call
from kernels.cpu_lstm import _cell_backward, _cell_forward, backward_rows, forward_rows
from kernels.tuning import ONE_CALL, TILES, repeat_gemm


@njit(cache=False, nogil=True)
def _loop_tiles(a, b, c, T, tm, tn, tk):
    m, k = a.shape
    n = b.shape[1]
    for _ in range(T):
        for i in range(0, m, tm):
            for j in range(0, n, tn):
                for p in range(0, k, tk):
                    _gemm_call(a[i:i + tm, p:p + tk], b[p:p + tk, j:j + tn], c[i:i + tm, j:j + tn], 1.0)


@njit(cache=False, nogil=True)
def _loop_cell_forward(z, b, c_prev, c, h, T):
    for _ in range(T):
        _cell_forward(z, b, c_prev, c, h)


@njit(cache=False, nogil=True)
def _loop_cell_backward(gates, c_prev, c, dh, dh_next, dc_next, dz, T):
    s = 0.0
    for _ in range(T):
        s += _cell_backward(gates, c_prev, c, dh, dh_next, dc_next, dz)
    return s


def best(fn, repeats):
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def gflops(macs, seconds):
    return 2.0 * macs / seconds / 1e9


def profile(T, B, H, repeats):
    import kernels
    from explorer.benchmark import _batch, _init

    rng = np.random.default_rng(0)
    f32 = np.float32
    G = 4 * H
    I = 2
    print(f"\n## LSTM T={T} B={B} H={H}   (load average {os.getloadavg()[0]:.2f})")
    # whole step, 1 thread and all threads
    params, batch = _init("lstm", H), _batch(T, B)
    model = kernels.backend("cpu").make_model("lstm", params, loss_kind="mse_last", optimizer="adam", lr=1e-3)
    for n in (1, config.cpu_threads()):
        config.limit_threads(n)
        s = best(lambda: model.step(batch.x, batch.y), repeats)
        print(f"step, {n} thread(s): {s * 1e3:8.2f} ms")
    config.limit_threads(64)
    # forward and backward kernels alone, one thread, whole batch and half
    x = batch.x
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    W_ihT, W_hhT = np.ascontiguousarray(W_ih.T), np.ascontiguousarray(W_hh.T)
    b = (params["bias_ih"] + params["bias_hh"]).astype(f32)
    h0, c0 = np.zeros((B, H), f32), np.zeros((B, H), f32)
    h, c, gates = np.empty((T, B, H), f32), np.empty((T, B, H), f32), np.empty((T, B, G), f32)
    dh = np.zeros((T, B, H), f32)
    dh[-1] = rng.standard_normal((B, H)).astype(f32) * 0.1
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(G, f32)
    norm = np.zeros(T)
    dh0, dc0 = np.zeros((B, H), f32), np.zeros((B, H), f32)
    no_dx = np.empty((0, B, I), f32)
    mm = T * B * G * H  # recurrent multiply-adds per pass
    for rows in (B, B // 2):
        fw = best(lambda: forward_rows(x, W_ihT, W_hhT, b, h0, c0, h, c, gates, 0, rows), repeats)
        bw = best(lambda: backward_rows(W_ih, W_hh, x, h0, c0, h, c, gates, dh, norm, dh0, dc0, dW_ih, dW_hh, db,
                                        no_dx, 0, rows), repeats)
        print(f"1 thread, {rows:3d} rows: forward {fw * 1e3:8.2f} ms ({gflops(mm * rows / B, fw):5.1f} GFLOP/s of "
              f"its products), BPTT {bw * 1e3:8.2f} ms ({gflops(2 * mm * rows / B, bw):5.1f})")
    # parts, T steps each, one thread
    for n in (B, B // 2):
        hp = rng.standard_normal((n, H)).astype(f32) * 0.1
        z = np.zeros((n, G), f32)
        tiled = best(lambda: repeat_gemm(hp, W_hhT, z, T, TILES), repeats)
        whole = best(lambda: repeat_gemm(hp, W_hhT, z, T, ONE_CALL), repeats)
        macs = T * n * H * G
        print(f"  h({n}x{H})·W_hhT({H}x{G}) x{T}: kernels' gemm {tiled * 1e3:7.2f} ms "
              f"{gflops(macs, tiled):5.1f} GFLOP/s; one OpenBLAS call {whole * 1e3:7.2f} ms {gflops(macs, whole):5.1f}")
        dz = rng.standard_normal((n, G)).astype(f32) * 0.1
        dhn = np.zeros((n, H), f32)
        back = best(lambda: repeat_gemm(dz, W_hh, dhn, T, TILES), repeats)
        print(f"  dz({n}x{G})·W_hh({G}x{H}) x{T}: {back * 1e3:7.2f} ms {gflops(macs, back):5.1f} GFLOP/s")
        zz = rng.standard_normal((n, G)).astype(f32)
        cp, cc, hh = np.zeros((n, H), f32), np.zeros((n, H), f32), np.zeros((n, H), f32)
        cf = best(lambda: _loop_cell_forward(zz.copy(), b, cp, cc, hh, T), repeats)
        gt = 1 / (1 + np.exp(-rng.standard_normal((n, G)).astype(f32)))
        dhn2, dcn = np.zeros((n, H), f32), np.zeros((n, H), f32)
        cb = best(lambda: _loop_cell_backward(gt, cp, cc, hh, dhn2, dcn, dz, T), repeats)
        print(f"  gate loops x{T}: forward {cf * 1e3:6.2f} ms ({cf / (T * n * H) * 1e9:.2f} ns/unit), "
              f"backward {cb * 1e3:6.2f} ms ({cb / (T * n * H) * 1e9:.2f} ns/unit)")
        # weight-gradient panels: dW_hh += dzᵀ h over 256-row panels, T·n rows in all
        rows_p = max(1, 256 // n) * n
        dzp = rng.standard_normal((rows_p, G)).astype(f32)
        hpn = rng.standard_normal((rows_p, H)).astype(f32)
        acc = np.zeros((G, H), f32)
        flushes = max(1, T * n // rows_p)
        pan = best(lambda: repeat_gemm(dzp.T, hpn, acc, flushes, TILES), repeats)
        print(f"  panels dzᵀ({G}x{rows_p})·h({rows_p}x{H}) x{flushes}: {pan * 1e3:7.2f} ms "
              f"{gflops(flushes * rows_p * G * H, pan):5.1f} GFLOP/s")
    # tile shapes for the recurrent product, B/2 and B rows
    for n in (B // 2, B):
        hp = rng.standard_normal((n, H)).astype(f32) * 0.1
        z = np.zeros((n, G), f32)
        res = []
        for tm, tn, tk in ((32, 128, 128), (n, 256, 128), (n, 512, 128), (n, 256, H), (n, 512, H), (n, G, H)):
            s = best(lambda: _loop_tiles(hp, W_hhT, z, T, tm, tn, tk), repeats)
            res.append(f"({min(tm, n)},{tn},{tk}) {gflops(T * n * H * G, s):5.1f}")
        print(f"  tiles of h({n}x{H})·W_hhT, GFLOP/s: " + ", ".join(res))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="100x32x128,100x64x512")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    config.own_the_threads()
    print(f"threads {config.cpu_threads()}, GEMM_TILE {config.GEMM_TILE}, SMALL_GEMM_MACS {config.SMALL_GEMM_MACS}")
    for item in a.configs.split(","):
        T, B, H = (int(v) for v in item.split("x"))
        profile(T, B, H, a.repeats)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
