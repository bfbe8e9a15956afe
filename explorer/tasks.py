"""Synthetic long-dependency tasks: the adding problem, the copy task, temporal order.

Each task is built around a lag ``T`` the user sets, draws its batches from a
``numpy.random.Generator`` (same seed, same batches), is fully vectorized, and
carries its loss, metric, chance baseline and "solved" rule:

- **adding** — Hochreiter & Schmidhuber (1997), "Long Short-Term Memory",
  Neural Computation 9(8), experiment 4; in the form of Le, Jaitly & Hinton
  (2015), "A Simple Way to Initialize Recurrent Networks of Rectified Linear
  Units", and Arjovsky, Shah & Bengio (2016), "Unitary Evolution Recurrent
  Neural Networks": one marked value in each half, target their sum.
- **copy** — Arjovsky, Shah & Bengio (2016): 10 symbols from 8 categories,
  ``T`` steps of waiting, then reproduce the 10 symbols.
- **temporal** — Hochreiter & Schmidhuber (1997), experiment 6a: classify the
  order of two X/Y symbols hidden among distractors.
- **adding-hs97**, **temporal-hs97** — the same two experiments exactly as the paper
  defines them: variable lengths in ``[T, T + T/10]``, the paper's per-sequence
  "correct" rule and its stop rule (average training error below a bound and the
  2,000 most recent training sequences all correct; :class:`explorer.stop_rules.PaperStopRule`).

Every task also has a stop rule (:meth:`Task.stop_rule`) for ``--until-solved``
and a held-out test set (:meth:`Task.test_batches`) covering all its lengths.

Inputs are time-major one-hot or real vectors ``x : (L, B, n_in) float32``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from explorer.errors import ConfigError
from explorer.stop_rules import STOP_WINDOW, MetricStopRule, PaperStopRule, StopRule

TASKS = ("adding", "copy", "temporal", "adding-hs97", "temporal-hs97")


@dataclass(frozen=True)
class Batch:
    """One batch of sequences.

    Attributes
    ----------
    x : (L, B, n_in) float32
        Inputs, time-major.
    y : ndarray
        Targets: adding ``(B,) float32``; temporal ``(B,) int64`` class 0..3;
        copy ``(L, B) int64`` class per step (0 blank, 1..8 symbols).
    """

    x: np.ndarray
    y: np.ndarray


def _one_hot(idx: np.ndarray, n: int) -> np.ndarray:
    """``idx : (L, B) int`` -> ``(L, B, n) float32`` one-hot."""
    return np.eye(n, dtype=np.float32)[idx]


@dataclass(frozen=True)
class Task(ABC):
    """A long-dependency task at lag ``seq_len``; use :func:`make_task` to build one.

    Class attributes (per subclass): ``name``, ``label`` and ``metric_label``
    (for :meth:`describe`), ``min_seq_len``, ``n_in``, ``n_out``, ``loss_kind``
    (``"mse_last"`` | ``"ce_last"`` | ``"ce_window"``), ``metric_name``
    (``"mse"`` | ``"accuracy"``), ``higher_is_better``, ``baseline_metric`` and
    ``solved_threshold`` (the metric value that counts as solved).
    """

    seq_len: int                      # the lag T

    name: ClassVar[str]
    label: ClassVar[str]
    metric_label: ClassVar[str]
    min_seq_len: ClassVar[int]
    n_in: ClassVar[int]
    n_out: ClassVar[int]
    loss_kind: ClassVar[str]
    metric_name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    solved_threshold: ClassVar[float]
    baseline_metric: ClassVar[float]

    @property
    def length(self) -> int:
        """L, the number of time steps fed to the network."""
        return self.seq_len

    @property
    def window(self) -> int:
        """Steps at the end of the sequence that are read out."""
        return 1

    @property
    @abstractmethod
    def baseline_loss(self) -> float:
        """Loss of the chance strategy."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        """Draw ``batch`` sequences from ``rng``; the same generator state gives the same batch."""

    @abstractmethod
    def metric(self, out: np.ndarray, y: np.ndarray) -> float:
        """Task metric of readout outputs ``out`` against targets ``y``."""

    def solved(self, loss: float, metric: float) -> bool:
        """Whether ``metric`` reaches ``solved_threshold`` (``loss`` is not used; NaN is never solved)."""
        if self.higher_is_better:
            return bool(metric >= self.solved_threshold)
        return bool(metric < self.solved_threshold)

    def describe(self) -> str:
        """One line for humans: task, lag, metric, chance level and the solved rule."""
        lag = f"T={self.seq_len}" if self.length == self.seq_len else f"T={self.seq_len} (L={self.length})"
        rule = (f"at {self.solved_threshold:g} or above" if self.higher_is_better
                else f"below {self.solved_threshold:g}")
        return f"{self.label}, {lag}: {self.metric_label}, chance {self.baseline_metric:.3g}, solved {rule}"

    # -- lengths, stop rule, test set, per-sequence rule ------------------------------------------
    @property
    def lengths(self) -> tuple[int, int]:
        """Smallest and largest number of time steps a sequence can have (``(L, L)`` for fixed-length tasks)."""
        return self.length, self.length

    def probe_sequence(self, rng: np.random.Generator) -> Batch:
        """The fixed probe sequence (batch of 1) at the task's longest length :attr:`length`."""
        return self.sample(rng, 1)

    def test_batches(self, rng: np.random.Generator, n: int) -> list[Batch]:
        """A held-out test set of ``n`` sequences, as batches of one length each (one batch here)."""
        return [self.sample(rng, n)] if n > 0 else []

    #: the paper's per-sequence "correct" rule, in words ("" when the task has none)
    sequence_rule: ClassVar[str] = ""

    def correct(self, out: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Per-sequence correctness ``(B,) bool`` under the paper's rule, or None when the task has none."""
        return None

    def loss(self, out: np.ndarray, y: np.ndarray) -> float:
        """The training loss (``loss_kind``, as ``kernels.readout.readout_loss`` computes it) of readout
        outputs ``out`` against ``y``, in float64 (for the held-out test set)."""
        out = np.asarray(out, dtype=np.float64)
        if self.loss_kind == "mse_last":
            return float(np.mean((out.reshape(np.shape(y)) - y) ** 2))
        logits = out.reshape(-1, out.shape[-1])
        labels = np.asarray(y).reshape(-1)
        z = logits - logits.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-np.mean(log_p[np.arange(labels.size), labels]))

    def stop_rule(self, window: int = STOP_WINDOW) -> StopRule:
        """A fresh stop rule for ``--until-solved``: the solved threshold on the running mean of the
        metric over the last ``window`` training sequences (the paper's rule for the ``-hs97`` tasks)."""
        return MetricStopRule(self, window)

    def rule_text(self, window: int = STOP_WINDOW) -> str:
        """The stop rule in words."""
        return self.stop_rule(window).describe()


