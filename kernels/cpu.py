"""The CPU backend: NumPy in and out, Numba kernels underneath."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernels import cpu_lstm, cpu_rnn
from kernels.config import PARALLEL_MIN_MACS, cpu_threads, own_the_threads
from kernels.cpu_common import even_bounds
from kernels.errors import KernelInputError
from kernels.optim import adam_step, clip_by_norm, global_norm, sgd_step
from kernels.model import ModelBase, train_tiny_models
from kernels.params import check_input, check_params, flat_views, initial_state
from kernels.readout import readout_loss
from kernels.results import Forward, Gradients, StepStats




@functools.cache
def _pool(n: int) -> ThreadPoolExecutor:
    """The worker threads that run batch chunks side by side (one pool per size, made once)."""
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="lstm-explorer-kernel")


class _Workspace:
    """Buffers for one (T, B) shape, reused across training steps (no allocation per step).

    What BPTT must keep is h (and for the LSTM c and the four gates); besides
    that only ∂L/∂h from the loss, (T, B, H), is as long as the sequence.
    """

    def __init__(self, cell: str, T: int, B: int, H: int, dtype):
        lstm = cell == "lstm"
        self.shape = (T, B)
        self.h = np.empty((T, B, H), dtype)
        self.c = np.empty((T, B, H), dtype) if lstm else None
        self.gates = np.empty((T, B, 4 * H), dtype) if lstm else None
        self.h0 = np.zeros((B, H), dtype)
        self.c0 = np.zeros((B, H), dtype) if lstm else None
        self.dh = np.zeros((T, B, H), dtype)
        self.dh_norm = np.empty(T, dtype)
        self.dh0 = np.empty((B, H), dtype)
        self.dc0 = np.empty((B, H), dtype) if lstm else None


def _threads(cell: str, x, ws: _Workspace) -> int:
    """Threads for one call: every one we may use for big steps, one below PARALLEL_MIN_MACS."""
    B, H = x.shape[1], ws.h.shape[2]
    G = 4 * H if cell == "lstm" else H
    return min(B, cpu_threads()) if B * H * G >= PARALLEL_MIN_MACS else 1


def _in_parallel(fn, bounds) -> None:
    """Run ``fn(lo, hi)`` for every chunk of ``bounds``: the first on the calling thread, the others
    on the pool (the kernels release the GIL)."""
    chunks = list(zip(bounds[:-1], bounds[1:]))
    futures = [_pool(len(chunks) - 1).submit(fn, lo, hi) for lo, hi in chunks[1:]]
    fn(*chunks[0])
    for future in futures:
        future.result()


def _run_forward(cell, W_ih, W_hh, b, x, ws: _Workspace) -> Forward:
    """Forward into ``ws``, the batch split into one chunk per thread."""
    W_ihT, W_hhT = np.ascontiguousarray(W_ih.T), np.ascontiguousarray(W_hh.T)
    if cell == "lstm":
        def rows(b0, b1):
            cpu_lstm.forward_rows(x, W_ihT, W_hhT, b, ws.h0, ws.c0, ws.h, ws.c, ws.gates, b0, b1)
    else:
        def rows(b0, b1):
            cpu_rnn.forward_rows(x, W_ihT, W_hhT, b, ws.h0, ws.h, b0, b1)
    _in_parallel(rows, even_bounds(x.shape[1], _threads(cell, x, ws)))
    return Forward(cell=cell, h=ws.h, c=ws.c, gates=ws.gates, h0=ws.h0, c0=ws.c0)


def _run_backward(cell, W_ih, W_hh, x, fwd: Forward, dh, ws: _Workspace, dW_ih, dW_hh, db, dx=None):
    """BPTT into ``ws`` and ``dW_ih, dW_hh, db`` (and ``dx : (T, B, I)`` if given), the batch split into
    one chunk per thread; each chunk adds its weight gradients into arrays of its own, summed at the end."""
    T, B, I = x.shape
    G, H = W_hh.shape
    bounds = even_bounds(B, _threads(cell, x, ws))
    m = len(bounds) - 1
    norms = np.zeros((m, T))
    parts = [(dW_ih, dW_hh, db)] + [(np.empty_like(dW_ih), np.empty_like(dW_hh), np.empty_like(db))
                                    for _ in range(m - 1)]
    dx = np.empty((0, B, I), x.dtype) if dx is None else dx

    def sweep(b0, b1):
        k = bounds.index(b0)
        g_ih, g_hh, g_b = parts[k]
        g_ih[:] = 0.0
        g_hh[:] = 0.0
        g_b[:] = 0.0
        if cell == "lstm":
            cpu_lstm.backward_rows(W_ih, W_hh, x, fwd.h0, fwd.c0, fwd.h, fwd.c, fwd.gates, dh, norms[k],
                                   ws.dh0, ws.dc0, g_ih, g_hh, g_b, dx, b0, b1)
        else:
            cpu_rnn.backward_rows(W_ih, W_hh, x, fwd.h0, fwd.h, dh, norms[k], ws.dh0, g_ih, g_hh, g_b, dx, b0, b1)

    _in_parallel(sweep, bounds)
    ws.dh_norm[:] = norms.sum(axis=0) / B
    for g_ih, g_hh, g_b in parts[1:]:
        dW_ih += g_ih
        dW_hh += g_hh
        db += g_b


class CpuBackend:
    """Numba ``@njit`` kernels on the CPU. Methods take and return NumPy arrays."""

    name = "cpu"

    def __init__(self):
        own_the_threads()

    def forward(self, cell: str, params: dict, x, h0=None, c0=None) -> Forward:
        """Run ``cell`` over ``x : (T, B, I)``; ``params`` in PyTorch layout (keys weight_ih, ...).

        Returns a :class:`Forward` whose ``.h`` is ``(T, B, H)``.
        """
        n_in, H, dtype = check_params(cell, params)
        x = check_input(x, dtype, n_in)
        T, B, _ = x.shape
        ws = _Workspace(cell, T, B, H, dtype)
        ws.h0[:] = initial_state(h0, B, H, dtype, "h0")
        if cell == "lstm":
            ws.c0[:] = initial_state(c0, B, H, dtype, "c0")
        W_ih, W_hh, b = _layer_arrays(params, dtype)
        return _run_forward(cell, W_ih, W_hh, b, x, ws)

    def backward(self, cell: str, params: dict, x, fwd: Forward, dh) -> Gradients:
        """Full BPTT of ``dh = ∂L/∂h : (T, B, H)`` through the run ``fwd`` of :meth:`forward`.

        Returns :class:`Gradients`: the keys of ``params`` plus ``"x"``, and ``.dh_norm : (T,)``.
        """
        n_in, H, dtype = check_params(cell, params)
        if fwd.cell != cell:
            raise KernelInputError(f"fwd comes from a {fwd.cell} forward pass, not {cell}")
        x = check_input(x, dtype, n_in)
        T, B, _ = x.shape
        dh = np.ascontiguousarray(dh, dtype=dtype)
        if dh.shape != (T, B, H) or fwd.h.shape != (T, B, H):
            raise KernelInputError(f"dh and fwd.h must have shape (T, B, H) = {(T, B, H)}, "
                                   f"got {dh.shape} and {fwd.h.shape}")
        ws = _Workspace(cell, T, B, H, dtype)
        W_ih, W_hh, _ = _layer_arrays(params, dtype)
        G = W_hh.shape[0]
        dW_ih, dW_hh, db = np.empty((G, n_in), dtype), np.empty((G, H), dtype), np.empty(G, dtype)
        dx = np.empty((T, B, n_in), dtype)
        _run_backward(cell, W_ih, W_hh, x, fwd, dh, ws, dW_ih, dW_hh, db, dx)
        grads = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db, "bias_hh": db.copy(), "x": dx}
        return Gradients(grads, ws.dh_norm, ws.dh0, ws.dc0)

    def make_model(self, cell: str, params: dict, **options) -> "CpuModel":
        """A trainable model (recurrent layer + readout + optimizer); see :class:`CpuModel`."""
        return CpuModel(cell, params, **options)

    def warm_up(self, cells=("rnn", "lstm"), dtype=np.float32, optimizer="adam", progress=None) -> dict:
        """Compile or load every kernel ``cells`` need; see :func:`warm_up`."""
        return warm_up(cells, dtype, optimizer, progress)


def _layer_arrays(params: dict, dtype):
    W_ih = np.ascontiguousarray(params["weight_ih"], dtype=dtype)
    W_hh = np.ascontiguousarray(params["weight_hh"], dtype=dtype)
    b = np.asarray(params["bias_ih"], dtype=dtype) + np.asarray(params["bias_hh"], dtype=dtype)
    return W_ih, W_hh, b


class CpuModel(ModelBase):
    """Recurrent layer + linear readout + optimizer, trained in place on the CPU.

    Constructor arguments: see :class:`kernels.model.ModelBase`. ``params`` and ``grads``
    are dicts of views into one flat buffer each.
    """

    def __init__(self, cell: str, params: dict, **settings):
        super().__init__(cell, params, **settings)
        size = self._flat.size
        self._grad = np.zeros(size, self.dtype)
        self.params = flat_views(self.shapes, self._flat)
        self.grads = flat_views(self.shapes, self._grad)
        self._state = [np.zeros(size, self.dtype), np.zeros(size, self.dtype)]  # Adam m, v (SGD uses the first)
        self._updates = 0
        self._ws: _Workspace | None = None

    def _workspace(self, T: int, B: int) -> _Workspace:
        if self._ws is None or self._ws.shape != (T, B):
            self._ws = _Workspace(self.cell, T, B, self.hidden, self.dtype)
        return self._ws

    def step(self, x, y) -> StepStats:
        """One training step on the batch ``x : (T, B, I)``, targets ``y``: forward, loss, BPTT, clip, update.

        A diverging model is reported through a non-finite ``loss``/``grad_norm``, not warnings.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            return self._step(x, y)

    def _step(self, x, y) -> StepStats:
        p, g = self.params, self.grads
        x = check_input(x, self.dtype, self.n_in)
        T, B, _ = x.shape
        ws = self._workspace(T, B)
        b = p["bias_ih"] + p["bias_hh"]
        fwd = _run_forward(self.cell, p["weight_ih"], p["weight_hh"], b, x, ws)
        loss, out = readout_loss(self.loss_kind, fwd.h, p["readout.weight"], p["readout.bias"], y,
                                 self.window, ws.dh, g["readout.weight"], g["readout.bias"])
        _run_backward(self.cell, p["weight_ih"], p["weight_hh"], x, fwd, ws.dh, ws,
                      g["weight_ih"], g["weight_hh"], g["bias_ih"])
        g["bias_hh"][:] = g["bias_ih"]
        param_norms = {name: float(np.sqrt(np.dot(v.ravel(), v.ravel()))) for name, v in g.items()}
        norm = float(global_norm(self._grad))
        clip_by_norm(self._grad, self.clip, norm)
        self._updates += 1
        if self.optimizer == "adam":
            adam_step(self._flat, self._grad, self._state[0], self._state[1], self.lr,
                      self.betas[0], self.betas[1], self.eps, self._updates)
        else:
            sgd_step(self._flat, self._grad, self._state[0], self.lr, self.momentum, self._updates)
        return StepStats(loss=loss, out=out, grad_norm=norm, param_grad_norms=param_norms,
                         dh_norm=ws.dh_norm.copy())

    def probe(self, x) -> Forward:
        """Forward pass only (no training) over ``x : (T, B, I)``; arrays are fresh copies."""
        x = check_input(x, self.dtype, self.n_in)
        T, B, _ = x.shape
        ws = _Workspace(self.cell, T, B, self.hidden, self.dtype)
        p = self.params
        return _run_forward(self.cell, p["weight_ih"], p["weight_hh"], p["bias_ih"] + p["bias_hh"], x, ws)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the current parameters (PyTorch layout, :data:`PARAM_KEYS`)."""
        return {name: v.copy() for name, v in self.params.items()}


def compiled_kernels():
    """Every CPU ``@njit`` dispatcher, for warm-up and cache statistics."""
    from kernels import optim

    return [cpu_lstm.forward_rows, cpu_lstm.backward_rows, cpu_rnn.forward_rows, cpu_rnn.backward_rows,
            optim.global_norm, optim.clip_by_norm, optim.adam_step, optim.sgd_step]


def warm_up(cells=("rnn", "lstm"), dtype=np.float32, optimizer="adam", progress=None) -> dict:
    """Compile (or load from the on-disk cache) every kernel a training run of ``cells`` needs.

    ``progress(done, total, what)`` is called before each piece. Returns
    ``{"seconds": float, "compiled": int, "cached": int}``: kernels compiled
    from scratch vs loaded from the cache.
    """
    import time

    def counts():
        hits = misses = 0
        for k in compiled_kernels():
            hits += sum(k.stats.cache_hits.values())
            misses += sum(k.stats.cache_misses.values())
        return hits, misses

    hits0, misses0 = counts()
    start = time.perf_counter()
    train_tiny_models(CpuModel, cells, dtype, optimizer, progress)
    hits, misses = counts()
    return {"seconds": time.perf_counter() - start, "compiled": misses - misses0, "cached": hits - hits0}
