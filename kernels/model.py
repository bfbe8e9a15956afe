"""What the CPU and CUDA models share: the constructor's checks and the packed parameters."""
from __future__ import annotations

import numpy as np

from kernels import cells, spectrum
from kernels.errors import KernelInputError
from kernels.optim import adaptive_coefficients, parse_optimizer
from kernels.params import PARAM_KEYS, check_params, flat_views, init_params, param_shapes
from kernels.readout import LOSS_KINDS


class ModelBase:
    """Checks the settings of a recurrent layer + linear readout + optimizer and packs ``params``
    into one flat buffer, placed by the backend's :meth:`_place` (``self._flat``).

    Parameters
    ----------
    cell : a registered cell name (kernels/cells.py: "rnn", "lstm", "gru", ...)
    params : dict with :data:`kernels.params.PARAM_KEYS` (PyTorch layout), copied in
    loss_kind : one of :data:`kernels.readout.LOSS_KINDS`
    window : final steps read out (1 for the ``*_last`` losses)
    optimizer : "adam" | "sgd" | "rmsprop[:alpha]" (kernels/optim.py);  lr, momentum, clip (0 disables),
        betas, eps as in PyTorch
    **cell_options : the cell's options (its spec's ``options``), e.g. ``activation="relu"`` for the RNN
    """

    def __init__(self, cell: str, params: dict, *, loss_kind: str, window: int = 1, optimizer: str = "adam",
                 lr: float = 1e-3, momentum: float = 0.9, clip: float = 1.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, **cell_options):
        self.spec = cells.get(cell)
        self.options = self.spec.check_options(cell_options)
        if loss_kind not in LOSS_KINDS:
            raise KernelInputError(f"unknown loss kind {loss_kind!r}: choose one of {', '.join(LOSS_KINDS)}")
        n_in, H, dtype = check_params(cell, params)
        missing = [k for k in PARAM_KEYS if k not in params]
        if missing:
            raise KernelInputError(f"model parameters lack {', '.join(missing)}")
        n_out = np.shape(params["readout.weight"])[0]
        self.cell, self.n_in, self.hidden, self.n_out, self.dtype = cell, n_in, H, n_out, np.dtype(dtype)
        self.loss_kind, self.window = loss_kind, int(window)
        self.optimizer, self.alpha = parse_optimizer(optimizer)
        self.lr, self.momentum, self.clip = lr, momentum, clip
        self.betas, self.eps = betas, eps
        self.shapes = param_shapes(cell, n_in, H, n_out)
        flat = np.empty(sum(int(np.prod(s)) for s in self.shapes.values()), dtype)
        for name, view in flat_views(self.shapes, flat).items():
            value = np.asarray(params[name])
            if value.shape != view.shape:
                raise KernelInputError(f"{name} has shape {value.shape}, expected {view.shape}")
            view[:] = value
        self._flat = self._place(flat)

    def adaptive_coefficients(self) -> tuple[float, float, float, float]:
        """Adam's or RMSprop's coefficients for the current update (see kernels.optim.adaptive_coefficients)."""
        return adaptive_coefficients(self.optimizer, self.lr, self.betas, self.alpha, self._updates)

    def _place(self, flat: np.ndarray):
        """Where the parameters live: the host array itself, or a device copy."""
        return flat

    @staticmethod
    def _fetch(a) -> np.ndarray:
        """A host copy of one of the model's flat buffers."""
        return np.array(a)

    @staticmethod
    def _load(dst, src: np.ndarray) -> None:
        """Overwrite the flat buffer ``dst`` with ``src``."""
        dst[:] = src

    #: the arrays of :meth:`training_state`, each ``(param_count,)`` in the model's dtype, and ``updates``
    STATE_ARRAYS = ("flat", "m", "v")

    def training_state(self) -> dict[str, np.ndarray]:
        """What resuming needs besides the batches: host copies of the flat parameters, the optimizer's
        two buffers (Adam's m and v, RMSprop's in v; SGD's momentum in m) and its update count
        (``updates``, int64)."""
        return {"flat": self._fetch(self._flat), "m": self._fetch(self._state[0]), "v": self._fetch(self._state[1]),
                "updates": np.int64(self._updates)}

    def load_training_state(self, state: dict) -> None:
        """Continue from :meth:`training_state`'s result (a checkpoint): the same parameters, optimizer
        buffers and update count, so the next step is the one the checkpointed model would have taken."""
        for key, dst in zip(self.STATE_ARRAYS, (self._flat, self._state[0], self._state[1])):
            src = np.asarray(state[key], dtype=self.dtype).ravel()
            if src.shape != (self.param_count,):
                raise KernelInputError(f"checkpoint {key} has {src.size} values, the model has {self.param_count}")
            self._load(dst, src)
        self._updates = int(state["updates"])

    @property
    def param_count(self) -> int:
        return int(self._flat.size)


def train_tiny_models(make_model, cell_names, dtype, optimizer: str, progress=None, hidden=(3,)) -> None:
    """One tiny training step and probe per cell of ``make_model(cell, params, **settings)``'s models, for each
    hidden size of ``hidden`` (sizes that take different kernels: the CPU's packed weights need H a multiple
    of 16): every kernel a training run needs (the probe's spectrum too) gets compiled (or loaded).
    ``progress(done, total, what)``."""
    rng = np.random.default_rng(0)
    for done, cell in enumerate(cell_names):
        if progress:
            progress(done, len(cell_names), f"{cell} kernels")
        for H in hidden:
            model = make_model(cell, init_params(cell, 2, H, 1, rng, dtype), loss_kind="mse_last",
                               optimizer=optimizer)
            model.step(np.zeros((2, 1, 2), dtype), np.zeros(1, dtype))
            fwd = model.probe(np.zeros((2, 1, 2), dtype))
            if spectrum.has_spectrum(cell):      # a probe's Jacobian spectrum (float64 whatever the model's dtype)
                spectrum.product_spectrum(cell, model.state()["weight_hh"], fwd, model.options)
    if progress:
        progress(len(cell_names), len(cell_names), "done")