@dataclass(frozen=True)
class AddingTask(Task):
    """Adding problem: sum the two marked values.

    Channel 0 holds values U[0, 1]; channel 1 marks exactly one step in
    ``[0, T//2)`` and one in ``[T//2, T)``. Target: the sum of the two marked
    values, read out at the last step with MSE. Chance: always answering 1
    scores E[(s - 1)^2] = Var(s) = 1/6. Solved: MSE < 0.01 (Le et al. 2015;
    Arjovsky et al. 2016), judged on the metric, which is the plain MSE.
    """

    name: ClassVar[str] = "adding"
    label: ClassVar[str] = "adding problem"
    metric_label: ClassVar[str] = "MSE"
    min_seq_len: ClassVar[int] = 2
    n_in: ClassVar[int] = 2
    n_out: ClassVar[int] = 1
    loss_kind: ClassVar[str] = "mse_last"
    metric_name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False
    solved_threshold: ClassVar[float] = 0.01
    baseline_metric: ClassVar[float] = 1.0 / 6.0

    @property
    def baseline_loss(self) -> float:
        """1/6, the MSE of always answering 1."""
        return 1.0 / 6.0

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        """Return ``x : (T, B, 2) float32`` and ``y : (B,) float32``."""
        T, half = self.seq_len, self.seq_len // 2
        cols = np.arange(batch)
        values = rng.random((T, batch), dtype=np.float32)
        first = rng.integers(0, half, size=batch)
        second = rng.integers(half, T, size=batch)
        x = np.zeros((T, batch, 2), dtype=np.float32)
        x[:, :, 0] = values
        x[first, cols, 1] = 1.0
        x[second, cols, 1] = 1.0
        y = values[first, cols] + values[second, cols]
        return Batch(x=x, y=y)

    def metric(self, out: np.ndarray, y: np.ndarray) -> float:
        """MSE of predictions ``out : (B, 1)`` against ``y : (B,)``."""
        pred = np.asarray(out, dtype=np.float64).reshape(np.shape(y))
        return float(np.mean((pred - y) ** 2))


