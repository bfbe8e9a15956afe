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
from kernels.params import check_backward_input, check_input, check_params, flat_views, initial_state
from kernels.results import Forward, Gradients, StepStats

try:
    from numba import config as _numba_config
    from numba import cuda
except ImportError as exc:  # pragma: no cover - numba is a hard dependency
    raise ImportError(f"numba.cuda cannot be imported: {exc}") from exc

from kernels import gpu_common, gpu_lstm, gpu_rnn
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
    """Device buffers for one (T, B) shape, reused across training steps."""

    def __init__(self, cell: str, T: int, B: int, n_in: int, H: int, dtype, training: bool = True):
        G = 4 * H if cell == "lstm" else H
        self.shape = (T, B)
        self.x = cuda.device_array((T, B, n_in), dtype)
        self.hs = _zeros((T + 1, B, H), dtype)                    # slot 0 = h_0 = 0
        self.cs = _zeros((T + 1, B, H), dtype) if cell == "lstm" else None
        self.gates = cuda.device_array((T, B, G), dtype) if cell == "lstm" else None
        if training:
            self.dh = _zeros((T, B, H), dtype)                    # only the readout rows are ever written
            self.dz = cuda.device_array((T, B, G), dtype)
            self.dhtot = cuda.device_array((T, B, H), dtype)
            self.dc = cuda.device_array((B, H), dtype) if cell == "lstm" else None
            self.dh_norm = cuda.device_array(T, dtype)


def _run_forward(cell, W_ih, W_hh, b, ws: _DeviceWorkspace):
    if cell == "lstm":
        gpu_lstm.forward(ws.x, W_ih, W_hh, b, ws.hs, ws.cs, ws.gates)
    else:
        gpu_rnn.forward(ws.x, W_ih, W_hh, b, ws.hs)


def _run_backward(cell, W_ih, W_hh, ws: _DeviceWorkspace, dW_ih, dW_hh, db, db2, dx=None, dh0=None):
    if cell == "lstm":
        gpu_lstm.backward(ws.x, W_ih, W_hh, ws.hs, ws.cs, ws.gates, ws.dh, ws.dz, ws.dhtot, ws.dc, ws.dh_norm,
                          dW_ih, dW_hh, db, db2, dx, dh0)
    else:
        gpu_rnn.backward(ws.x, W_ih, W_hh, ws.hs, ws.dh, ws.dz, ws.dhtot, ws.dh_norm, dW_ih, dW_hh, db, db2,
                         dx, dh0)


