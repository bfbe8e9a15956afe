"""The cell registry: the one place a recurrent cell is named.

Every cell is one :class:`CellSpec` -- its name and label, its colour, its gate
blocks (PyTorch's row order), the state tensors it carries, the per-step arrays
its forward pass keeps for BPTT, its options, the gates the initialisations
touch, and where its CPU and CUDA kernels live. The backends, the parameter
layout (kernels/params.py), the results (kernels/results.py) and the
initialisations (kernels/inits.py) read the spec; nothing in ``kernels/`` asks
``if cell == "lstm"``. The application enumerates :func:`specs` for its menus,
colours, gate heatmaps and session attributes.

Adding a cell: a module with its kernels and one :func:`register` call. The
built-in cells' kernels are named by module path (imported on first use, so
reading the registry does not load Numba); a cell may instead hand over a
:class:`CpuKernels` object, e.g. :func:`numpy_cpu_kernels` built from a per-step
forward and backward written in plain NumPy (slow, for trying a cell out).

Kernel interfaces (one call per batch chunk and whole sequence, never per step)
-----------------------------------------------------------------------------
CPU (:class:`CpuKernels`), rows ``b0:b1`` of the batch::

    forward_rows(layer, x, fwd, b0, b1)
        layer : :class:`Layer` (weights, biases, transposes, options);  x : (T, B, I)
        fwd   : has ``initial[s] : (B, H)`` for every state s (read), ``states[s] : (T, B, H)``
                and ``saved[a] : (T, B, width·H)`` (written on rows b0:b1)
    backward_rows(layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0, b1)
        dh : (T, B, H) ∂L/∂h_t from the loss;  dinit[s] : (B, H) out, ∂L/∂s_0 on rows b0:b1
        grads = (dW_ih, dW_hh, db_ih, db_hh): this chunk's own arrays, zeroed by the caller, added into
        norm_sum : (T,) out, Σ_rows ‖∂L/∂h_t‖;  dx : (T, B, I) out on rows b0:b1, or (0, B, I): skip

CUDA (:class:`CudaKernels`, device arrays; workspace in kernels/gpu.py)::

    forward(layer, ws)
        ws.x : (T, B, I);  ws.seqs[s] : (T+1, B, H), slot 0 = s_0 in, slots 1..T out;  ws.saved[a] out
    backward(layer, ws, grads, dx=None, dh0=None)
        after forward (or with its arrays copied in) and ``ws.dh`` set: ``grads = (dW_ih, dW_hh, db_ih,
        db_hh)`` overwritten; ``ws.dhtot``, ``ws.dh_norm`` written; ``ws.dcarry[s]`` = ∂L/∂s_0 for the
        states besides h; ``dx : (T, B, I)``, ``dh0 : (B, H)`` written when given
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from kernels.errors import KernelInputError


@dataclass(frozen=True)
class CpuKernels:
    """How the CPU backend runs a cell; see the module docstring for the two signatures."""

    forward_rows: Callable
    backward_rows: Callable
    #: the compiled ``@njit`` dispatchers behind them (warm-up and cache statistics); () for NumPy cells
    dispatchers: tuple = ()
    #: ``state_jacobian(W_hh, options, prev, new, saved) -> (K, S·H, S·H)`` float64, ∂s_t/∂s_{t-1} of K steps
    #: of one sequence (``prev``, ``new``: state -> (K, H); ``saved``: array -> (K, width·H)), states stacked
    #: in the spec's order; the Jacobian-spectrum lens (kernels/spectrum.py) needs it; None: no spectrum
    state_jacobian: Callable | None = None


@dataclass(frozen=True)
class CudaKernels:
    """How the CUDA backend runs a cell; see kernels/gpu.py for the workspace."""

    forward: Callable
    backward: Callable
    #: ``[(name, python function, signature)]`` for ``numba.cuda.compile_ptx`` checks, by dtype
    kernels_for_ptx: Callable
    #: the key of :func:`kernels.gpu_common.get_kernels` for the cell's step kernels (its module path)
    kernel_set: str = ""
    #: the kernels take ``layer.b = b_ih + b_hh`` (summed on the device once per call); False: they read
    #: ``layer.b_ih`` and ``layer.b_hh`` themselves (the GRU, where they are not interchangeable)
    summed_bias: bool = True


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell: everything the kernels, the app and the session file need to know.

    Parameters follow PyTorch's layout: ``weight_ih (blocks·H, I)``, ``weight_hh (blocks·H, H)``,
    ``bias_ih``, ``bias_hh (blocks·H,)``, row blocks in the order of ``gates``.
    """

    name: str                               # "lstm": the key in configs, CLI and session files
    label: str                              # "LSTM": legends, titles, tables
    color: str                              # "#1f6fb4": this cell's colour in every plot and export
    blocks: int                             # row blocks of the weights (G = blocks·H)
    gates: tuple[str, ...] = ()             # gate names, PyTorch row order; () when no block is a gate (RNN)
    gate_labels: tuple[str, ...] = ()       # long names of ``gates`` ("input", "forget", ...)
    states: tuple[str, ...] = ("h",)        # carried state tensors, each (B, H); "h" (the output) first
    saved: tuple[tuple[str, int], ...] = (("gates", 0),)  # per-step arrays kept for BPTT: (name, width in H);
    #                                         width 0 means ``blocks`` (the gates); none when blocks is 0
    probes: tuple[str, ...] = ("h",)        # arrays a probe snapshot shows: states and saved names
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (option, allowed values), first = default
    tanh_gates: tuple[str, ...] = ()        # gates with values in [-1, 1] (candidates: LSTM g, GRU n); others in [0, 1]
    memory_gate: str | None = None          # the gate whose bias "remember longer" raises (LSTM f, GRU z)
    input_gate: str | None = None           # chrono's b_i = -b_f partner (LSTM i); None: left alone
    torch_module: str | None = None         # the torch.nn module with the same equations ("LSTM")
    equation: str = ""                      # one line for tooltips and docs
    cpu: Any = None                         # CpuKernels, or the module path holding ``CPU_KERNELS``
    cuda: Any = None                        # CudaKernels, or the module path holding ``CUDA_KERNELS``

    # -- derived -------------------------------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        """Number of named gates (0 for the RNN)."""
        return len(self.gates)

    def rows(self, hidden: int) -> int:
        """G = blocks·H, the rows of ``weight_ih`` / ``weight_hh``."""
        return self.blocks * hidden

    def param_shapes(self, n_in: int, hidden: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the recurrent layer's parameters (PyTorch layout)."""
        G = self.rows(hidden)
        return {"weight_ih": (G, n_in), "weight_hh": (G, hidden), "bias_ih": (G,), "bias_hh": (G,)}

    def saved_widths(self) -> dict[str, int]:
        """Saved per-step arrays and their widths in units of H."""
        return {name: (w or self.blocks) for name, w in self.saved}

    def bptt_width(self) -> int:
        """What BPTT keeps per step and sequence, in units of H: every state and every saved array."""
        return len(self.states) + sum(self.saved_widths().values())

    def workspace_floats(self, length: int, batch: int, hidden: int, n_in: int) -> int:
        """Numbers one training step of this cell holds (the CPU kernels' buffers): every state and saved
        array over the sequence, ∂L/∂h and ∂L/∂x, each ``(L, B, width)``; the weights are small beside them."""
        per_unit = self.bptt_width() + 1                                          # + ∂L/∂h
        return length * batch * (per_unit * hidden + n_in)                        # + ∂L/∂x

    def gate_index(self, name: str) -> int:
        """Row block of gate ``name``; a clear error when the cell has no such gate."""
        if name not in self.gates:
            have = ", ".join(self.gates) or "none"
            raise KernelInputError(f"the {self.name} cell has no gate {name!r} (its gates: {have})")
        return self.gates.index(name)

    def default_options(self) -> dict[str, str]:
        return {name: values[0] for name, values in self.options}

    def check_options(self, options: dict | None) -> dict[str, str]:
        """``options`` completed with the defaults; a clear error for an unknown option or value."""
        allowed = dict(self.options)
        out = self.default_options()
        for key, value in (options or {}).items():
            if key not in allowed:
                have = ", ".join(allowed) or "none"
                raise KernelInputError(f"the {self.name} cell has no option {key!r} (its options: {have})")
            if value is None:
                continue
            if value not in allowed[key]:
                raise KernelInputError(f"{self.name} {key} must be one of {', '.join(allowed[key])}, got {value!r}")
            out[key] = value
        return out

    def cpu_kernels(self) -> CpuKernels:
        """The CPU kernels (importing their module on first use)."""
        return _resolve(self, "cpu", "CPU_KERNELS")

    def cuda_kernels(self) -> CudaKernels:
        """The CUDA kernels; a clear error for a cell that has none."""
        return _resolve(self, "cuda", "CUDA_KERNELS")


def _resolve(spec: CellSpec, backend: str, attr: str):
    what = getattr(spec, backend)
    if what is None:
        raise KernelInputError(f"the {spec.name} cell has no {backend.upper()} kernels")
    if isinstance(what, str):
        return getattr(importlib.import_module(what), attr)
    return what


_REGISTRY: dict[str, CellSpec] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def register(spec: CellSpec, *, replace: bool = False) -> CellSpec:
    """Add ``spec`` to the registry (``replace=True`` to redefine a name); returns it.

    Raises
    ------
    KernelInputError
        A malformed spec (name, colour, gates, states) or a name already taken.
    """
    if not _NAME.match(spec.name):
        raise KernelInputError(f"cell name {spec.name!r} must be lower-case letters, digits and _")
    if spec.name in _REGISTRY and not replace:
        raise KernelInputError(f"a cell named {spec.name!r} is already registered (pass replace=True)")
    if not _COLOR.match(spec.color):
        raise KernelInputError(f"cell {spec.name!r}: colour {spec.color!r} must look like #1f6fb4")
    if spec.blocks < 1:
        raise KernelInputError(f"cell {spec.name!r}: blocks must be >= 1")
    if spec.gates and len(spec.gates) != spec.blocks:
        raise KernelInputError(f"cell {spec.name!r}: {len(spec.gates)} gate names for {spec.blocks} row blocks")
    if spec.gate_labels and len(spec.gate_labels) != len(spec.gates):
        raise KernelInputError(f"cell {spec.name!r}: gate_labels must match gates")
    if not spec.states or spec.states[0] != "h":
        raise KernelInputError(f"cell {spec.name!r}: states must start with 'h'")
    known = set(spec.states) | set(spec.saved_widths())
    for name in spec.probes:
        if name not in known:
            raise KernelInputError(f"cell {spec.name!r}: probe {name!r} is neither a state nor a saved array")
    for gate in (spec.memory_gate, spec.input_gate, *spec.tanh_gates):
        if gate is not None:
            spec.gate_index(gate)
    if spec.cpu is None:
        raise KernelInputError(f"cell {spec.name!r} needs CPU kernels")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a cell (tests that register their own cells clean up with this)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> CellSpec:
    """The spec of cell ``name``; :class:`KernelInputError` naming the choices otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KernelInputError(f"unknown cell {name!r}: choose one of {', '.join(_REGISTRY)}") from None


def names() -> tuple[str, ...]:
    """Registered cell names, in registration order (built-ins: rnn, lstm, gru)."""
    return tuple(_REGISTRY)


def specs() -> tuple[CellSpec, ...]:
    """Registered specs, in registration order."""
    return tuple(_REGISTRY.values())


@dataclass
class Layer:
    """The recurrent layer's arrays as the row kernels take them (built once per call, not per step).

    ``W_ihT, W_hhT`` are contiguous transposes (the layout the forward products run fastest on;
    None where only backward runs); ``b = b_ih + b_hh``. The recurrent products take W_hhᵀ (forward)
    and ``W_hh_bwd`` (backward: ∂L/∂h_{t-1} = ∂L/∂z_t W_hh) either as they are or packed once per step
    (kernels/packed.py), as kernels/tuning.py found faster on this machine.
    """

    W_ih: Any
    W_hh: Any
    b_ih: Any
    b_hh: Any
    b: Any = None
    W_ihT: Any = None
    W_hhT: Any = None
    W_hh_bwd: Any = None
    options: dict = field(default_factory=dict)


# -- a cell written in NumPy -----------------------------------------------------------------------
def numpy_cpu_kernels(forward_step: Callable, backward_step: Callable) -> CpuKernels:
    """CPU kernels for a cell given one time step in NumPy (slow: a Python loop over time).

    ``forward_step(layer, x_t, prev) -> (new, saved_t)``: ``x_t : (n, I)``, ``prev`` maps every state
    to ``(n, H)``; returns the new states and the arrays to keep for backward (``saved`` widths).

    ``backward_step(layer, x_t, prev, new, saved_t, dnew) -> (dprev, dW_ih, dW_hh, db_ih, db_hh, dx_t)``:
    ``dnew[s]`` is the total ∂L/∂s_t (the loss's share and what flows back from t+1); returns
    ∂L/∂s_{t-1} through this step and this step's parameter and input gradients.
    """

    def forward_rows(layer, x, fwd, b0, b1):
        for t in range(x.shape[0]):
            prev = {s: (fwd.initial[s] if t == 0 else fwd.states[s][t - 1])[b0:b1] for s in fwd.initial}
            new, saved = forward_step(layer, x[t, b0:b1], prev)
            for s, v in new.items():
                fwd.states[s][t, b0:b1] = v
            for a, v in saved.items():
                fwd.saved[a][t, b0:b1] = v

    def backward_rows(layer, x, fwd, dh, dinit, grads, norm_sum, dx, b0, b1):
        carry = {s: np.zeros_like(fwd.initial[s][b0:b1]) for s in fwd.initial}
        for t in range(x.shape[0] - 1, -1, -1):
            prev = {s: (fwd.initial[s] if t == 0 else fwd.states[s][t - 1])[b0:b1] for s in fwd.initial}
            new = {s: fwd.states[s][t, b0:b1] for s in fwd.initial}
            saved = {a: v[t, b0:b1] for a, v in fwd.saved.items()}
            dnew = dict(carry)
            dnew["h"] = carry["h"] + dh[t, b0:b1]
            norm_sum[t] = float(np.sqrt((dnew["h"].astype(np.float64) ** 2).sum(axis=1)).sum())
            carry, *parts, dx_t = backward_step(layer, x[t, b0:b1], prev, new, saved, dnew)
            for total, part in zip(grads, parts):
                total += part
            if dx.shape[0]:
                dx[t, b0:b1] = dx_t
        for s, v in carry.items():
            dinit[s][b0:b1] = v

    return CpuKernels(forward_rows=forward_rows, backward_rows=backward_rows)


# -- the built-in cells ----------------------------------------------------------------------------
register(CellSpec(
    name="rnn", label="RNN", color="#e8601c", blocks=1, saved=(), probes=("h",),
    options=(("activation", ("tanh", "relu")),),
    torch_module="RNN", equation="h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh | relu",
    cpu="kernels.cpu_rnn", cuda="kernels.gpu_rnn"))
register(CellSpec(
    name="lstm", label="LSTM", color="#1f6fb4", blocks=4, gates=("i", "f", "g", "o"),
    gate_labels=("input", "forget", "cell", "output"), states=("h", "c"), probes=("h", "c", "gates"),
    tanh_gates=("g",), memory_gate="f", input_gate="i", torch_module="LSTM",
    equation="c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t)",
    cpu="kernels.cpu_lstm", cuda="kernels.gpu_lstm"))
register(CellSpec(
    name="gru", label="GRU", color="#2ca02c", blocks=3, gates=("r", "z", "n"),
    gate_labels=("reset", "update", "new"), saved=(("gates", 0), ("hn", 1)), probes=("h", "gates"),
    tanh_gates=("n",), memory_gate="z", torch_module="GRU",
    equation="n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}",
    cpu="kernels.cpu_gru", cuda="kernels.gpu_gru"))
