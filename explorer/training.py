"""Qt-free trainer: a validated config in, a stream of step/probe/status records out.

The trainer trains one or several cells side by side on exactly the same
batches (same seed), and yields records that the CLI, the GUI worker and the
session recorder consume::

    trainer = Trainer(TrainConfig(task="adding", seq_len=100))
    for record in trainer.run():
        ...   # StepRecord | ProbeRecord | StatusRecord

``pause()``, ``resume()`` and ``stop()`` may be called from another thread.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import numpy as np

from explorer.config import TrainConfig
from explorer.errors import ConfigError

#: statuses a run can end in (plus "running" while it trains)
STATUSES = ("running", "completed", "stopped", "diverged", "interrupted")
#: spawn key of the held-out test set's seed stream (apart from the batch, probe and cell streams)
TEST_STREAM = 0x7E57


@dataclass
class StepRecord:
    """One training step of one cell."""

    cell: str                  # a registered cell: "rnn", "lstm", "gru", ...
    step: int                  # steps done so far by this cell (1-based)
    loss: float                # task loss on this step's batch
    metric: float              # task metric on this step's batch (MSE or accuracy)
    grad_norm: float           # global L2 norm of all gradients, before clipping
    param_grad_norms: dict[str, float]  # L2 norm per parameter: weight_ih, weight_hh, bias_ih, bias_hh, readout.weight, readout.bias
    wall_time: float           # seconds since training started (all cells share the clock)


@dataclass
class ProbeRecord:
    """A snapshot of one cell every ``probe_interval`` steps.

    ``grad_norm_t`` comes from that step's own backward pass (batch mean of
    ‖∂L/∂h_t‖); the states come from a forward pass over the fixed probe
    sequence (the first sequence of a batch drawn once from the seed).
    """

    cell: str
    step: int
    grad_norm_t: np.ndarray    # (L,) float32, batch-mean ‖∂L/∂h_t‖ for t = 0..L-1
    h: np.ndarray              # (L, H) float32, hidden states on the probe sequence
    gates: np.ndarray | None   # (n_gates, L, H) float32, the cell's gates in its order (None without gates)
    c: np.ndarray | None       # (L, H) float32, LSTM cell state (None for cells without one)
    saturation: np.ndarray | None  # (n_gates,) float32, fraction of each gate saturated (None without gates)
    saliency: np.ndarray | None = None  # (L,) float32, input saliency ‖∂ŷ/∂x_t‖ on the probe sequence (Trainer.saliency)
    spectrum: np.ndarray | None = None  # (L, S) float32, log10 σ_max(∂s_{L-1}/∂s_t) per state (Trainer.spectrum)
    weight_sigma: np.ndarray | None = None  # (1 + n_gates,) float32, σ_max of W_hh and of each gate's block


@dataclass
class StatusRecord:
    """A cell changed status: started, completed, stopped or diverged."""

    cell: str
    status: str                # one of STATUSES
    step: int                  # steps done when the status changed
    message: str = ""          # why (e.g. "loss became nan at step 812")


@dataclass
class SolvedRecord:
    """A cell's stop rule held for the first time (the task's solved rule; see ``Task.stop_rule``)."""

    cell: str
    step: int                  # steps done when it held
    sequences: int             # training sequences seen by then: step × batch (H&S 1997's unit)
    rule: str                  # the rule, in words
    wall_time: float           # seconds since training started


@dataclass
class TestRecord:
    """An evaluation of one cell on the held-out test set (its own seed stream, all lengths)."""

    __test__ = False           # not a pytest test class

    cell: str
    step: int                  # steps done when evaluated
    n: int                     # test sequences
    loss: float                # task loss over the test set
    metric: float              # task metric over the test set
    wrong: int | None          # sequences wrong under the paper's per-sequence rule; None without one
    wall_time: float           # seconds since training started
    final: bool = False        # the end-of-run evaluation


@dataclass
class CheckpointRecord:
    """Everything needed to go on from the end of ``step`` (every active cell trained it): the batch
    stream's state and, per cell, its parameters, optimizer state, stop-rule state, whether it is still
    training and where it was solved. Yielded at least every :attr:`Trainer.checkpoint_s` seconds and when
    stopped; the session file keeps the newest (``lstm-explorer train --resume``)."""

    step: int
    wall_time: float
    rng: str                   # the batch generator's bit_generator.state, as JSON
    cells: dict                # cell -> {"flat", "m", "v", "updates", "rule_<k>"..., "active", "solved_step"} arrays


Record = StepRecord | ProbeRecord | StatusRecord | SolvedRecord | TestRecord | CheckpointRecord

#: seconds between checkpoints (the environment variable LSTM_EXPLORER_CHECKPOINT_S overrides it)
CHECKPOINT_S = 60.0


@dataclass
class RunInfo:
    """What is known about one cell's run before it trains (the session layout needs it up front)."""

    cell: str                  # a registered cell: "rnn", "lstm", "gru", ...
    param_count: int           # trainable scalars, readout included
    param_shapes: dict[str, tuple[int, ...]]  # PyTorch state_dict names -> shapes (see Trainer.state_dict)
    length: int                # L: time steps per sequence (copy task: seq_len + 20)
    hidden: int                # H
    n_gates: int               # gates of the cell: 4 for the LSTM, 3 for the GRU, 0 for the RNN
    metric_name: str           # "mse" | "accuracy"
    higher_is_better: bool     # metric direction
    baseline_loss: float       # chance-level loss
    baseline_metric: float     # chance-level metric
    gate_names: tuple[str, ...] | None = None  # gate names in row order ("i", "f", "g", "o"); None: the LSTM's if 4
    cell_state: bool | None = None  # probes carry a cell state c (the LSTM); None: when there are 4 gates
    init: str = "default"      # the initialisation this cell got, defaults filled in ("default+chrono:100")
    options: dict = dataclasses.field(default_factory=dict)  # the cell's kernel options (the RNN's activation)
    stop_rule: str = ""        # the task's stop rule in words (what "solved" means for this run)
    test_size: int = 0         # held-out test sequences evaluated (0: none)
    sequence_rule: str = ""    # the paper's per-sequence "correct" rule ("" when the task has none)
    probe_input: np.ndarray | None = None  # (L, n_in) float32, the probe sequence every probe runs on
    checkpoint_layout: dict | None = None  # name -> (shape, dtype) of each CheckpointRecord array of this cell
    weight_sigma_bounds: np.ndarray | None = None  # (1 + n_gates,) the vanishing bound 1/γ of each ProbeRecord.weight_sigma


