"""Initialisations of the recurrent layer: PyTorch's default and those of the long-lag literature.

Grammar of an initialisation string (``--init``)::

    spec   := item ("," item)*             one item without "cell=", any number with
    item   := [cell "="] combo             "lstm=chrono": only that cell (overrides the plain item)
    combo  := init ("+" init)*             at most one weight init and one bias init
    init   := name [":" number]

    weight inits (they set weight_hh, and the biases unless a bias init follows)
      default          PyTorch: every parameter U(-1/√H, 1/√H)
      orthogonal[:g]   each gate block of W_hh orthogonal (times g, default 1); W_ih default; biases 0
      identity[:s]     each gate block of W_hh = s·I (s default 1); W_ih default; biases 0 (IRNN with relu)
    bias inits (on top of the weight init; only the memory gate's rows -- and chrono's input gate -- change)
      forget-bias[:b]  LSTM forget gate b_f = b (default 1; Gers et al. 2000, Jozefowicz et al. 2015);
                       GRU update gate b_z = +b (in nn.GRU z keeps h: h' = (1-z)⊙n + z⊙h)
      chrono[:T_max]   Tallec & Ollivier 2018: LSTM b_f ~ log U[1, T_max-1], b_i = -b_f;
                       GRU b_z ~ +log U[1, T_max-1]; T_max default: the task's T (``seq_len``)

Examples: ``default``, ``orthogonal+forget-bias:1``, ``identity:1`` (with ``activation="relu"``:
the IRNN of Le et al. 2015), ``chrono:750``, ``lstm=chrono,rnn=identity``.

A plain item applies to every cell; its bias init is skipped for a cell without a
memory gate (the RNN keeps the weight init), while naming one explicitly
(``rnn=forget-bias``) is an error. The effective bias of a PyTorch recurrent
layer is ``bias_ih + bias_hh``: a bias init writes its value once, into
``bias_ih``, and zeroes those rows of ``bias_hh`` (public chrono code writes
both and doubles it).

Random streams: every initialisation first draws PyTorch's default for every
parameter, in the order of :func:`kernels.params.param_shapes` (so ``default``
is bit-for-bit the old behaviour, and the readout and W_ih are the same under
every initialisation), then draws what it replaces.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from kernels import cells
from kernels.errors import KernelInputError

WEIGHT_INITS = ("default", "orthogonal", "identity")
BIAS_INITS = ("forget-bias", "chrono")
#: init name -> (default number, what the number means); None: takes no number
NUMBERS = {"default": None, "orthogonal": (1.0, "gain"), "identity": (1.0, "scale s"),
           "forget-bias": (1.0, "bias b"), "chrono": (None, "T_max")}
GRAMMAR = ("default | orthogonal[:gain] | identity[:s], optionally +forget-bias[:b] or +chrono[:T_max]; "
           "per cell: lstm=chrono,rnn=identity")


@dataclass(frozen=True)
class Init:
    """One cell's initialisation: a weight init and an optional bias init, with their numbers."""

    weights: str = "default"           # default | orthogonal | identity
    scale: float | None = None         # orthogonal gain / identity s (None: 1)
    bias: str | None = None            # forget-bias | chrono | None
    value: float | None = None         # forget-bias b (None: 1) / chrono T_max (None: seq_len)

    def text(self) -> str:
        """Canonical string (parses back to the same :class:`Init`)."""
        parts = [self.weights + ("" if self.scale is None else f":{_num(self.scale)}")]
        if self.bias:
            parts.append(self.bias + ("" if self.value is None else f":{_num(self.value)}"))
        return "+".join(parts)

    def resolved(self, seq_len: int | None = None) -> "Init":
        """Every default filled in (chrono's T_max from ``seq_len``): what a session file records."""
        scale = None if self.weights == "default" else (1.0 if self.scale is None else self.scale)
        value = self.value
        if self.bias == "forget-bias" and value is None:
            value = 1.0
        if self.bias == "chrono" and value is None:
            value = _chrono_tmax(None, seq_len)
        return Init(self.weights, scale, self.bias, value)


