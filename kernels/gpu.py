"""The CUDA backend: the CPU backend's API (NumPy in and out) on ``numba.cuda`` kernels.

:class:`CudaBackend` mirrors :class:`kernels.cpu.CpuBackend` (``forward``,
``backward``, ``make_model``, ``warm_up``); :class:`CudaModel` mirrors
:class:`kernels.cpu.CpuModel` (``step``, ``probe``, ``state``, ``param_count``).

What lives where during training (:class:`CudaModel`)
-----------------------------------------------------
On the device for the whole run: the flat parameter buffer (same layout as the
CPU, kernels/params.py), the flat gradient, the optimizer state (Adam m, v or
the SGD momentum buffer), every activation and BPTT workspace (allocated once per
(T, B) shape), the batch buffers. Per step the host uploads the batch ``x, y``
into the preallocated device buffers (the trainer samples batches on the host)
and copies back only metrics: the readout outputs (for the task metric), one
loss term per readout row, 7 gradient norms and ``dh_norm (T,)`` -- a few
hundred bytes. Clipping and the optimizer update run on the device (fused into
one kernel that reads the global norm from device memory). Probe snapshots (h,
c, gates) are copied back only when the trainer asks for a probe, i.e. at the
probe interval. Kernel design and speed notes: kernels/gpu_common.py and
kernels/gpu_lstm.py.
"""
from __future__ import annotations

import time

import numpy as np

from kernels.errors import BackendUnavailable, KernelInputError
from kernels.model import ModelBase, train_tiny_models
from kernels import cells as _cells
from kernels.cells import Layer
from kernels.params import check_backward_input, check_input, check_params, flat_views, initial_states
from kernels.results import Forward, Gradients, StepStats

try:
    from numba import config as _numba_config
    from numba import cuda
except ImportError as exc:  # pragma: no cover - numba is a hard dependency
    raise ImportError(f"numba.cuda cannot be imported: {exc}") from exc

from kernels import gpu_common
from kernels.gpu_common import LOSS_CODES, Norms, fill, get_kernels, launch_1d, launch_gemm, settings

