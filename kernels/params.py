"""Parameter layout and initialisation (PyTorch's layout, names and default init).

A model's parameters live in one flat buffer; the dict entries are views into
it, so clipping and the optimizer run as one loop over one array.
"""
import numpy as np

from kernels.errors import KernelInputError

CELLS = ("rnn", "lstm")
#: recurrent-layer parameter names (torch.nn.LSTM / nn.RNN layer 0, without the "_l0" suffix)
LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
#: readout names (a torch.nn.Linear called "readout")
READOUT_KEYS = ("readout.weight", "readout.bias")
PARAM_KEYS = LAYER_KEYS + READOUT_KEYS


def gate_rows(cell: str) -> int:
    """Number of gate blocks: 4 for the LSTM (i, f, g, o), 1 for the RNN."""
    if cell not in CELLS:
        raise KernelInputError(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}")
    return 4 if cell == "lstm" else 1


def param_shapes(cell: str, n_in: int, hidden: int, n_out: int | None = None) -> dict[str, tuple[int, ...]]:
    """Shapes of every parameter; the readout is included when ``n_out`` is given."""
    G = gate_rows(cell) * hidden
    shapes = {"weight_ih": (G, n_in), "weight_hh": (G, hidden), "bias_ih": (G,), "bias_hh": (G,)}
    if n_out is not None:
        shapes["readout.weight"] = (n_out, hidden)
        shapes["readout.bias"] = (n_out,)
    return shapes


def flat_views(shapes: dict[str, tuple[int, ...]], flat: np.ndarray) -> dict[str, np.ndarray]:
    """Views into ``flat`` (1-D, contiguous) laid out in the order of ``shapes``."""
    views, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        views[name] = flat[offset:offset + size].reshape(shape)
        offset += size
    if offset != flat.size:
        raise KernelInputError(f"flat buffer holds {flat.size} values, the layout needs {offset}")
    return views


def init_params(cell: str, n_in: int, hidden: int, n_out: int, rng: np.random.Generator,
                dtype=np.float32) -> dict[str, np.ndarray]:
    """PyTorch's default initialisation: every entry U(-1/√H, 1/√H) (readout: U(-1/√H, 1/√H) too).

    Returns a dict with :data:`PARAM_KEYS`, shapes from :func:`param_shapes`.
    """
    bound = 1.0 / np.sqrt(hidden)
    return {name: rng.uniform(-bound, bound, size=shape).astype(dtype)
            for name, shape in param_shapes(cell, n_in, hidden, n_out).items()}


def check_params(cell: str, params: dict, dtype=None) -> tuple[int, int, np.dtype]:
    """Validate a recurrent parameter dict; return ``(n_in, hidden, dtype)``."""
    gate_rows(cell)
    missing = [k for k in LAYER_KEYS if k not in params]
    if missing:
        raise KernelInputError(f"{cell} parameters lack {', '.join(missing)} (need {', '.join(LAYER_KEYS)})")
    W_ih = np.asarray(params["weight_ih"])
    W_hh = np.asarray(params["weight_hh"])
    if W_hh.ndim != 2 or W_ih.ndim != 2:
        raise KernelInputError("weight_ih and weight_hh must be 2-D")
    hidden = W_ih.shape[0] // gate_rows(cell)
    expected = param_shapes(cell, W_ih.shape[1], hidden)
    for name in LAYER_KEYS:
        shape = np.shape(params[name])
        if shape != expected[name]:
            raise KernelInputError(f"{cell} {name} has shape {shape}, expected {expected[name]} "
                                   f"(PyTorch layout, hidden={hidden})")
    dtype = np.dtype(dtype or W_ih.dtype)
    if dtype not in (np.float32, np.float64):
        raise KernelInputError(f"parameters must be float32 or float64, got {dtype}")
    return W_ih.shape[1], hidden, dtype


def check_input(x, dtype, n_in: int) -> np.ndarray:
    """``x`` as a C-contiguous ``(T, B, n_in)`` array of ``dtype``; a clear error otherwise."""
    x = np.ascontiguousarray(x, dtype=dtype)
    if x.ndim != 3 or x.shape[2] != n_in or x.shape[0] < 1 or x.shape[1] < 1:
        raise KernelInputError(f"x must have shape (T, B, {n_in}) with T, B >= 1, got {x.shape}")
    return x


def check_backward_input(cell: str, params: dict, x, fwd, dh):
    """The checks of every backend's ``backward(cell, params, x, fwd, dh)``.

    Returns ``(x, dh, n_in, H, dtype)``: ``x : (T, B, I)`` and ``dh : (T, B, H)`` as C-contiguous
    arrays of the parameters' dtype; a clear error when ``fwd`` or a shape does not fit.
    """
    n_in, H, dtype = check_params(cell, params)
    if fwd.cell != cell:
        raise KernelInputError(f"fwd comes from a {fwd.cell} forward pass, not {cell}")
    x = check_input(x, dtype, n_in)
    T, B, _ = x.shape
    dh = np.ascontiguousarray(dh, dtype=dtype)
    if dh.shape != (T, B, H) or np.shape(fwd.h) != (T, B, H):
        raise KernelInputError(f"dh and fwd.h must have shape (T, B, H) = {(T, B, H)}, "
                               f"got {dh.shape} and {np.shape(fwd.h)}")
    return x, dh, n_in, H, dtype


def initial_state(s, B: int, H: int, dtype, name: str) -> np.ndarray:
    """An initial state ``(B, H)``: zeros when ``s`` is None, else ``s`` checked and converted."""
    if s is None:
        return np.zeros((B, H), dtype=dtype)
    s = np.ascontiguousarray(s, dtype=dtype)
    if s.shape != (B, H):
        raise KernelInputError(f"{name} must have shape (B, H) = {(B, H)}, got {s.shape}")
    return s