@dataclass(frozen=True)
class CopyTask(Task):
    """Copy (memory) task of Arjovsky et al. (2016).

    Input, one-hot over 10 categories (0 blank, 1..8 symbols, 9 delimiter),
    ``L = T + 20`` steps: 10 symbols from 1..8, ``T - 1`` blanks, the
    delimiter, 10 blanks. Target ``(L,)``: blank for the first ``T + 10``
    steps, then the 10 symbols. Loss: softmax cross-entropy at every step,
    averaged over steps and batch. Chance: perfect blanks and a uniform guess
    over the 8 symbols, loss ``10 ln 8 / (T + 20)``, per-symbol accuracy 1/8.
    Solved: per-symbol accuracy over the 10 recalled symbols >= 0.99, i.e. at
    most about 1 wrong symbol in 100; anything below can hide a whole
    forgotten position (one of 10 positions always wrong caps it at 0.9).
    """

    name: ClassVar[str] = "copy"
    label: ClassVar[str] = "copy task"
    metric_label: ClassVar[str] = "per-symbol accuracy"
    min_seq_len: ClassVar[int] = 1
    n_in: ClassVar[int] = 10
    n_out: ClassVar[int] = 9
    loss_kind: ClassVar[str] = "ce_window"
    metric_name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    solved_threshold: ClassVar[float] = 0.99
    baseline_metric: ClassVar[float] = 1.0 / 8.0
    n_symbols: ClassVar[int] = 8      # symbol categories 1..8
    n_recall: ClassVar[int] = 10      # symbols to remember
    delimiter: ClassVar[int] = 9      # input category of the "now recall" marker

    @property
    def length(self) -> int:
        """``T + 20``: 10 symbols, ``T - 1`` blanks, delimiter, 10 recall steps."""
        return self.seq_len + 2 * self.n_recall

    @property
    def window(self) -> int:
        """All ``L`` steps are read out."""
        return self.length

    @property
    def baseline_loss(self) -> float:
        """``10 ln 8 / (T + 20)``."""
        return self.n_recall * math.log(self.n_symbols) / self.length

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        """Return ``x : (T+20, B, 10) float32`` and ``y : (T+20, B) int64``."""
        T, L, n = self.seq_len, self.length, self.n_recall
        symbols = rng.integers(1, self.n_symbols + 1, size=(n, batch), dtype=np.int64)
        inp = np.zeros((L, batch), dtype=np.int64)
        inp[:n] = symbols
        inp[T + n - 1] = self.delimiter
        y = np.zeros((L, batch), dtype=np.int64)
        y[L - n:] = symbols
        return Batch(x=_one_hot(inp, self.n_in), y=y)

    def metric(self, out: np.ndarray, y: np.ndarray) -> float:
        """Per-symbol accuracy of ``argmax out : (W, B, 9)`` over the last 10 steps of ``y : (W, B)``."""
        n = self.n_recall
        return float(np.mean(np.argmax(out[-n:], axis=-1) == y[-n:]))


