"""What the backends return; shared by the CPU and CUDA backends."""
from dataclasses import dataclass

import numpy as np


@dataclass
class Forward:
    """Result of ``backend.forward``: the hidden sequence and what backward needs.

    ``h`` is what ``torch.nn.LSTM`` / ``nn.RNN`` return as their output.
    """

    cell: str                      # "rnn" | "lstm"
    h: np.ndarray                  # (T, B, H) hidden states h_1..h_T
    c: np.ndarray | None           # (T, B, H) LSTM cell states (None for the RNN)
    gates: np.ndarray | None       # (T, B, 4H) LSTM gates after their non-linearity, order i, f, g, o
    h0: np.ndarray                 # (B, H) initial hidden state used
    c0: np.ndarray | None          # (B, H) initial cell state used (LSTM)

    def gate(self, name: str) -> np.ndarray:
        """One LSTM gate ``(T, B, H)`` by name: "i", "f", "g" or "o"."""
        k = "ifgo".index(name)
        H = self.h.shape[2]
        return self.gates[:, :, k * H:(k + 1) * H]


class Gradients(dict):
    """∂L/∂(parameter) by parameter name, plus ``"x"``; diagnostics as attributes.

    Attributes
    ----------
    dh_norm : (T,)  batch mean of ‖∂L/∂h_t‖, the total gradient reaching h_t through time
    h0 : (B, H)  ∂L/∂h_0
    c0 : (B, H) or None  ∂L/∂c_0 (LSTM)
    """

    def __init__(self, grads: dict, dh_norm: np.ndarray, h0: np.ndarray, c0: np.ndarray | None):
        super().__init__(grads)
        self.dh_norm = dh_norm
        self.h0 = h0
        self.c0 = c0


@dataclass
class StepStats:
    """What one training step reports (copied to the host at every step: scalars and small arrays)."""

    loss: float
    out: np.ndarray                # readout outputs (B, K) or (window, B, K), for the task metric
    grad_norm: float               # global gradient norm before clipping
    param_grad_norms: dict         # parameter name -> gradient L2 norm before clipping
    dh_norm: np.ndarray            # (T,) batch mean ‖∂L/∂h_t‖ from this step's backward pass