def _forward_to_host(cell, ws: _DeviceWorkspace) -> Forward:
    hs = ws.hs.copy_to_host()
    cs = ws.cs.copy_to_host() if cell == "lstm" else None
    return Forward(cell=cell, h=np.ascontiguousarray(hs[1:]),
                   c=np.ascontiguousarray(cs[1:]) if cs is not None else None,
                   gates=ws.gates.copy_to_host() if cell == "lstm" else None,
                   h0=np.ascontiguousarray(hs[0]), c0=np.ascontiguousarray(cs[0]) if cs is not None else None)


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

    def forward(self, cell: str, params: dict, x, h0=None, c0=None) -> Forward:
        """Run ``cell`` over ``x : (T, B, I)``; ``params`` in PyTorch layout. Returns host arrays."""
        n_in, H, dtype = check_params(cell, params)
        x = check_input(x, dtype, n_in)
        T, B, _ = x.shape
        ws = _DeviceWorkspace(cell, T, B, n_in, H, dtype, training=False)
        ws.x.copy_to_device(x)
        ws.hs[0].copy_to_device(initial_state(h0, B, H, dtype, "h0"))
        if cell == "lstm":
            ws.cs[0].copy_to_device(initial_state(c0, B, H, dtype, "c0"))
        W_ih, W_hh, b = _layer_to_device(params, dtype)
        _run_forward(cell, W_ih, W_hh, b, ws)
        return _forward_to_host(cell, ws)

    def backward(self, cell: str, params: dict, x, fwd: Forward, dh) -> Gradients:
        """Full BPTT of ``dh = ∂L/∂h : (T, B, H)`` through ``fwd``; returns host :class:`Gradients`."""
        x, dh, n_in, H, dtype = check_backward_input(cell, params, x, fwd, dh)
        T, B, _ = x.shape
        ws = _DeviceWorkspace(cell, T, B, n_in, H, dtype, training=True)
        ws.x.copy_to_device(x)
        hs = np.empty((T + 1, B, H), dtype)
        hs[0] = initial_state(fwd.h0, B, H, dtype, "fwd.h0")
        hs[1:] = fwd.h
        ws.hs.copy_to_device(hs)
        if cell == "lstm":
            if fwd.c is None or fwd.gates is None:
                raise KernelInputError("an LSTM backward pass needs fwd.c and fwd.gates")
            cs = np.empty((T + 1, B, H), dtype)
            cs[0] = initial_state(fwd.c0, B, H, dtype, "fwd.c0")
            cs[1:] = fwd.c
            ws.cs.copy_to_device(cs)
            gates = np.ascontiguousarray(fwd.gates, dtype=dtype)
            if gates.shape != (T, B, 4 * H):
                raise KernelInputError(f"fwd.gates must have shape {(T, B, 4 * H)}, got {gates.shape}")
            ws.gates.copy_to_device(gates)
        ws.dh.copy_to_device(dh)
        W_ih, W_hh, _ = _layer_to_device(params, dtype)
        G = W_hh.shape[0]
        dW_ih, dW_hh = cuda.device_array((G, n_in), dtype), cuda.device_array((G, H), dtype)
        db, db2 = cuda.device_array(G, dtype), cuda.device_array(G, dtype)
        dx, dh0 = cuda.device_array((T, B, n_in), dtype), cuda.device_array((B, H), dtype)
        _run_backward(cell, W_ih, W_hh, ws, dW_ih, dW_hh, db, db2, dx, dh0)
        grads = {"weight_ih": dW_ih.copy_to_host(), "weight_hh": dW_hh.copy_to_host(),
                 "bias_ih": db.copy_to_host(), "bias_hh": db2.copy_to_host(), "x": dx.copy_to_host()}
        return Gradients(grads, ws.dh_norm.copy_to_host(), dh0.copy_to_host(),
                         ws.dc.copy_to_host() if cell == "lstm" else None)

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
    n = 0
    for which in ("common", "lstm", "rnn"):
        for dtype in ("float32", "float64"):
            ns = gpu_common._jitted(dtype, tile, tpb, which)
            n += sum(len(getattr(v, "overloads", {}) or {}) for name, v in vars(ns).items() if name != "py")
    return n


def _layer_to_device(params: dict, dtype):
    W_ih = cuda.to_device(np.ascontiguousarray(params["weight_ih"], dtype=dtype))
    W_hh = cuda.to_device(np.ascontiguousarray(params["weight_hh"], dtype=dtype))
    b = cuda.to_device(np.ascontiguousarray(np.asarray(params["bias_ih"], dtype=dtype)
                                            + np.asarray(params["bias_hh"], dtype=dtype)))
    return W_ih, W_hh, b


