"""What the backends return; shared by the CPU and CUDA backends, generic over the cells (kernels/cells.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Forward:
    """Result of ``backend.forward`` / ``model.probe``: the state sequences and what backward needs.

    ``h`` is what ``torch.nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` return as their output.
    """

    cell: str                      # a registered cell name ("rnn", "lstm", "gru", ...)
    states: dict                   # state name -> (T, B, H): "h" (h_1..h_T), and "c" for the LSTM
    initial: dict                  # state name -> (B, H): the initial states used (h_0, c_0)
    saved: dict = field(default_factory=dict)    # per-step arrays kept for BPTT: "gates" (T, B, G), ...
    options: dict = field(default_factory=dict)  # the cell options of this run (e.g. activation)

    @property
    def spec(self):
        from kernels.cells import get

        return get(self.cell)

    @property
    def h(self) -> np.ndarray:
        """(T, B, H) hidden states h_1..h_T."""
        return self.states["h"]

    @property
    def h0(self) -> np.ndarray:
        return self.initial["h"]

    @property
    def c(self) -> np.ndarray | None:
        """(T, B, H) cell states (None for a cell without one)."""
        return self.states.get("c")

    @property
    def c0(self) -> np.ndarray | None:
        return self.initial.get("c")

    @property
    def gates(self) -> np.ndarray | None:
        """(T, B, G) gates after their non-linearity, in the cell's gate order (None without gates)."""
        return self.saved.get("gates") if self.spec.gates else None

    def state(self, name: str) -> np.ndarray:
        """State sequence ``name`` (T, B, H), e.g. "h" or "c"."""
        return self.states[name]

    def gate(self, name: str) -> np.ndarray:
        """One gate ``(T, B, H)`` by name (LSTM "i", "f", "g", "o"; GRU "r", "z", "n")."""
        k = self.spec.gate_index(name)
        H = self.h.shape[2]
        return self.saved["gates"][:, :, k * H:(k + 1) * H]

    def gate_blocks(self) -> np.ndarray | None:
        """Every gate as ``(n_gates, T, B, H)`` (a view), in the spec's gate order; None without gates."""
        g = self.gates
        if g is None:
            return None
        T, B, H = self.h.shape
        return g.reshape(T, B, -1, H).transpose(2, 0, 1, 3)


class Gradients(dict):
    """∂L/∂(parameter) by parameter name, plus ``"x"``; diagnostics as attributes.

    Attributes
    ----------
    dh_norm : (T,)  batch mean of ‖∂L/∂h_t‖, the total gradient reaching h_t through time
    initial : dict  state name -> (B, H) ∂L/∂s_0
    h0 : (B, H)  ∂L/∂h_0
    c0 : (B, H) or None  ∂L/∂c_0 (cells with a cell state)
    """

    def __init__(self, grads: dict, dh_norm: np.ndarray, initial: dict):
        super().__init__(grads)
        self.dh_norm = dh_norm
        self.initial = initial

    @property
    def h0(self) -> np.ndarray:
        return self.initial["h"]

    @property
    def c0(self) -> np.ndarray | None:
        return self.initial.get("c")


@dataclass
class StepStats:
    """What one training step reports (copied to the host at every step: scalars and small arrays)."""

    loss: float
    out: np.ndarray                # readout outputs (B, K) or (window, B, K), for the task metric
    grad_norm: float               # global gradient norm before clipping
    param_grad_norms: dict         # parameter name -> gradient L2 norm before clipping
    dh_norm: np.ndarray            # (T,) batch mean ‖∂L/∂h_t‖ from this step's backward pass
