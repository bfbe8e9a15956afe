"""Parameter layout (PyTorch's layout and names) and checks; the initialisations are in kernels/inits.py.

A model's parameters live in one flat buffer; the dict entries are views into
it, so clipping and the optimizer run as one loop over one array. Shapes come
from the cell registry (kernels/cells.py).
"""
import numpy as np

from kernels import cells
from kernels.errors import KernelInputError


def __getattr__(name):
    # ``CELLS``: the registered cell names, read when asked (a cell registered later shows up)
    if name == "CELLS":
        return cells.names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: recurrent-layer parameter names (torch.nn.LSTM / nn.RNN layer 0, without the "_l0" suffix)
LAYER_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
#: readout names (a torch.nn.Linear called "readout")
READOUT_KEYS = ("readout.weight", "readout.bias")
PARAM_KEYS = LAYER_KEYS + READOUT_KEYS


def gate_rows(cell: str) -> int:
    """Number of row blocks of the weights: 4 for the LSTM (i, f, g, o), 3 for the GRU (r, z, n), 1 for the RNN."""
    return cells.get(cell).blocks


def param_shapes(cell: str, n_in: int, hidden: int, n_out: int | None = None) -> dict[str, tuple[int, ...]]:
    """Shapes of every parameter; the readout is included when ``n_out`` is given."""
    shapes = cells.get(cell).param_shapes(n_in, hidden)
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
                dtype=np.float32, init="default", seq_len: int | None = None) -> dict[str, np.ndarray]:
    """Initial parameters (:data:`PARAM_KEYS`); ``init="default"`` is PyTorch's U(-1/√H, 1/√H) for
    every entry. Other initialisations and their grammar: :func:`kernels.inits.init_params`."""
    from kernels.inits import init_params as _init

    return _init(cell, n_in, hidden, n_out, rng, dtype, init=init, seq_len=seq_len)


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
    spec = cells.get(cell)
    need = {**{("states", s): (T, B, H) for s in spec.states}, **{("initial", s): (B, H) for s in spec.states},
            **{("saved", a): (T, B, w * H) for a, w in spec.saved_widths().items()}}
    for (where, name), shape in need.items():
        arrays = getattr(fwd, where)
        if name not in arrays or arrays[name] is None:
            raise KernelInputError(f"a {cell} backward pass needs fwd.{where}[{name!r}] (from its forward pass)")
        a = np.asarray(arrays[name])
        if a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
            raise KernelInputError(f"fwd.{where}[{name!r}] must be a C-contiguous {dtype} array of shape {shape}, "
                                   f"got {a.dtype} {a.shape}")
    return x, dh, n_in, H, dtype


def initial_state(s, B: int, H: int, dtype, name: str) -> np.ndarray:
    """An initial state ``(B, H)``: zeros when ``s`` is None, else ``s`` checked and converted."""
    if s is None:
        return np.zeros((B, H), dtype=dtype)
    s = np.ascontiguousarray(s, dtype=dtype)
    if s.shape != (B, H):
        raise KernelInputError(f"{name} must have shape (B, H) = {(B, H)}, got {s.shape}")
    return s


def initial_states(cell: str, B: int, H: int, dtype, h0=None, c0=None, state0: dict | None = None) -> dict:
    """Every initial state of ``cell`` as a ``(B, H)`` array: ``h0``, ``c0`` or ``state0[name]``, zeros
    when not given; a clear error for a state the cell does not have (e.g. ``c0`` for the GRU)."""
    spec = cells.get(cell)
    given = dict(state0 or {})
    for name, value in (("h", h0), ("c", c0)):
        if value is not None:
            given[name] = value
    extra = [name for name, value in given.items() if value is not None and name not in spec.states]
    if extra:
        raise KernelInputError(f"the {cell} cell has no state {extra[0]!r} (its states: {', '.join(spec.states)}); "
                               f"drop {extra[0]}0")
    return {s: initial_state(given.get(s), B, H, dtype, f"{s}0") for s in spec.states}