class CudaModel(ModelBase):
    """Recurrent layer + linear readout + optimizer, trained in place on the GPU.

    Same constructor and methods as :class:`kernels.cpu.CpuModel`. ``params`` and
    ``grads`` are dicts of *device* array views into one flat buffer; use
    :meth:`state` for host copies.
    """

    def __init__(self, cell: str, params: dict, **settings):
        super().__init__(cell, params, **settings)
        size, dtype = self._flat.size, self.dtype
        self._grad = _zeros(size, dtype)
        self._state = [_zeros(size, dtype), _zeros(size, dtype)]  # Adam m, v (SGD: buffer)
        self.params = flat_views(self.shapes, self._flat)
        self.grads = flat_views(self.shapes, self._grad)
        self._bias = cuda.device_array(self.shapes["bias_ih"][0], dtype)
        self._norms = Norms([int(np.prod(s)) for s in self.shapes.values()], dtype)
        self._step = 0
        self._ws: _DeviceWorkspace | None = None
        self._ro = None  # readout buffers for the current (T, B)

    def _place(self, flat: np.ndarray):
        return cuda.to_device(flat)

    def _workspace(self, T: int, B: int) -> _DeviceWorkspace:
        if self._ws is None or self._ws.shape != (T, B):
            if not 1 <= self.window <= T:
                raise KernelInputError(f"readout window {self.window} must be between 1 and T={T}")
            self._ws = _DeviceWorkspace(self.cell, T, B, self.n_in, self.hidden, self.dtype, training=True)
            N = self.window * B
            self._ro = dict(y=cuda.device_array(N, self.dtype), out=cuda.device_array((N, self.n_out), self.dtype),
                            dout=cuda.device_array((N, self.n_out), self.dtype),
                            rowval=cuda.device_array(N, self.dtype))
        return self._ws

    def _bias_sum(self, k):
        p = self.params
        launch_1d(k.add, self._bias.size, p["bias_ih"], p["bias_hh"], self._bias)
        return self._bias

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
        b = self._bias_sum(k)
        _run_forward(self.cell, p["weight_ih"], p["weight_hh"], b, ws)
        # readout + loss: out = h W_rᵀ + b_r on the last `window` steps, then ∂L/∂out, ∂L/∂W_r, ∂L/∂h
        hw = ws.hs[T + 1 - self.window:].reshape(N, H)
        launch_gemm(k, hw, p["readout.weight"], ro["out"], ta=0, tb=1)
        kind = LOSS_CODES[self.loss_kind]
        scale = self.dtype.type(2.0 / B) if kind == 0 else self.dtype.type(1.0 / N)
        launch_1d(k.readout_rows, N, ro["out"], p["readout.bias"], ro["y"], kind, scale, ro["dout"], ro["rowval"])
        launch_gemm(k, ro["dout"], hw, g["readout.weight"], ta=1)
        launch_1d(k.colsum, K, ro["dout"], g["readout.bias"], g["readout.bias"])
        launch_gemm(k, ro["dout"], p["readout.weight"], ws.dh[T - self.window:].reshape(N, H))
        # BPTT; both bias gradients are written by the same kernel
        _run_backward(self.cell, p["weight_ih"], p["weight_hh"], ws, g["weight_ih"], g["weight_hh"],
                      g["bias_ih"], g["bias_hh"])
        # norms, clip and update on the device
        self._norms.compute(k, self._grad)
        self._step += 1
        S, n = self._norms.S, self._flat.size
        t = self.dtype.type
        if self.optimizer == "adam":
            b1, b2 = self.betas
            bc1 = 1.0 - b1 ** self._step
            bc2_sqrt = np.sqrt(1.0 - b2 ** self._step)
            launch_1d(k.clip_adam, n, self._flat, self._grad, self._state[0], self._state[1], self._norms.norms, S,
                      float(self.clip), t(self.lr / bc1), t(b1), t(b2), t(1.0 / bc2_sqrt), t(self.eps))
        else:
            launch_1d(k.clip_sgd, n, self._flat, self._grad, self._state[0], self._norms.norms, S,
                      float(self.clip), t(self.lr), t(self.momentum), self._step == 1, self.momentum != 0.0)
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
        ws = _DeviceWorkspace(self.cell, T, B, self.n_in, self.hidden, self.dtype, training=False)
        ws.x.copy_to_device(x)
        k = get_kernels(self.dtype)
        b = self._bias_sum(k)
        _run_forward(self.cell, self.params["weight_ih"], self.params["weight_hh"], b, ws)
        return _forward_to_host(self.cell, ws)

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