@dataclass(frozen=True)
class InitSpec:
    """A parsed initialisation string: one :class:`Init` for every cell, and per-cell overrides."""

    base: Init = Init()
    per_cell: tuple[tuple[str, Init], ...] = ()

    def for_cell(self, cell: str) -> Init:
        """The initialisation ``cell`` gets (a plain bias init is dropped where it does not apply)."""
        own = dict(self.per_cell)
        if cell in own:
            return own[cell]
        spec = cells.get(cell)
        if self.base.bias is not None and spec.memory_gate is None:
            return Init(self.base.weights, self.base.scale)
        return self.base

    def text(self) -> str:
        """Canonical string (parses back to an equal spec)."""
        items = [] if (self.base == Init() and self.per_cell) else [self.base.text()]
        return ",".join(items + [f"{c}={i.text()}" for c, i in self.per_cell])

    def __str__(self) -> str:
        return self.text()


def _num(v: float) -> str:
    return repr(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


_TOKEN = re.compile(r"^([a-z][a-z-]*)(?::(.*))?$")


def _parse_combo(text: str, where: str) -> Init:
    weights, scale, bias, value = None, None, None, None
    for part in text.split("+"):
        part = part.strip()
        m = _TOKEN.match(part)
        if not m:
            raise KernelInputError(f"bad initialisation {part!r} in {where!r}: expected {GRAMMAR}")
        name, arg = m.group(1), m.group(2)
        if name not in NUMBERS:
            raise KernelInputError(f"unknown initialisation {name!r} in {where!r}: choose from "
                                   f"{', '.join(WEIGHT_INITS + BIAS_INITS)}")
        number = None
        if arg is not None:
            if NUMBERS[name] is None:
                raise KernelInputError(f"{name!r} takes no number (got {part!r} in {where!r})")
            try:
                number = float(arg)
            except ValueError:
                raise KernelInputError(f"bad number {arg!r} for {name} in {where!r}: write e.g. "
                                       f"{name}:{'100' if name == 'chrono' else '1.0'}") from None
            if not math.isfinite(number):
                raise KernelInputError(f"{name}'s {NUMBERS[name][1]} must be finite, got {arg!r}")
            if name == "chrono" and number < 2:
                raise KernelInputError(f"chrono's T_max must be at least 2 (b ~ log U[1, T_max-1]), got {arg!r}")
        if name in WEIGHT_INITS:
            if weights is not None:
                raise KernelInputError(f"two weight initialisations ({weights}, {name}) in {where!r}: "
                                       f"combine one weight init with one bias init, e.g. orthogonal+forget-bias:1")
            weights, scale = name, number
        else:
            if bias is not None:
                raise KernelInputError(f"two bias initialisations ({bias}, {name}) in {where!r}: choose one")
            bias, value = name, number
    return Init(weights or "default", scale, bias, value)


def parse_init(text) -> InitSpec:
    """Parse an initialisation string (grammar in the module docstring) into an :class:`InitSpec`.

    Accepts an :class:`InitSpec` or :class:`Init` as they are. Raises :class:`KernelInputError`
    with what is wrong and the grammar for an unknown name, a bad number, an unknown cell, a
    repeated cell or a bias init that the named cell has no gate for.
    """
    if isinstance(text, InitSpec):
        return text
    if isinstance(text, Init):
        return InitSpec(text)
    if not isinstance(text, str) or not text.strip():
        raise KernelInputError(f"an initialisation must be a non-empty string ({GRAMMAR}), got {text!r}")
    base, per_cell = None, {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise KernelInputError(f"empty item in initialisation {text!r}: {GRAMMAR}")
        if "=" in item:
            cell, _, combo = item.partition("=")
            cell = cell.strip()
            spec = cells.get(cell)
            if cell in per_cell:
                raise KernelInputError(f"cell {cell!r} is given twice in initialisation {text!r}")
            init = _parse_combo(combo, text)
            _check_applies(spec, init)
            per_cell[cell] = init
        else:
            if base is not None:
                raise KernelInputError(f"initialisation {text!r} has two items for every cell ({base.text()}, "
                                       f"{item}): join them with + or name a cell (lstm=chrono)")
            base = _parse_combo(item, text)
    return InitSpec(base or Init(), tuple(per_cell.items()))


def parse_init_list(text: str) -> list[InitSpec]:
    """A list of initialisations (a sweep axis): separated by ";" when the text has one, else by ",".

    ``"default,chrono,orthogonal+forget-bias:1"`` is three; ``"default;lstm=chrono,rnn=identity"`` two.
    """
    if not isinstance(text, str) or not text.strip():
        raise KernelInputError(f"a list of initialisations must be a non-empty string, got {text!r}")
    sep = ";" if ";" in text else ","
    return [parse_init(item) for item in text.split(sep)]


def _check_applies(spec, init: Init) -> None:
    if init.bias is not None and spec.memory_gate is None:
        raise KernelInputError(f"{init.bias} does not apply to the {spec.name} cell: it has no gate that keeps "
                               f"its state (forget-bias and chrono are for the LSTM and the GRU)")


def _chrono_tmax(value, seq_len) -> float:
    if value is not None:
        return float(value)
    if seq_len is None:
        raise KernelInputError("chrono needs T_max: write chrono:T_max (e.g. chrono:100) or pass the task's "
                               "sequence length (seq_len)")
    if seq_len < 2:
        raise KernelInputError(f"chrono's T_max (the task's T) must be at least 2, got {seq_len}")
    return float(seq_len)


def describe(init, cell: str | None = None, seq_len: int | None = None) -> str:
    """Readable text for a run card or ``info``: the canonical string, or with ``cell`` what that cell
    gets, defaults filled in (e.g. ``"orthogonal:1+forget-bias:1"``, ``"chrono:100"``)."""
    spec = parse_init(init)
    if cell is None:
        return spec.text()
    return spec.for_cell(cell).resolved(seq_len).text()


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """An n x n orthogonal matrix (torch.nn.init.orthogonal_: QR of a Gaussian, signs from diag R)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))


def init_params(cell: str, n_in: int, hidden: int, n_out: int, rng: np.random.Generator,
                dtype=np.float32, init="default", seq_len: int | None = None) -> dict[str, np.ndarray]:
    """Initial parameters of ``cell`` (recurrent layer + readout), PyTorch layout.

    Parameters
    ----------
    cell : a registered cell;  n_in, hidden, n_out : sizes;  rng : the random stream
    dtype : float32 | float64
    init : an initialisation string (module docstring) or :class:`InitSpec`; or an :class:`Init`, taken
        as this cell's own (an error where its bias init does not apply)
    seq_len : the task's T, chrono's default T_max

    Returns a dict with :data:`kernels.params.PARAM_KEYS`.
    """
    from kernels.params import param_shapes

    spec = cells.get(cell)
    # an Init is this cell's own choice (checked); a string or InitSpec is resolved for the cell
    choice = init if isinstance(init, Init) else parse_init(init).for_cell(cell)
    _check_applies(spec, choice)
    bound = 1.0 / np.sqrt(hidden)
    p = {name: rng.uniform(-bound, bound, size=shape) for name, shape in param_shapes(cell, n_in, hidden, n_out).items()}
    H = hidden
    if choice.weights != "default":
        s = 1.0 if choice.scale is None else choice.scale
        W_hh = p["weight_hh"]
        for k in range(spec.blocks):
            block = _orthogonal(rng, H) if choice.weights == "orthogonal" else np.eye(H)
            W_hh[k * H:(k + 1) * H] = s * block
        p["bias_ih"][:] = 0.0
        p["bias_hh"][:] = 0.0
    if choice.bias is not None:
        keep = slice(spec.gate_index(spec.memory_gate) * H, (spec.gate_index(spec.memory_gate) + 1) * H)
        if choice.bias == "forget-bias":
            b_keep = np.full(H, 1.0 if choice.value is None else choice.value)
        else:
            t_max = _chrono_tmax(choice.value, seq_len)
            b_keep = np.log(rng.uniform(1.0, t_max - 1.0, size=H)) if t_max > 2 else np.zeros(H)
        # the effective bias is bias_ih + bias_hh: write the value once
        p["bias_ih"][keep], p["bias_hh"][keep] = b_keep, 0.0
        if choice.bias == "chrono" and spec.input_gate is not None:
            inp = slice(spec.gate_index(spec.input_gate) * H, (spec.gate_index(spec.input_gate) + 1) * H)
            p["bias_ih"][inp], p["bias_hh"][inp] = -b_keep, 0.0
    return {name: v.astype(dtype) for name, v in p.items()}