#: names of the per-parameter gradient norms in StepRecord.param_grad_norms
PARAM_GRAD_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "readout.weight", "readout.bias")
#: a gate value counts as saturated below LOW or above HIGH (tanh gates, in [-1, 1], are first mapped to [0, 1])
SATURATION_LOW, SATURATION_HIGH = 0.1, 0.9


def gate_saturation(gates: np.ndarray, tanh_rows=()) -> np.ndarray:
    """Fraction of saturated values per gate: ``gates : (n_gates, L, H)`` -> ``(n_gates,)`` float32;
    ``tanh_rows`` are the indices of gates in [-1, 1] (the LSTM's g, the GRU's n)."""
    unit = gates.astype(np.float32, copy=True)
    for k in tanh_rows:
        unit[k] = 0.5 * (unit[k] + 1.0)
    saturated = (unit < SATURATION_LOW) | (unit > SATURATION_HIGH)
    return saturated.reshape(len(unit), -1).mean(axis=1).astype(np.float32)


def torch_state_dict(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our parameter names -> ``torch.nn.LSTM``/``RNN`` layer-0 names (``weight_ih_l0``, ...) + ``readout.*``."""
    return {(k if k.startswith("readout.") else f"{k}_l0"): v for k, v in params.items()}


class Trainer:
    """Trains every cell of ``config`` side by side on the same batches; :meth:`run` yields records.

    Random streams (all from ``config.seed``): one per cell for its initial
    weights, one for the training batches (shared by all cells) and one for
    the fixed probe sequence, so adding a cell changes nothing for the others.
    """

    def __init__(self, config: TrainConfig):
        import threading

        import kernels
        from explorer.tasks import make_task
        from kernels import cells
        from kernels.params import init_params
        from kernels.spectrum import vanishing_bounds

        self.config = config.validate()
        self.task = make_task(config.task, config.seq_len)
        self.backend = kernels.backend(config.backend)
        names = cells.names()
        seeds = np.random.SeedSequence(config.seed).spawn(2 + len(names))
        self._batch_seed, probe_seed = seeds[0], seeds[1]
        cell_seeds = dict(zip(names, seeds[2:]))   # child k is the same whatever the count: rnn, lstm keep theirs
        dtype = np.dtype(config.dtype)
        init = config.init_spec()
        self.specs = {cell: cells.get(cell) for cell in config.cells}
        self.inits = {cell: init.for_cell(cell).resolved(config.seq_len).text() for cell in config.cells}
        self.models = {}
        for cell in config.cells:
            params = init_params(cell, self.task.n_in, config.hidden, self.task.n_out,
                                 np.random.default_rng(cell_seeds[cell]), dtype, init=init, seq_len=config.seq_len)
            self.models[cell] = self.backend.make_model(
                cell, params, loss_kind=self.task.loss_kind, window=self.task.window,
                optimizer=config.optimizer, lr=config.lr, momentum=config.momentum, clip=config.clip,
                **config.cell_options(cell))
        #: the fixed probe sequence (L, 1, n_in), drawn once from the seed (the longest length of the task)
        self.probe_x = self.task.probe_sequence(np.random.default_rng(probe_seed)).x
        #: the held-out test set's own stream: the same sequences for every cell of this seed
        self._test_seed = np.random.SeedSequence(config.seed, spawn_key=(TEST_STREAM,))
        self._test_set = None
        rule = self.task.rule_text()
        self.runs = [RunInfo(cell=cell, param_count=m.param_count,
                             param_shapes={k: tuple(v.shape) for k, v in self.state_dict(cell).items()},
                             length=self.task.length, hidden=config.hidden,
                             n_gates=self.specs[cell].n_gates, gate_names=self.specs[cell].gates,
                             cell_state="c" in self.specs[cell].states,
                             init=self.inits[cell], options=config.cell_options(cell),
                             stop_rule=rule, test_size=config.test_size, sequence_rule=self.task.sequence_rule,
                             probe_input=self.probe_x[:, 0].astype(np.float32),
                             weight_sigma_bounds=vanishing_bounds(cell),
                             checkpoint_layout=self._checkpoint_layout(cell),
                             metric_name=self.task.metric_name,
                             higher_is_better=self.task.higher_is_better,
                             baseline_loss=float(self.task.baseline_loss),
                             baseline_metric=float(self.task.baseline_metric))
                     for cell, m in self.models.items()]
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        #: seconds between checkpoints (LSTM_EXPLORER_CHECKPOINT_S, else :data:`CHECKPOINT_S`)
        self.checkpoint_s = _checkpoint_seconds()

    # -- control, callable from any thread ------------------------------------------------------
    def pause(self) -> None:
        """Hold training before the next step (:meth:`run` blocks until resumed or stopped)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        """End training after the current step; running cells get status ``stopped``."""
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- results ---------------------------------------------------------------------------------
    def state_dict(self, cell: str) -> dict[str, np.ndarray]:
        """Current parameters of ``cell`` under PyTorch's names (loadable into ``nn.LSTM`` + ``nn.Linear``)."""
        return torch_state_dict(self.models[cell].state())

    def probe(self, cell: str, step: int, grad_norm_t: np.ndarray) -> ProbeRecord:
        """Snapshot of ``cell`` on the probe sequence, with the gradient flow of the last step."""
        fwd = self.models[cell].probe(self.probe_x)
        spec = self.specs[cell]
        h = fwd.h[:, 0].astype(np.float32)
        gates = c = saturation = None
        blocks = fwd.gate_blocks()              # (n_gates, L, B, H)
        if blocks is not None:
            gates = blocks[:, :, 0].astype(np.float32)
            saturation = gate_saturation(gates, [spec.gate_index(g) for g in spec.tanh_gates])
        if "c" in fwd.states:
            c = fwd.states["c"][:, 0].astype(np.float32)
        L = self.task.length
        gn = np.full(L, np.nan, dtype=np.float32)     # a shorter batch (variable-length tasks): NaN beyond its end
        gn[:min(L, len(grad_norm_t))] = grad_norm_t[:L]
        from kernels.spectrum import weight_sigmas

        W_hh = self.models[cell].state()["weight_hh"]
        return ProbeRecord(cell=cell, step=step, grad_norm_t=gn, h=h, gates=gates, c=c, saturation=saturation,
                           saliency=self.saliency(cell, fwd), spectrum=self.spectrum(cell, fwd, step),
                           weight_sigma=weight_sigmas(cell, W_hh).astype(np.float32))

    def spectrum(self, cell: str, fwd=None, step: int | None = None) -> np.ndarray | None:
        """The Jacobian spectrum of ``cell`` on the probe sequence: ``(L, S)`` float32, log10 σ_max of
        ∂s_{L-1}/∂s_t per carried state (h; the LSTM's c too), kernels/spectrum.py. None for a cell without
        a state Jacobian, and for the probe at ``step`` when the spectra are spaced out to stay within their
        share of the training time (:func:`kernels.spectrum.spectrum_interval`; 1, every probe, as a rule)."""
        from kernels.spectrum import has_spectrum, product_spectrum, spectrum_interval

        if not has_spectrum(cell):
            return None
        cfg, interval = self.config, self.config.probe_interval
        if step is not None and (step // interval) % spectrum_interval(cell, cfg.hidden, self.task.n_in, cfg.batch,
                                                                       interval):
            return None
        fwd = fwd if fwd is not None else self.models[cell].probe(self.probe_x)
        W_hh = self.models[cell].state()["weight_hh"]
        return product_spectrum(cell, W_hh, fwd, self.config.cell_options(cell)).astype(np.float32)

    def saliency(self, cell: str, fwd=None) -> np.ndarray:
        """Input saliency of ``cell`` on the probe sequence: ``(L,)`` float32, ‖∂ŷ/∂x_t‖ (L2 over the input
        channels at step t), one backward pass of batch 1 (``fwd``: the probe's forward, when at hand).

        ŷ is the readout the loss judges: the output itself for a regression (the adding problems); for a
        classification, the score of the class the cell predicts, summed over the steps the loss reads
        (temporal order: the last; copy: the recall window). Madsen (2019)'s "connectivity": where the
        answer comes from. An RNN that forgets shows it near zero before the last steps."""
        model, task = self.models[cell], self.task
        fwd = fwd if fwd is not None else model.probe(self.probe_x)
        params = model.state()
        W, b = params["readout.weight"].astype(np.float64), params["readout.bias"].astype(np.float64)  # (n_out, H)
        h = np.asarray(fwd.h[:, 0], dtype=np.float64)                    # (L, H)
        L = h.shape[0]
        dh = np.zeros((L, 1, h.shape[1]), dtype=model.dtype)
        for t in range(L - task.window, L):
            k = 0 if task.loss_kind == "mse_last" else int(np.argmax(h[t] @ W.T + b))   # the class it answers
            dh[t, 0] = W[k]
        recurrent = {k: params[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        dx = self.backend.backward(cell, recurrent, self.probe_x, fwd, dh)["x"][:, 0]    # (L, n_in)
        return np.sqrt(np.sum(np.asarray(dx, dtype=np.float64) ** 2, axis=1)).astype(np.float32)

    def test_set(self) -> list:
        """The held-out test set (``config.test_size`` sequences, every length of the task), drawn once."""
        if self._test_set is None:
            self._test_set = self.task.test_batches(np.random.default_rng(self._test_seed), self.config.test_size)
        return self._test_set

    def evaluate(self, cell: str) -> dict:
        """``cell`` on the held-out test set: ``{"n", "loss", "metric", "wrong"}`` (``wrong`` None when
        the task has no per-sequence rule). Forward passes only, in chunks of the training batch size (memory
        stays what training needs); training is not touched."""
        model, task = self.models[cell], self.task
        state = model.state()
        W, b = state["readout.weight"].astype(np.float64), state["readout.bias"].astype(np.float64)
        n = 0
        loss = metric = 0.0
        wrong = 0 if task.sequence_rule else None
        for batch in self.test_set():
            L, B = batch.x.shape[:2]
            chunk = self.config.batch   # a test forward pass never holds more than a training step does
            for j in range(0, B, chunk):
                x = np.ascontiguousarray(batch.x[:, j:j + chunk])
                y = batch.y[..., j:j + chunk]
                h = model.probe(x).h[L - task.window:].astype(np.float64)   # (window, b, H)
                out = h @ W.T + b
                out = out[0] if task.window == 1 else out
                k = x.shape[1]
                loss += task.loss(out, y) * k
                metric += task.metric(out, y) * k
                if wrong is not None:
                    wrong += int(k - np.count_nonzero(task.correct(out, y)))
                n += k
        if not n:
            return {"n": 0, "loss": math.nan, "metric": math.nan, "wrong": None}
        return {"n": n, "loss": loss / n, "metric": metric / n, "wrong": wrong}

    def _test_record(self, cell: str, step: int, wall_time: float, final: bool) -> "TestRecord":
        return TestRecord(cell=cell, step=step, wall_time=wall_time, final=final, **self.evaluate(cell))

    # -- the loop --------------------------------------------------------------------------------
    def run(self, resume: CheckpointRecord | None = None):
        """Train; yield :data:`Record` objects. Probes are taken at step 1, every ``probe_interval``
        steps and at the last step. A cell whose loss or gradient becomes non-finite ends
        ``diverged``; the others go on.

        Every cell's stop rule (``task.stop_rule()``) is fed every step; the first step it holds
        yields a :class:`SolvedRecord`. With ``until_solved`` that cell then stops (``completed``,
        the message says when it solved) while the others go on up to ``steps``. Each cell that
        completes is evaluated on the held-out test set (:class:`TestRecord`, ``final=True``;
        also every ``test_every`` steps when set) before its status record.

        A :class:`CheckpointRecord` comes after a step at least every :attr:`checkpoint_s` seconds, before
        the ``stopped`` statuses, and after the last step when cells reached the cap (still active in it:
        a raised cap goes on with them). ``resume``, such a checkpoint of this configuration, goes on from
        the step after it with the batches, parameters, optimizer and stop-rule states it holds: every
        later step is the one an uninterrupted run takes."""
        import json
        import time

        cfg = self.config
        batches = np.random.default_rng(self._batch_seed)
        active = list(self.models)
        rules = {cell: self.task.stop_rule() for cell in active}
        solved: dict[str, int] = {}
        first, offset = 1, 0.0
        if resume is not None:
            active, first, offset = self._restore(resume, batches, rules, solved)
        for cell in active:
            yield StatusRecord(cell, "running", first - 1)
        clock, paused_for = time.perf_counter(), 0.0
        last_checkpoint = time.monotonic()

        def now() -> float:
            return time.perf_counter() - clock - paused_for + offset

        def checkpoint(step: int) -> CheckpointRecord:
            return CheckpointRecord(step, now(), json.dumps(batches.bit_generator.state),
                                    {cell: self._cell_state(cell, rules[cell], cell in active, solved.get(cell))
                                     for cell in self.models})
        for step in range(first, cfg.steps + 1):
            if not self._running.is_set():
                t_pause = time.perf_counter()
                self._running.wait()
                paused_for += time.perf_counter() - t_pause
            if self._stop.is_set():
                yield checkpoint(step - 1)
                for cell in active:
                    yield StatusRecord(cell, "stopped", step - 1, f"stopped by the user after {step - 1} steps")
                return
            batch = self.task.sample(batches, cfg.batch)
            lr = cfg.lr_at(step)
            for cell in list(active):
                self.models[cell].lr = lr
                stats = self.models[cell].step(batch.x, batch.y)
                if not (math.isfinite(stats.loss) and math.isfinite(stats.grad_norm)):
                    active.remove(cell)
                    bad = "loss" if not math.isfinite(stats.loss) else "gradient norm"
                    yield StatusRecord(cell, "diverged", step - 1,
                                       f"{cell}: {bad} became {stats.loss if bad == 'loss' else stats.grad_norm} "
                                       f"at step {step}; try a smaller --lr (now {lr:g}) or --clip")
                    continue
                yield StepRecord(cell=cell, step=step, loss=stats.loss, metric=self.task.metric(stats.out, batch.y),
                                 grad_norm=stats.grad_norm, param_grad_norms=stats.param_grad_norms,
                                 wall_time=now())
                done = False
                if cell not in solved and rules[cell].update(stats.out, batch.y):
                    solved[cell] = step
                    yield SolvedRecord(cell, step, step * cfg.batch, rules[cell].describe(), now())
                    done = cfg.until_solved
                if step == 1 or step % cfg.probe_interval == 0 or step == cfg.steps or done:
                    yield self.probe(cell, step, stats.dh_norm)
                if done:
                    active.remove(cell)
                    if cfg.test_size:
                        yield self._test_record(cell, step, now(), final=True)
                    yield StatusRecord(cell, "completed", step,
                                       f"solved at step {step:,} ({step * cfg.batch:,} sequences): {rules[cell].describe()}")
                elif cfg.test_size and cfg.test_every and step % cfg.test_every == 0 and step != cfg.steps:
                    yield self._test_record(cell, step, now(), final=False)
            if not active:
                return
            if time.monotonic() - last_checkpoint >= self.checkpoint_s and step < cfg.steps:
                yield checkpoint(step)
                last_checkpoint = time.monotonic()
        if active:      # the state at the cap: ``train --resume FILE --steps N`` goes on from it
            yield checkpoint(cfg.steps)
        for cell in active:
            if cfg.test_size:
                yield self._test_record(cell, cfg.steps, now(), final=True)
            message = ""
            if cfg.until_solved and cell not in solved:
                message = (f"not solved within the cap of {cfg.steps:,} steps ({cfg.steps * cfg.batch:,} sequences): "
                           f"{rules[cell].describe()}")
            yield StatusRecord(cell, "completed", cfg.steps, message)

    # -- checkpoints -----------------------------------------------------------------------------
    def _cell_state(self, cell: str, rule, active: bool, solved_step: int | None) -> dict[str, np.ndarray]:
        """One cell's part of a :class:`CheckpointRecord`."""
        return {**self.models[cell].training_state(), **{f"rule_{k}": v for k, v in rule.state().items()},
                "active": np.int8(active), "solved_step": np.int64(-1 if solved_step is None else solved_step)}

    def _checkpoint_layout(self, cell: str) -> dict[str, tuple[tuple[int, ...], str]]:
        """``{name: (shape, dtype)}`` of every array of ``cell``'s checkpoint (the session file's layout)."""
        state = self._cell_state(cell, self.task.stop_rule(), True, None)
        return {k: (tuple(np.shape(v)), np.asarray(v).dtype.str) for k, v in state.items()}

    def _restore(self, ck: CheckpointRecord, batches, rules: dict, solved: dict) -> tuple[list, int, float]:
        """Load checkpoint ``ck`` into the models, the batch generator, ``rules`` and ``solved``; returns the
        cells still training, the first step to train and the wall time so far. A checkpoint of other cells
        or sizes is a :class:`ConfigError`."""
        import json

        from kernels.errors import KernelInputError

        if set(ck.cells) != set(self.models):
            raise ConfigError(f"the checkpoint holds cells {', '.join(sorted(ck.cells))}, this configuration trains "
                              f"{', '.join(self.models)}")
        if not 0 <= ck.step < self.config.steps:
            raise ConfigError(f"the checkpoint is at step {ck.step}, outside this run's 0..{self.config.steps - 1}")
        try:
            batches.bit_generator.state = json.loads(ck.rng)
            for cell, state in ck.cells.items():
                self.models[cell].load_training_state(state)
                rules[cell].load_state({k[5:]: v for k, v in state.items() if k.startswith("rule_")})
                if int(state["solved_step"]) >= 0:
                    solved[cell] = int(state["solved_step"])
        except (KernelInputError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"the checkpoint does not fit this configuration: {exc}") from None
        active = [cell for cell in self.models if int(ck.cells[cell]["active"])]
        return active, ck.step + 1, float(ck.wall_time)


def _checkpoint_seconds() -> float:
    text = os.environ.get("LSTM_EXPLORER_CHECKPOINT_S", "")
    if not text:
        return CHECKPOINT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise ConfigError(f"LSTM_EXPLORER_CHECKPOINT_S must be a number of seconds >= 0, got {text!r}")
    return value
