"""The CPU backend: NumPy in and out, Numba kernels underneath."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernels import cells as _cells
from kernels.blas import packing
from kernels.cells import Layer
from kernels.config import PARALLEL_MIN_MACS, cpu_threads, own_the_threads
from kernels.cpu_common import aligned_copy, aligned_empty, aligned_zeros, even_bounds
from kernels.errors import KernelInputError
from kernels.model import ModelBase, train_tiny_models
from kernels.optim import adaptive_step, clip_by_norm, global_norm, sgd_step
from kernels.packed import STRIP, pack, packable
from kernels.params import check_backward_input, check_input, check_params, flat_views, initial_states
from kernels.readout import readout_loss
from kernels.results import Forward, Gradients, StepStats
from kernels.tuning import tune_products


@functools.cache
def _pool(n: int) -> ThreadPoolExecutor:
    """The worker threads that run batch chunks side by side (one pool per size, made once)."""
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="lstm-explorer-kernel")


class _Workspace:
    """Buffers for one (T, B) shape, reused across training steps (no allocation per step).

    What BPTT must keep is the cell's states (h, and c for the LSTM) and its saved
    arrays (the gates); besides that only ∂L/∂h from the loss, (T, B, H), is as
    long as the sequence. ``fwd`` is the :class:`Forward` over these buffers.
    """

    def __init__(self, spec, T: int, B: int, H: int, dtype, options: dict):
        self.shape = (T, B)
        states = {s: aligned_empty((T, B, H), dtype) for s in spec.states}
        initial = {s: aligned_zeros((B, H), dtype) for s in spec.states}
        saved = {a: aligned_empty((T, B, w * H), dtype) for a, w in spec.saved_widths().items()}
        self.fwd = Forward(cell=spec.name, states=states, initial=initial, saved=saved, options=options)
        self.dh = aligned_zeros((T, B, H), dtype)
        self.dinit = {s: aligned_empty((B, H), dtype) for s in spec.states}


def _threads(spec, B: int, H: int) -> int:
    """Threads for a batch of ``B`` rows: every one we may use for big steps, one below PARALLEL_MIN_MACS."""
    return min(B, cpu_threads()) if B * H * spec.rows(H) >= PARALLEL_MIN_MACS else 1


def _in_parallel(fn, bounds) -> None:
    """Run ``fn(lo, hi)`` for every chunk of ``bounds``: the first on the calling thread, the others
    on the pool (the kernels release the GIL)."""
    chunks = list(zip(bounds[:-1], bounds[1:]))
    futures = [_pool(len(chunks) - 1).submit(fn, lo, hi) for lo, hi in chunks[1:]]
    fn(*chunks[0])
    for future in futures:
        future.result()


def _layer(W_ih, W_hh, b_ih, b_hh, options: dict, transposed: bool = True) -> Layer:
    """The arrays the row kernels take; with ``transposed``, W_ihᵀ, W_hhᵀ as contiguous copies (the
    layout the forward products run fastest on, kernels/blas.py) and b = b_ih + b_hh. W_hhᵀ and W_hh
    are packed for the recurrent products where the tuning chose that (float32, H a multiple of 16)."""
    packed = packing(W_hh.size) and packable(W_hh) and packable(W_hh.T)
    layer = Layer(W_ih=W_ih, W_hh=W_hh, b_ih=b_ih, b_hh=b_hh, b=b_ih + b_hh, options=options,
                  W_hh_bwd=pack(W_hh) if packed else W_hh)
    if transposed:
        layer.W_ihT, layer.W_hhT = aligned_copy(W_ih.T), pack(W_hh.T) if packed else aligned_copy(W_hh.T)
    return layer


def _backward_rows(kern, layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0: int, b1: int) -> None:
    """BPTT of batch rows ``b0:b1`` through ``fwd``: their weight gradients into ``grads = (dW_ih, dW_hh,
    db_ih, db_hh)`` (overwritten), Σ_rows ‖∂L/∂h_t‖ into ``norm_sum : (T,)``, ∂L/∂s_0 into ``dinit``."""
    for g in grads:
        g[:] = 0.0
    kern.backward_rows(layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0, b1)


def _chunk_grads(chunks: int, like: tuple) -> list[tuple]:
    """Gradient arrays per batch chunk: the first chunk writes into ``like`` itself."""
    return [like] + [tuple(np.empty_like(a) for a in like) for _ in range(chunks - 1)]


def _add_parts(parts: list[tuple]) -> None:
    """Sum every chunk's arrays into the first chunk's."""
    for part in parts[1:]:
        for total, a in zip(parts[0], part):
            total += a


def _forward(spec, layer: Layer, x, ws: _Workspace) -> Forward:
    """Forward into ``ws``, the batch split into one chunk per thread."""
    kern = spec.cpu_kernels()
    _in_parallel(lambda b0, b1: kern.forward_rows(layer, x, ws.fwd, b0, b1),
                 even_bounds(x.shape[1], _threads(spec, x.shape[1], ws.dh.shape[2])))
    return ws.fwd


class CpuBackend:
    """Numba ``@njit`` kernels on the CPU. Methods take and return NumPy arrays."""

    name = "cpu"

    def __init__(self):
        own_the_threads()
        tune_products()

    def forward(self, cell: str, params: dict, x, h0=None, c0=None, *, state0: dict | None = None,
                **options) -> Forward:
        """Run ``cell`` over ``x : (T, B, I)``; ``params`` in PyTorch layout (keys weight_ih, ...).

        ``h0``, ``c0`` (or ``state0={name: (B, H)}``) are the initial states (zeros when not given);
        ``options`` are the cell's options (e.g. ``activation="relu"`` for the RNN).
        Returns a :class:`Forward` whose ``.h`` is ``(T, B, H)``.
        """
        spec = _cells.get(cell)
        options = spec.check_options(options)
        n_in, H, dtype = check_params(cell, params)
        x = check_input(x, dtype, n_in)
        T, B, _ = x.shape
        ws = _Workspace(spec, T, B, H, dtype, options)
        for s, v in initial_states(cell, B, H, dtype, h0, c0, state0).items():
            ws.fwd.initial[s][:] = v
        return _forward(spec, _layer(*_layer_arrays(params, dtype), options), x, ws)

    def backward(self, cell: str, params: dict, x, fwd: Forward, dh) -> Gradients:
        """Full BPTT of ``dh = ∂L/∂h : (T, B, H)`` through the run ``fwd`` of :meth:`forward` (same options).

        Returns :class:`Gradients`: the keys of ``params`` plus ``"x"``, ``.dh_norm : (T,)`` and
        ∂L/∂s_0 per state (``.h0``, ``.c0``, ``.initial``).
        """
        spec = _cells.get(cell)
        x, dh, n_in, H, dtype = check_backward_input(cell, params, x, fwd, dh)
        T, B, _ = x.shape
        kern = spec.cpu_kernels()
        layer = _layer(*_layer_arrays(params, dtype), spec.check_options(fwd.options), transposed=False)
        G = spec.rows(H)
        bounds = even_bounds(B, _threads(spec, B, H))
        parts = _chunk_grads(len(bounds) - 1, (np.empty((G, n_in), dtype), np.empty((G, H), dtype),
                                               np.empty(G, dtype), np.empty(G, dtype)))
        norms = np.zeros((len(parts), T))
        dx = np.empty((T, B, n_in), dtype)
        dinit = {s: np.empty((B, H), dtype) for s in spec.states}
        _in_parallel(lambda b0, b1: _backward_rows(kern, layer, x, fwd, dh, dinit, parts[bounds.index(b0)],
                                                   norms[bounds.index(b0)], dx, b0, b1), bounds)
        _add_parts(parts)
        dW_ih, dW_hh, db_ih, db_hh = parts[0]
        grads = {"weight_ih": dW_ih, "weight_hh": dW_hh, "bias_ih": db_ih, "bias_hh": db_hh, "x": dx}
        return Gradients(grads, norms.sum(axis=0) / B, dinit)

    def make_model(self, cell: str, params: dict, **options) -> "CpuModel":
        """A trainable model (recurrent layer + readout + optimizer); see :class:`CpuModel`."""
        return CpuModel(cell, params, **options)

    def warm_up(self, cells=("rnn", "lstm"), dtype=np.float32, optimizer="adam", progress=None) -> dict:
        """Compile or load every kernel ``cells`` need; see :func:`warm_up`."""
        return warm_up(cells, dtype, optimizer, progress)


def _layer_arrays(params: dict, dtype):
    """W_ih, W_hh, b_ih, b_hh in ``dtype``, aligned copies (as a model's own parameters are)."""
    keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return tuple(aligned_copy(np.asarray(params[k], dtype=dtype)) for k in keys)


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
        self._state = [np.zeros(size, self.dtype), np.zeros(size, self.dtype)]  # Adam/RMSprop m, v (SGD: m)
        self._updates = 0
        self._ws: _Workspace | None = None

    def _place(self, flat: np.ndarray) -> np.ndarray:
        """The parameters in one aligned buffer (W_hh's rows then start on vector boundaries)."""
        return aligned_copy(flat)

    def _workspace(self, T: int, B: int) -> _Workspace:
        if self._ws is None or self._ws.shape != (T, B):
            self._ws = _Workspace(self.spec, T, B, self.hidden, self.dtype, self.options)
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
        kern = self.spec.cpu_kernels()
        layer = _layer(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], self.options)
        bounds = even_bounds(B, _threads(self.spec, B, self.hidden))
        readout_rows = self.window * B  # the terms every loss kind averages over (window = 1 for *_last)
        parts = _chunk_grads(len(bounds) - 1, (g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"],
                                               g["readout.weight"], g["readout.bias"]))
        norms = np.zeros((len(parts), T))
        losses = [0.0] * len(parts)
        outs = [None] * len(parts)
        no_dx = np.empty((0, B, self.n_in), self.dtype)
        fwd = ws.fwd

        def chunk(b0, b1):
            """Forward, loss and BPTT of rows b0:b1: the loss is row-wise, so chunks never wait on each other."""
            k = bounds.index(b0)
            rows = slice(b0, b1)
            kern.forward_rows(layer, x, fwd, b0, b1)
            y_rows = y[:, rows] if self.loss_kind == "ce_window" else y[rows]
            losses[k], outs[k] = readout_loss(self.loss_kind, fwd.h[:, rows], p["readout.weight"], p["readout.bias"],
                                              y_rows, self.window, ws.dh[:, rows], *parts[k][4:], count=readout_rows)
            _backward_rows(kern, layer, x, fwd, ws.dh, ws.dinit, parts[k][:4], norms[k], no_dx, b0, b1)

        _in_parallel(chunk, bounds)
        _add_parts(parts)
        loss = float(sum(losses))
        out = np.concatenate(outs, axis=1 if self.loss_kind == "ce_window" else 0)
        param_norms = {name: float(np.sqrt(np.dot(v.ravel(), v.ravel()))) for name, v in g.items()}
        norm = float(global_norm(self._grad))
        clip_by_norm(self._grad, self.clip, norm)
        self._updates += 1
        if self.optimizer == "sgd":
            sgd_step(self._flat, self._grad, self._state[0], self.lr, self.momentum, self._updates)
        else:
            adaptive_step(self._flat, self._grad, self._state[0], self._state[1], *self.adaptive_coefficients(),
                          self.eps)
        return StepStats(loss=loss, out=out, grad_norm=norm, param_grad_norms=param_norms,
                         dh_norm=norms.sum(axis=0) / B)

    def probe(self, x) -> Forward:
        """Forward pass only (no training) over ``x : (T, B, I)``; arrays are fresh copies."""
        x = check_input(x, self.dtype, self.n_in)
        T, B, _ = x.shape
        ws = _Workspace(self.spec, T, B, self.hidden, self.dtype, self.options)
        p = self.params
        return _forward(self.spec, _layer(p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"], self.options),
                        x, ws)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the current parameters (PyTorch layout, :data:`PARAM_KEYS`)."""
        return {name: v.copy() for name, v in self.params.items()}


def compiled_kernels():
    """Every CPU ``@njit`` dispatcher (of every registered cell, and the optimizer's), for warm-up and
    cache statistics."""
    from kernels import optim, packed, spectrum

    cell_kernels = [k for spec in _cells.specs() for k in spec.cpu_kernels().dispatchers]
    return cell_kernels + [optim.global_norm, optim.clip_by_norm, optim.adaptive_step, optim.sgd_step,
                           spectrum._extend, spectrum._top_singular, packed.pack_into]


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
    # a tiny model at H = 16 (W_hh of at most 4H x H entries) packs where the tuning chose packed small weights:
    # then it runs other kernels than H = 3 (large weights compile on first use)
    packed = packing(4 * STRIP * STRIP) and np.dtype(dtype) == np.float32
    train_tiny_models(CpuModel, cells, dtype, optimizer, progress, hidden=(3, STRIP) if packed else (3,))
    hits, misses = counts()
    return {"seconds": time.perf_counter() - start, "compiled": misses - misses0, "cached": hits - hits0}