@dataclass(frozen=True)
class TemporalOrderTask(Task):
    """Temporal order task, Hochreiter & Schmidhuber (1997), experiment 6a, at lag T.

    One-hot over 8 symbols (0 E, 1 B, 2 X, 3 Y, 4..7 distractors a..d): E at
    step 0, B at step ``T - 1``, X or Y at ``t1`` in ``[T//10, T//5]`` and at
    ``t2`` in ``[T//2, 3T//5]`` (the paper's 10..20 and 50..60 for T = 100),
    distractors elsewhere. Class: XX 0, XY 1, YX 2, YY 3, read out at the
    last step with softmax cross-entropy. ``T >= 10`` keeps ``t1 >= 1`` and
    the two windows apart. Chance: loss ln 4, accuracy 0.25. Solved:
    accuracy >= 0.95 on a batch. The paper stops when 2000 sequences in a row
    are right; 0.95 is the per-batch version that tolerates a single miss in
    a batch of 32 while sitting far above chance (0.25).
    """

    name: ClassVar[str] = "temporal"
    label: ClassVar[str] = "temporal order task"
    metric_label: ClassVar[str] = "accuracy"
    min_seq_len: ClassVar[int] = 10
    n_in: ClassVar[int] = 8
    n_out: ClassVar[int] = 4
    loss_kind: ClassVar[str] = "ce_last"
    metric_name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True
    solved_threshold: ClassVar[float] = 0.95
    baseline_metric: ClassVar[float] = 0.25
    E, B, X, Y = 0, 1, 2, 3           # symbol indices; 4..7 are the distractors a..d

    @property
    def windows(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Inclusive ranges ``(lo, hi)`` of ``t1`` and ``t2``."""
        T = self.seq_len
        return (T // 10, T // 5), (T // 2, 3 * T // 5)

    @property
    def baseline_loss(self) -> float:
        """ln 4, cross-entropy of uniform logits over the 4 classes."""
        return math.log(4.0)

    def sample(self, rng: np.random.Generator, batch: int) -> Batch:
        """Return ``x : (T, B, 8) float32`` and ``y : (B,) int64``."""
        return self._sample_at(rng, batch, self.seq_len)

    def _sample_at(self, rng: np.random.Generator, batch: int, T: int) -> Batch:
        """``batch`` sequences of ``T`` steps (E first, B last), the X/Y windows those of :attr:`windows`."""
        (lo1, hi1), (lo2, hi2) = self.windows
        cols = np.arange(batch)
        sym = rng.integers(4, 8, size=(T, batch), dtype=np.int64)
        t1 = rng.integers(lo1, hi1 + 1, size=batch)
        t2 = rng.integers(lo2, hi2 + 1, size=batch)
        is_y = rng.integers(0, 2, size=(2, batch), dtype=np.int64)   # 0 X, 1 Y
        sym[0] = self.E
        sym[T - 1] = self.B
        sym[t1, cols] = self.X + is_y[0]
        sym[t2, cols] = self.X + is_y[1]
        y = 2 * is_y[0] + is_y[1]
        return Batch(x=_one_hot(sym, self.n_in), y=y)

    def metric(self, out: np.ndarray, y: np.ndarray) -> float:
        """Accuracy of ``argmax out : (B, 4)`` against classes ``y : (B,)``."""
        return float(np.mean(np.argmax(out, axis=-1) == y))


class _VariableLength:
    """Mixin of the paper-exact tasks: every sequence has ``L`` steps, ``L`` uniform in
    ``[T, T + T//10]``.

    The kernels take one length per batch, so a training batch draws ONE ``L`` (first, from the
    batch stream) and all its sequences have that length; over training every length of the
    range is seen equally often. The test set draws a length per sequence (the paper's
    definition) and is evaluated in one batch per length, so it covers the whole range.
    ``length`` (the session layout's L, the probe sequence) is the longest, ``T + T//10``.
    """

    @property
    def length(self) -> int:
        """``T + T//10``, the longest sequence."""
        return self.seq_len + self.seq_len // 10

    @property
    def lengths(self) -> tuple[int, int]:
        return self.seq_len, self.length

    def _draw_length(self, rng: np.random.Generator, length: int | None) -> int:
        lo, hi = self.lengths
        if length is None:
            return int(rng.integers(lo, hi + 1))
        if not lo <= int(length) <= hi:
            raise ValueError(f"length {length} outside this task's range [{lo}, {hi}]")
        return int(length)

    def probe_sequence(self, rng: np.random.Generator) -> Batch:
        return self.sample(rng, 1, length=self.length)

    def test_batches(self, rng: np.random.Generator, n: int) -> list[Batch]:
        """``n`` sequences, each length uniform in ``[T, T + T//10]``: one batch per length drawn."""
        lo, hi = self.lengths
        counts = np.bincount(rng.integers(lo, hi + 1, size=n), minlength=hi + 1)[lo:] if n > 0 else []
        return [self.sample(rng, int(c), length=lo + i) for i, c in enumerate(counts) if c]

    def describe(self) -> str:
        lo, hi = self.lengths
        return (f"{self.label}, T={self.seq_len} (L={lo}..{hi}, one per batch): {self.metric_label}, chance "
                f"{self.baseline_metric:.3g}, solved by the paper's rule: {self.rule_text()}")

    def stop_rule(self, window: int = STOP_WINDOW) -> StopRule:
        """The paper's rule: average training error below :attr:`error_threshold` and the last
        ``window`` training sequences all correct."""
        return PaperStopRule(self, window)


@dataclass(frozen=True)
class AddingHS97Task(_VariableLength, AddingTask):
    """Adding problem exactly as Hochreiter & Schmidhuber (1997), experiment 4, define it.

    Each step is a pair (value, marker), values U[-1, 1]; the sequence has ``L`` steps, ``L``
    uniform in ``[T, T + T//10]`` (drawn once per training batch: see :class:`_VariableLength`).
    X1 is marked (marker 1.0) among the first 10 pairs, X2 among the first ``T//2 - 1`` pairs
    not already marked; the first and the last pair carry marker -1 unless marked, all others 0.
    When the first pair is marked as X1, X1 is set to 0 (its value in the input too, so the target
    stays the sum of the marked values). Target, read out at the last step (MSE):
    ``0.5 + (X1 + X2) / 4``. Correct: ``|error| < 0.04``. Stop rule: average training error (the
    MSE) below 0.01 over, and every one of, the 2,000 most recent training sequences correct.
    Chance (always 0.5): MSE ``(E[X1²] + E[X2²]) / 16`` = 0.0396 with ``P(X1 at the first pair) =
    1/10``. For ``T < 20`` (tests) X1 is drawn among the first ``T//2`` pairs so both marks stay
    in the first half.
    """

    # as ``adding``: 2 inputs, 1 output, MSE at the last step, metric MSE (solved below 0.01: the
    # paper's bound on the average training error, which the stop rule adds to its per-sequence rule)
    name: ClassVar[str] = "adding-hs97"
    label: ClassVar[str] = "adding problem (H&S 1997 exp. 4)"
    min_seq_len: ClassVar[int] = 4
    tolerance: ClassVar[float] = 0.04          # a sequence is correct when |error| < tolerance
    error_threshold: ClassVar[float] = 0.01    # the stop rule's bound on the average training error
    sequence_rule: ClassVar[str] = "|error| < 0.04"

    @property
    def first_pairs(self) -> int:
        """X1 is drawn among this many first pairs: 10 (``T//2`` below T = 20)."""
        return min(10, self.seq_len // 2)

    @property
    def baseline_metric(self) -> float:
        """MSE of always answering 0.5: ``(E[X1²] + E[X2²]) / 16``, ``E[X2²] = 1/3``, ``E[X1²] = (1 - 1/n)/3``."""
        return ((1.0 - 1.0 / self.first_pairs) / 3.0 + 1.0 / 3.0) / 16.0

    @property
    def baseline_loss(self) -> float:
        return self.baseline_metric

    def sample(self, rng: np.random.Generator, batch: int, length: int | None = None) -> Batch:
        """Return ``x : (L, B, 2) float32`` (value, marker) and ``y : (B,) float32``; ``L`` drawn unless given."""
        L = self._draw_length(rng, length)
        cols = np.arange(batch)
        values = rng.uniform(-1.0, 1.0, size=(L, batch)).astype(np.float32)
        p1 = rng.integers(0, self.first_pairs, size=batch)
        k = rng.integers(0, self.seq_len // 2 - 1, size=batch)   # k-th of the first T/2 - 1 unmarked pairs
        p2 = k + (k >= p1)
        values[0, p1 == 0] = 0.0                                 # "we set X1 to zero"
        marker = np.zeros((L, batch), dtype=np.float32)
        marker[0] = marker[L - 1] = -1.0
        marker[p1, cols] = 1.0
        marker[p2, cols] = 1.0
        y = (0.5 + (values[p1, cols] + values[p2, cols]) / 4.0).astype(np.float32)
        return Batch(x=np.stack([values, marker], axis=-1), y=y)

    def sequence_error(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Squared error of each sequence ``(B,)``: the paper's training error."""
        return (np.asarray(out, dtype=np.float64).reshape(np.shape(y)) - y) ** 2

    def correct(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(out, dtype=np.float64).reshape(np.shape(y)) - y) < self.tolerance


@dataclass(frozen=True)
class TemporalOrderHS97Task(_VariableLength, TemporalOrderTask):
    """Temporal order exactly as Hochreiter & Schmidhuber (1997), experiment 6a, define it.

    As ``temporal`` (E first, B last, X/Y at ``t1`` in ``[T//10, T//5]`` and ``t2`` in
    ``[T//2, 3T//5]``: the paper's 10..20 and 50..60 at T = 100), but each sequence has ``L``
    steps, ``L`` uniform in ``[T, T + T//10]`` (the paper's 100..110), drawn once per training
    batch. Trained as ``temporal``: 4 outputs, softmax cross-entropy. The paper's rule is applied
    to the softmax outputs ``p``: a sequence is correct when every output's ``|p_k - target_k| <
    0.3`` (target one-hot), i.e. ``p_true > 0.7``; its training error is ``sum_k (p_k -
    target_k)²``. Stop rule: that error averaged over the 2,000 most recent training sequences
    below 0.1 and all of them correct. Metric: accuracy (argmax), chance 0.25.
    """

    name: ClassVar[str] = "temporal-hs97"
    label: ClassVar[str] = "temporal order (H&S 1997 exp. 6a)"
    tolerance: ClassVar[float] = 0.3
    error_threshold: ClassVar[float] = 0.1
    sequence_rule: ClassVar[str] = "every softmax output within 0.3 of its 0/1 target"

    def sample(self, rng: np.random.Generator, batch: int, length: int | None = None) -> Batch:
        """Return ``x : (L, B, 8) float32`` and ``y : (B,) int64``; ``L`` drawn unless given."""
        return self._sample_at(rng, batch, self._draw_length(rng, length))

    def _softmax_error(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``|p_k - target_k|`` per sequence and output, ``(B, 4)``."""
        z = np.asarray(out, dtype=np.float64)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        return np.abs(p - np.eye(self.n_out)[np.asarray(y)])

    def sequence_error(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (self._softmax_error(out, y) ** 2).sum(axis=-1)

    def correct(self, out: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (self._softmax_error(out, y) < self.tolerance).all(axis=-1)


_TASK_TYPES: dict[str, type[Task]] = {t.name: t for t in (AddingTask, CopyTask, TemporalOrderTask,
                                                          AddingHS97Task, TemporalOrderHS97Task)}


def make_task(name: str, seq_len: int) -> Task:
    """Build the task ``name`` (one of :data:`TASKS`) at lag ``seq_len``.

    Raises
    ------
    ConfigError
        Unknown ``name``, or ``seq_len`` not an integer at least the task's minimum.
    """
    if name not in _TASK_TYPES:
        raise ConfigError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    cls = _TASK_TYPES[name]
    if not isinstance(seq_len, (int, np.integer)) or isinstance(seq_len, bool):
        raise ConfigError(f"seq-len must be an integer, got {seq_len!r}")
    if seq_len < cls.min_seq_len:
        raise ConfigError(f"the {cls.label} needs seq-len >= {cls.min_seq_len}, got {seq_len}")
    return cls(int(seq_len))