_HOW_TO_FIX = ("use --backend cpu, or on a machine with an NVIDIA GPU install its driver and the `cuda` extra "
               "(pip install 'lstm-explorer[cuda]')")


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels in its Python simulator (NUMBA_ENABLE_CUDASIM=1 before import)."""
    return bool(getattr(_numba_config, "ENABLE_CUDASIM", False))


def unavailable_reason() -> str | None:
    """Why the CUDA backend cannot run here, or None when it can (a GPU or the simulator)."""
    if simulator_enabled():
        return None
    try:
        if cuda.is_available():
            return None
    except Exception as exc:  # noqa: BLE001 - any driver failure means "not usable"
        return f"{type(exc).__name__}: {exc}".strip()
    try:
        cuda.current_context()
    except Exception as exc:  # noqa: BLE001
        text = " ".join(str(exc).split()).rstrip(" :.")
        return text or type(exc).__name__
    return "numba.cuda.is_available() is False"




def _zeros(shape, dtype):
    a = cuda.device_array(shape, dtype)
    fill(get_kernels(dtype), a, 0.0)
    return a


class _DeviceWorkspace:
    """Device buffers for one (T, B) shape, reused across training steps.

    ``seqs[s] : (T+1, B, H)`` per state of the cell (slot 0 = s_0 = 0 unless set), ``saved[a] :
    (T, B, width·H)`` per saved array; in training also ``dh`` (∂L/∂h from the loss), ``dz : (T, B, G)``,
    ``dhtot`` (total ∂L/∂h_t), ``dcarry[s] : (B, H)`` per state besides h (∂L/∂c carried; ∂L/∂c_0
    after the sweep) and ``dh_norm : (T,)``. ``extra`` holds a cell's own buffers (made on first use).
    """

    def __init__(self, spec, T: int, B: int, n_in: int, H: int, dtype, training: bool = True):
        G = spec.rows(H)
        self.shape = (T, B)
        self.x = cuda.device_array((T, B, n_in), dtype)
        self.seqs = {s: _zeros((T + 1, B, H), dtype) for s in spec.states}
        self.hs = self.seqs["h"]
        self.saved = {a: cuda.device_array((T, B, w * H), dtype) for a, w in spec.saved_widths().items()}
        self.extra = {}
        self.training = training
        if training:
            self.dh = _zeros((T, B, H), dtype)                    # only the readout rows are ever written
            self.dz = cuda.device_array((T, B, G), dtype)
            self.dhtot = cuda.device_array((T, B, H), dtype)
            self.dcarry = {s: cuda.device_array((B, H), dtype) for s in spec.states[1:]}
            self.dh_norm = cuda.device_array(T, dtype)


def _forward_to_host(spec, ws: _DeviceWorkspace, options: dict) -> Forward:
    seqs = {s: v.copy_to_host() for s, v in ws.seqs.items()}
    return Forward(cell=spec.name, states={s: np.ascontiguousarray(v[1:]) for s, v in seqs.items()},
                   initial={s: np.ascontiguousarray(v[0]) for s, v in seqs.items()},
                   saved={a: v.copy_to_host() for a, v in ws.saved.items()}, options=dict(options))


class CudaBackend:
    """``numba.cuda`` kernels on an NVIDIA GPU (or the CUDA simulator). NumPy in, NumPy out.

    Raises
    ------
    BackendUnavailable
        No usable CUDA GPU (and the simulator is not enabled); the message says why and what to do.
    """

    name = "cuda"

    def __init__(self):
        reason = unavailable_reason()
        if reason is not None:
            raise BackendUnavailable(f"the CUDA backend needs an NVIDIA GPU, but there is no usable CUDA GPU: "
                                     f"{reason}. To go on, {_HOW_TO_FIX}.")
        self.simulator = simulator_enabled()

    def forward(self, cell: str, params: dict, x, h0=None, c0=None, *, state0: dict | None = None,
                **options) -> Forward:
        """Run ``cell`` over ``x : (T, B, I)``; ``params`` in PyTorch layout. Returns host arrays.
        Arguments as :meth:`kernels.cpu.CpuBackend.forward`."""
        spec = _cells.get(cell)
        kern = spec.cuda_kernels()
        options = spec.check_options(options)
        n_in, H, dtype = check_params(cell, params)
        x = check_input(x, dtype, n_in)
        T, B, _ = x.shape
        ws = _DeviceWorkspace(spec, T, B, n_in, H, dtype, training=False)
        ws.x.copy_to_device(x)
        for s, v in initial_states(cell, B, H, dtype, h0, c0, state0).items():
            ws.seqs[s][0].copy_to_device(v)
        kern.forward(_layer_to_device(params, dtype, options, kern.summed_bias), ws)
        return _forward_to_host(spec, ws, options)

    def backward(self, cell: str, params: dict, x, fwd: Forward, dh) -> Gradients:
        """Full BPTT of ``dh = ∂L/∂h : (T, B, H)`` through ``fwd``; returns host :class:`Gradients`."""
        spec = _cells.get(cell)
        kern = spec.cuda_kernels()
        x, dh, n_in, H, dtype = check_backward_input(cell, params, x, fwd, dh)
        T, B, _ = x.shape
        ws = _DeviceWorkspace(spec, T, B, n_in, H, dtype, training=True)
        ws.x.copy_to_device(x)
        for s in spec.states:
            seq = np.empty((T + 1, B, H), dtype)
            seq[0] = fwd.initial[s]
            seq[1:] = fwd.states[s]
            ws.seqs[s].copy_to_device(seq)
        for a in spec.saved_widths():
            ws.saved[a].copy_to_device(np.ascontiguousarray(fwd.saved[a]))
        ws.dh.copy_to_device(dh)
        layer = _layer_to_device(params, dtype, spec.check_options(fwd.options), False)
        G = spec.rows(H)
        grads = (cuda.device_array((G, n_in), dtype), cuda.device_array((G, H), dtype),
                 cuda.device_array(G, dtype), cuda.device_array(G, dtype))
        dx = cuda.device_array((T, B, n_in), dtype)
        dinit = {"h": cuda.device_array((B, H), dtype)}
        kern.backward(layer, ws, grads, dx, dinit["h"])
        dinit.update(ws.dcarry)
        host = dict(zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (g.copy_to_host() for g in grads)))
        host["x"] = dx.copy_to_host()
        return Gradients(host, ws.dh_norm.copy_to_host(), {s: v.copy_to_host() for s, v in dinit.items()})

    def make_model(self, cell: str, params: dict, **options) -> "CudaModel":
        """A trainable model whose parameters and optimizer state stay on the device; see :class:`CudaModel`."""
        return CudaModel(cell, params, **options)

    def warm_up(self, cells=("rnn", "lstm"), dtype=np.float32, optimizer="adam", progress=None) -> dict:
        """Compile every kernel a training run of ``cells`` needs (one tiny step and probe each).

        Returns ``{"seconds", "compiled", "cached"}`` like the CPU backend (CUDA kernels are
        compiled per process: ``cached`` is 0).
        """
        dtype = np.dtype(dtype)
        start = time.perf_counter()
        before = _compiled_count()
        train_tiny_models(CudaModel, cells, dtype, optimizer, progress)
        return {"seconds": time.perf_counter() - start, "compiled": _compiled_count() - before, "cached": 0}


def _compiled_count() -> int:
    """Number of compiled kernel specialisations so far (for warm-up statistics)."""
    tile, tpb, _ = settings()
    sets = ["common"] + [spec.cuda_kernels().kernel_set for spec in _cells.specs() if spec.cuda is not None]
    n = 0
    for which in sets:
        for dtype in ("float32", "float64"):
            ns = gpu_common._jitted(dtype, tile, tpb, which)
            n += sum(len(getattr(v, "overloads", {}) or {}) for name, v in vars(ns).items() if name != "py")
    return n


def _layer_to_device(params: dict, dtype, options: dict, summed_bias: bool) -> Layer:
    """The layer's arrays on the device; ``b = b_ih + b_hh`` too when the cell's kernels take the sum."""
    d = {k: cuda.to_device(np.ascontiguousarray(params[k], dtype=dtype))
         for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    b = None
    if summed_bias:
        b = cuda.to_device(np.ascontiguousarray(np.asarray(params["bias_ih"], dtype=dtype)
                                                + np.asarray(params["bias_hh"], dtype=dtype)))
    return Layer(W_ih=d["weight_ih"], W_hh=d["weight_hh"], b_ih=d["bias_ih"], b_hh=d["bias_hh"], b=b,
                 options=options)


class CudaModel(ModelBase):
    """Recurrent layer + linear readout + optimizer, trained in place on the GPU.

    Same constructor and methods as :class:`kernels.cpu.CpuModel`. ``params`` and
    ``grads`` are dicts of *device* array views into one flat buffer; use
    :meth:`state` for host copies.
    """

    def __init__(self, cell: str, params: dict, **settings):
        super().__init__(cell, params, **settings)
        self._kern = self.spec.cuda_kernels()
        size, dtype = self._flat.size, self.dtype
        self._grad = _zeros(size, dtype)
        self._state = [_zeros(size, dtype), _zeros(size, dtype)]  # Adam/RMSprop m, v (SGD: buffer)
        self.params = flat_views(self.shapes, self._flat)
        self.grads = flat_views(self.shapes, self._grad)
        self._bias = cuda.device_array(self.shapes["bias_ih"][0], dtype)
        self._norms = Norms([int(np.prod(s)) for s in self.shapes.values()], dtype)
        self._updates = 0
        self._ws: _DeviceWorkspace | None = None
        self._ro = None  # readout buffers for the current (T, B)

    def _place(self, flat: np.ndarray):
        return cuda.to_device(flat)

    @staticmethod
    def _fetch(a) -> np.ndarray:
        return a.copy_to_host()

    @staticmethod
    def _load(dst, src: np.ndarray) -> None:
        dst.copy_to_device(np.ascontiguousarray(src))

    def _workspace(self, T: int, B: int) -> _DeviceWorkspace:
        if self._ws is None or self._ws.shape != (T, B):
            if not 1 <= self.window <= T:
                raise KernelInputError(f"readout window {self.window} must be between 1 and T={T}")
            self._ws = _DeviceWorkspace(self.spec, T, B, self.n_in, self.hidden, self.dtype, training=True)
            N = self.window * B
            self._ro = dict(y=cuda.device_array(N, self.dtype), out=cuda.device_array((N, self.n_out), self.dtype),
                            dout=cuda.device_array((N, self.n_out), self.dtype),
                            rowval=cuda.device_array(N, self.dtype))
        return self._ws

    def _layer(self, k) -> Layer:
        """The layer's device views; ``b = b_ih + b_hh`` summed on the device when the cell takes it."""
        p = self.params
        if self._kern.summed_bias:
            launch_1d(k.add, self._bias.size, p["bias_ih"], p["bias_hh"], self._bias)
        return Layer(W_ih=p["weight_ih"], W_hh=p["weight_hh"], b_ih=p["bias_ih"], b_hh=p["bias_hh"],
                     b=self._bias if self._kern.summed_bias else None, options=self.options)

    def step(self, x, y) -> StepStats:
        """One training step on ``x : (T, B, I)``, targets ``y``: forward, loss, BPTT, clip, update (all on device)."""
        x = check_input(x, self.dtype, self.n_in)
        T, B, _ = x.shape
        ws = self._workspace(T, B)
        ro = self._ro
        N, K, H = self.window * B, self.n_out, self.hidden
        y = np.asarray(y)
        if y.size != N:
            raise KernelInputError(f"targets y must hold window·B = {N} values for loss {self.loss_kind}, "
                                   f"got shape {y.shape}")
        if self.loss_kind != "mse_last":
            labels = y.reshape(-1).astype(np.int64)
            if labels.min() < 0 or labels.max() >= K:
                raise KernelInputError(f"class labels must be in 0..{K - 1}, got {labels.min()}..{labels.max()}")
        ws.x.copy_to_device(x)
        ro["y"].copy_to_device(np.ascontiguousarray(y.reshape(-1), dtype=self.dtype))
        k = get_kernels(self.dtype)
        p, g = self.params, self.grads
        layer = self._layer(k)
        self._kern.forward(layer, ws)
        # readout + loss: out = h W_rᵀ + b_r on the last `window` steps, then ∂L/∂out, ∂L/∂W_r, ∂L/∂h
        hw = ws.hs[T + 1 - self.window:].reshape(N, H)
        launch_gemm(k, hw, p["readout.weight"], ro["out"], ta=0, tb=1)
        kind = LOSS_CODES[self.loss_kind]
        scale = self.dtype.type(2.0 / B) if kind == 0 else self.dtype.type(1.0 / N)
        launch_1d(k.readout_rows, N, ro["out"], p["readout.bias"], ro["y"], kind, scale, ro["dout"], ro["rowval"])
        launch_gemm(k, ro["dout"], hw, g["readout.weight"], ta=1)
        launch_1d(k.colsum, K, ro["dout"], g["readout.bias"], g["readout.bias"])
        launch_gemm(k, ro["dout"], p["readout.weight"], ws.dh[T - self.window:].reshape(N, H))
        # BPTT (the cell's kernels write both bias gradients)
        self._kern.backward(layer, ws, (g["weight_ih"], g["weight_hh"], g["bias_ih"], g["bias_hh"]))
        # norms, clip and update on the device
        self._norms.compute(k, self._grad)
        self._updates += 1
        S, n = self._norms.S, self._flat.size
        t = self.dtype.type
        if self.optimizer == "sgd":
            launch_1d(k.clip_sgd, n, self._flat, self._grad, self._state[0], self._norms.norms, S,
                      float(self.clip), t(self.lr), t(self.momentum), self._updates == 1, self.momentum != 0.0)
        else:
            step_size, b1, b2, inv_bc2 = self.adaptive_coefficients()
            launch_1d(k.clip_adaptive, n, self._flat, self._grad, self._state[0], self._state[1], self._norms.norms,
                      S, float(self.clip), t(step_size), t(b1), t(b2), t(inv_bc2), t(self.eps))
        # metrics back to the host (small): loss terms, outputs, norms, dh_norm
        rowval = ro["rowval"].copy_to_host().astype(np.float64)
        out = ro["out"].copy_to_host()
        norms = self._norms.norms.copy_to_host()
        dh_norm = ws.dh_norm.copy_to_host()
        if kind == 0:
            loss = float(np.mean(rowval ** 2))
        else:
            loss = float(-np.mean(np.log(np.maximum(rowval, 1e-300))))
        out = out.reshape(self.window, B, K) if self.loss_kind == "ce_window" else out
        param_norms = {name: float(norms[i]) for i, name in enumerate(self.shapes)}
        return StepStats(loss=loss, out=out, grad_norm=float(norms[S]), param_grad_norms=param_norms,
                         dh_norm=dh_norm)

    def probe(self, x) -> Forward:
        """Forward pass only over ``x : (T, B, I)``; returns fresh host copies (h, c, gates)."""
        x = check_input(x, self.dtype, self.n_in)
        T, B, _ = x.shape
        ws = _DeviceWorkspace(self.spec, T, B, self.n_in, self.hidden, self.dtype, training=False)
        ws.x.copy_to_device(x)
        self._kern.forward(self._layer(get_kernels(self.dtype)), ws)
        return _forward_to_host(self.spec, ws, self.options)

    def state(self) -> dict[str, np.ndarray]:
        """Host copies of the current parameters (PyTorch layout, :data:`PARAM_KEYS`)."""
        flat = self._flat.copy_to_host()
        out, offset = {}, 0
        for name, shape in self.shapes.items():
            size = int(np.prod(shape))
            out[name] = flat[offset:offset + size].reshape(shape).copy()
            offset += size
        return out


__all__ = ["CudaBackend", "CudaModel", "simulator_enabled", "unavailable_reason"]
