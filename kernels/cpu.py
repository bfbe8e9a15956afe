"""The CPU backend: NumPy in and out, Numba kernels underneath."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernels import cpu_lstm, cpu_rnn
from kernels.config import PARALLEL_MIN_MACS, cpu_threads, own_the_threads
from kernels.cpu_common import even_bounds
from kernels.errors import KernelInputError
from kernels.model import ModelBase, train_tiny_models
from kernels.optim import adam_step, clip_by_norm, global_norm, sgd_step
from kernels.params import check_backward_input, check_input, check_params, flat_views, initial_state
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
        self.dh0 = np.empty((B, H), dtype)
        self.dc0 = np.empty((B, H), dtype) if lstm else None


def _threads(cell: str, B: int, H: int) -> int:
    """Threads for a batch of ``B`` rows: every one we may use for big steps, one below PARALLEL_MIN_MACS."""
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


def _transposed(W_ih, W_hh):
    """W_ihᵀ, W_hhᵀ as contiguous copies, the layout the forward products run fastest on (kernels/blas.py)."""
    return np.ascontiguousarray(W_ih.T), np.ascontiguousarray(W_hh.T)


def _forward_rows(cell, W_ihT, W_hhT, b, x, ws: _Workspace, b0: int, b1: int) -> None:
    """The forward pass of batch rows ``b0:b1`` into ``ws``."""
    if cell == "lstm":
        cpu_lstm.forward_rows(x, W_ihT, W_hhT, b, ws.h0, ws.c0, ws.h, ws.c, ws.gates, b0, b1)
    else:
        cpu_rnn.forward_rows(x, W_ihT, W_hhT, b, ws.h0, ws.h, b0, b1)


def _backward_rows(cell, W_ih, W_hh, x, fwd, dh, dh0, dc0, grads, norm_sum, dx, b0: int, b1: int) -> None:
    """BPTT of batch rows ``b0:b1`` through the forward pass ``fwd`` (a :class:`Forward` or a
    :class:`_Workspace`): their weight gradients into ``grads = (dW_ih, dW_hh, db)`` (overwritten),
    Σ_rows ‖∂L/∂h_t‖ into ``norm_sum : (T,)``, ∂L/∂h_0 (∂L/∂c_0) into those rows of ``dh0`` (``dc0``)."""
    dW_ih, dW_hh, db = grads
    dW_ih[:] = 0.0
    dW_hh[:] = 0.0
    db[:] = 0.0
    if cell == "lstm":
        cpu_lstm.backward_rows(W_ih, W_hh, x, fwd.h0, fwd.c0, fwd.h, fwd.c, fwd.gates, dh, norm_sum,
                               dh0, dc0, dW_ih, dW_hh, db, dx, b0, b1)
    else:
        cpu_rnn.backward_rows(W_ih, W_hh, x, fwd.h0, fwd.h, dh, norm_sum, dh0, dW_ih, dW_hh, db, dx, b0, b1)


def _chunk_grads(chunks: int, like: tuple) -> list[tuple]:
    """Gradient arrays per batch chunk: the first chunk writes into ``like`` itself."""
    return [like] + [tuple(np.empty_like(a) for a in like) for _ in range(chunks - 1)]


def _add_parts(parts: list[tuple]) -> None:
    """Sum every chunk's arrays into the first chunk's."""
    for part in parts[1:]:
        for total, a in zip(parts[0], part):
            total += a


def _forward(cell, W_ih, W_hh, b, x, ws: _Workspace) -> Forward:
    """Forward into ``ws``, the batch split into one chunk per thread."""
    W_ihT, W_hhT = _transposed(W_ih, W_hh)
    _in_parallel(lambda b0, b1: _forward_rows(cell, W_ihT, W_hhT, b, x, ws, b0, b1),
                 even_bounds(x.shape[1], _threads(cell, x.shape[1], ws.h.shape[2])))
    return Forward(cell=cell, h=ws.h, c=ws.c, gates=ws.gates, h0=ws.h0, c0=ws.c0)


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
        return _forward(cell, W_ih, W_hh, b, x, ws)

    def backward(self, cell: str, params: dict, x, fwd: Forward, dh) -> Gradients:
        """Full BPTT of ``dh = ∂L/∂h : (T, B, H)`` through the run ``fwd`` of :meth:`forward`.

        Returns :class:`Gradients`: the keys of ``params`` plus ``"x"``, and ``.dh_norm : (T,)``.
        """
        x, dh, n_in, H, dtype = check_backward_input(cell, params, x, fwd, dh)
        T, B, _ = x.shape
        W_ih, W_hh, _ = _layer_arrays(params, dtype)
        G = W_hh.shape[0]
        bounds = even_bounds(B, _threads(cell, B, H))
        parts = _chunk_grads(len(bounds) - 1, (np.empty((G, n_in), dtype), np.empty((G, H), dtype),
                                               np.empty(G, dtype)))
        norms = np.zeros((len(parts), T))
        dx, dh0 = np.empty((T, B, n_in), dtype), np.empty((B, H), dtype)
        dc0 = np.empty((B, H), dtype) if cell == "lstm" else None
        _in_parallel(lambda b0, b1: _backward_rows(cell, W_ih, W_hh, x, fwd, dh, dh0, dc0, parts[bounds.index(b0)],
                                                   norms[bounds.index(b0)], dx, b0, b1), bounds)
        _add_parts(parts)
        dW_ih, dW_hh, db = parts[0]
        grads = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db, "bias_hh": db.copy(), "x": dx}
        return Gradients(grads, norms.sum(axis=0) / B, dh0, dc0)

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
        y = np.asarray(y)
        T, B, _ = x.shape
        if not 1 <= self.window <= T:
            raise KernelInputError(f"readout window {self.window} must be between 1 and T={T}")
        ws = self._workspace(T, B)
        W_ih, W_hh = p["weight_ih"], p["weight_hh"]
        W_ihT, W_hhT = _transposed(W_ih, W_hh)
        b = p["bias_ih"] + p["bias_hh"]
        bounds = even_bounds(B, _threads(self.cell, B, self.hidden))
        readout_rows = self.window * B  # the terms every loss kind averages over (window = 1 for *_last)
        parts = _chunk_grads(len(bounds) - 1, (g["weight_ih"], g["weight_hh"], g["bias_ih"],
                                               g["readout.weight"], g["readout.bias"]))
        norms = np.zeros((len(parts), T))
        losses = [0.0] * len(parts)
        outs = [None] * len(parts)
        no_dx = np.empty((0, B, self.n_in), self.dtype)

        def chunk(b0, b1):
            """Forward, loss and BPTT of rows b0:b1: the loss is row-wise, so chunks never wait on each other."""
            k = bounds.index(b0)
            rows = slice(b0, b1)
            _forward_rows(self.cell, W_ihT, W_hhT, b, x, ws, b0, b1)
            y_rows = y[:, rows] if self.loss_kind == "ce_window" else y[rows]
            losses[k], outs[k] = readout_loss(self.loss_kind, ws.h[:, rows], p["readout.weight"], p["readout.bias"],
                                              y_rows, self.window, ws.dh[:, rows], *parts[k][3:], count=readout_rows)
            _backward_rows(self.cell, W_ih, W_hh, x, ws, ws.dh, ws.dh0, ws.dc0, parts[k][:3], norms[k], no_dx, b0, b1)

        _in_parallel(chunk, bounds)
        _add_parts(parts)
        loss = float(sum(losses))
        out = np.concatenate(outs, axis=1 if self.loss_kind == "ce_window" else 0)
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
                         dh_norm=norms.sum(axis=0) / B)

    def probe(self, x) -> Forward:
        """Forward pass only (no training) over ``x : (T, B, I)``; arrays are fresh copies."""
        x = check_input(x, self.dtype, self.n_in)
        T, B, _ = x.shape
        ws = _Workspace(self.cell, T, B, self.hidden, self.dtype)
        p = self.params
        return _forward(self.cell, p["weight_ih"], p["weight_hh"], p["bias_ih"] + p["bias_hh"], x, ws)

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
