"""Reproduce the classic long-lag tables: presets, the sweep they run, and the table "paper | ours" (Qt-free).

A preset is a paper's grid (task, lags T, cells) with our training settings and an
until-solved budget. :func:`build_plan` turns it, with the user's overrides, into a
:class:`~explorer.sweep.SweepPlan` (so ``lstm-explorer reproduce`` is a resumable sweep on
Dask); :func:`table` reduces the sweep's result rows to one row per (series, T): the
paper's figure beside ours — training sequences until the stop rule held (median and range
over the seeds that solved), wrong of the held-out test set, wall time per run — and the
optimizer, learning rate, hidden size, batch and initialisation the row used.

Units. Hochreiter & Schmidhuber (1997) updated the weights after every sequence and count
training sequences; we train on batches and count sequences seen, steps × batch, the
same unit (a batch of 32 counts 32 sequences, however few updates it makes). Their LSTM
had no forget gate and far fewer weights; ours is PyTorch's LSTM (with one).
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field

import numpy as np

from explorer.console import compact
from explorer.errors import ConfigError
from explorer.config import TrainConfig


@dataclass(frozen=True)
class PaperRow:
    """What the paper reports for one lag (for its LSTM)."""

    sequences: float | None         # training sequences until its stop rule held (mean of its trials)
    wrong: int | None               # wrong of its 2,560 test sequences
    note: str = ""                  # the paper's claim in words where it gives no number


@dataclass(frozen=True)
class Preset:
    """A paper's experiment and the settings we reproduce it with (every field a flag overrides)."""

    name: str
    title: str
    source: str                     # where the paper's numbers come from
    task: str
    cells: tuple[str, ...]
    seq_lens: tuple[int, ...]
    seeds: int
    hidden: int
    batch: int
    lr: float
    init: str                       # one initialisation, or several separated by ";" (a sweep axis)
    cap: int                        # steps: the until-solved budget of every run
    paper: dict = field(default_factory=dict)     # T -> PaperRow (the paper's LSTM)
    why: str = ""                   # why these settings (printed)
    optimizer: str = "adam"
    clip: float = 1.0
    test_size: int = 2560

    def overridden(self, plan) -> list[str]:
        """The flags whose values in ``plan`` (a :func:`build_plan` result) differ from this preset's."""
        from explorer.sweep import parse_inits

        b = plan.base
        mine = dict(cells=self.cells, seq_lens=self.seq_lens, seeds=self.seeds, hidden=self.hidden, batch=self.batch,
                    lr=self.lr, optimizer=self.optimizer, clip=self.clip, init=parse_inits(self.init), cap=self.cap,
                    test_size=self.test_size)
        used = dict(cells=tuple(plan.cells), seq_lens=tuple(plan.seq_lens), seeds=plan.seeds, hidden=b.hidden,
                    batch=b.batch, lr=b.lr, optimizer=b.optimizer, clip=b.clip,
                    init=tuple(plan.vary.get("init", (b.init,))), cap=b.steps, test_size=b.test_size)
        return [name.replace("_", "-") for name in mine if mine[name] != used[name]]


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="hs97-adding", title="adding problem, Hochreiter & Schmidhuber (1997) experiment 4",
        source="H&S 1997 Table 7 (LSTM, means of 10 trials): training sequences until the stop rule, "
               "wrong of 2,560 test sequences",
        task="adding-hs97", cells=("lstm", "rnn"), seq_lens=(100, 500, 1000), seeds=3, hidden=64, batch=32,
        lr=1e-2, init="chrono", cap=40_000,
        paper={100: PaperRow(74_000, 1), 500: PaperRow(209_000, 0), 1000: PaperRow(853_000, 1)},
        why="H=64, batch 32, Adam lr 1e-2, clip 1: the settings that solve the adding problem at T=100 in ~2,000 "
            "steps and T=400 in ~5,000 on this CPU (README, issue 11); chrono initialisation (Tallec & Ollivier "
            "2018: forget bias log U[1, T-1], input bias its negative) closes the input gates as the paper's "
            "biases -3/-6 did; the RNN (default init) shows where a plain RNN fails; cap 40,000 steps = "
            "1.28M sequences, 1.5x the paper's 853k at T=1000"),
    Preset(
        name="hs97-temporal", title="temporal order, Hochreiter & Schmidhuber (1997) experiment 6a",
        source="H&S 1997 Table 9 (LSTM, task 6a, mean of 10 trials)",
        task="temporal-hs97", cells=("lstm", "rnn"), seq_lens=(100,), seeds=3, hidden=64, batch=32,
        lr=1e-2, init="chrono", cap=20_000, paper={100: PaperRow(31_390, 1)},
        why="the adding preset's settings; cap 20,000 steps = 640k sequences, 20x the paper's 31,390"),
    Preset(
        name="arjovsky-copy", title="copy task, Arjovsky, Shah & Bengio (2016), standard vs chrono LSTM",
        source="Arjovsky et al. 2016 Fig. 1: the LSTM beats the memoryless baseline only at T=100; "
               "Tallec & Ollivier 2018: the chrono-initialised LSTM solves it at T=500",
        task="copy", cells=("lstm",), seq_lens=(100, 200, 500), seeds=3, hidden=64, batch=32,
        lr=1e-3, init="default;chrono", cap=20_000,
        paper={100: PaperRow(None, None, "beats the baseline"), 200: PaperRow(None, None, "baseline only"),
               500: PaperRow(None, None, "baseline only (chrono: solved, T&O 2018)")},
        why="lr 1e-3 as both papers (RMSprop there, Adam here: --optimizer rmsprop:0.9 --clip 0 for theirs), "
            "batch 32, H=64; the standard (PyTorch default) and the chrono initialisation side by side; solved = "
            "mean per-symbol accuracy of the last 2,000 sequences >= 0.99; cap 20,000 steps = 640k sequences"),
)}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None


def build_plan(p: Preset, out: str, *, cells=None, seq_lens=None, seeds=None, hidden=None, batch=None, lr=None,
               optimizer=None, clip=None, init=None, cap=None, test_size=None, backend: str | None = None):
    """The :class:`~explorer.sweep.SweepPlan` of preset ``p`` with the given overrides (None: the preset's).

    Every run trains until its stop rule holds (``until_solved``), at most ``cap`` steps, and is tested
    on ``test_size`` held-out sequences. Several initialisations (``"default;chrono"``) are a sweep axis.
    """
    from explorer.sweep import SweepPlan, parse_inits

    cells = tuple(cells) if cells else p.cells
    seq_lens = tuple(seq_lens) if seq_lens else p.seq_lens
    inits = parse_inits(init if init is not None else p.init)
    base = TrainConfig(task=p.task, seq_len=max(seq_lens), cells=cells, hidden=p.hidden if hidden is None else hidden,
                       batch=p.batch if batch is None else batch, lr=p.lr if lr is None else lr,
                       optimizer=optimizer or p.optimizer, clip=p.clip if clip is None else clip,
                       steps=p.cap if cap is None else cap,
                       init=inits[0], until_solved=True, test_size=p.test_size if test_size is None else test_size,
                       backend=backend or "cpu").validate()
    vary = {"init": inits} if len(inits) > 1 else {}
    return SweepPlan(base=base, cells=cells, seq_lens=seq_lens, seeds=p.seeds if seeds is None else seeds,
                     out=out, vary=vary).validate()


#: the columns of the reproduction table (CSV header, in order)
TABLE_COLUMNS = ("cell", "variant", "seq_len", "paper_sequences", "paper_wrong", "paper_note", "n_seeds", "n_solved",
                 "median_sequences", "min_sequences", "max_sequences", "median_test_wrong", "max_test_wrong",
                 "test_n", "median_test_metric", "median_wall_s", "optimizer", "lr", "hidden", "batch", "init",
                 "cap_steps", "cap_sequences")


def _median(values) -> float:
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    return float(np.median(a)) if a.size else math.nan


def table(p: Preset, plan, results) -> list[dict]:
    """One row per (series, T) of ``results`` (sweep result rows), in the frontier's order; see
    :data:`TABLE_COLUMNS`. The paper's numbers stand beside its LSTM's rows (the standard-init one
    when several initialisations run). Sequences are over the seeds that solved; test figures over
    all seeds that ran."""
    from explorer.frontier import frontier

    configs = {s["session"]: s["config"] for s in plan.specs()}
    rows = []
    for f in frontier(results):
        ran = [r for r in results if r["cell"] == f["cell"] and r.get("variant", "") == f["variant"]
               and int(r["seq_len"]) == f["seq_len"] and r.get("status") != "failed"]
        cfg = next((configs[r["session"]] for r in ran if r.get("session") in configs), plan.base.to_dict())
        seqs = [r["solved_sequences"] for r in ran if r.get("solved") and (r.get("solved_sequences") or 0) > 0]
        wrong = [r["test_wrong"] for r in ran if (r.get("test_n") or 0) > 0 and (r.get("test_wrong", -1) or 0) >= 0]
        paper = p.paper.get(f["seq_len"]) if f["cell"] == "lstm" else None
        rows.append(dict(
            cell=f["cell"], variant=f["variant"], seq_len=f["seq_len"],
            paper_sequences=paper.sequences if paper else None, paper_wrong=paper.wrong if paper else None,
            paper_note=paper.note if paper else "", n_seeds=len(ran), n_solved=len(seqs),
            median_sequences=_median(seqs), min_sequences=min(seqs) if seqs else None,
            max_sequences=max(seqs) if seqs else None,
            median_test_wrong=_median(wrong), max_test_wrong=max(wrong) if wrong else None,
            test_n=max((r.get("test_n") or 0 for r in ran), default=0),
            median_test_metric=_median(r.get("test_metric") for r in ran),
            median_wall_s=_median(r.get("wall_s") for r in ran),
            optimizer=cfg["optimizer"], lr=cfg["lr"], hidden=cfg["hidden"], batch=cfg["batch"],
            init=_cell_init(cfg["init"], f["cell"], f["seq_len"]), cap_steps=cfg["steps"],
            cap_sequences=cfg["steps"] * cfg["batch"]))
    return rows


def _cell_init(init: str, cell: str, seq_len: int) -> str:
    """The initialisation ``cell`` got under ``init`` at lag ``seq_len``, defaults filled in (chrono's
    T_max; a plain chrono leaves the RNN at its default)."""
    from kernels.inits import parse_init

    try:
        return parse_init(init).for_cell(cell).resolved(seq_len).text()
    except Exception:
        return init


def display_rows(rows: list[dict]) -> tuple[tuple, list[tuple], list[str]]:
    """``(columns, cells, settings lines)`` of the printed table (``explorer.console.print_table``);
    the settings each series used are listed under the table, one line per series."""
    columns = (("cell", "left"), ("T", "right"), ("paper seq.", "right"), ("paper wrong", "right"),
               ("solved", "right"), ("ours seq. [range]", "right"), ("ours wrong", "right"),
               ("wall/run", "right"))
    out, settings = [], {}
    for r in rows:
        series = f"{r['cell']} {r['variant']}".strip()
        paper_seq = compact(r["paper_sequences"]) if r["paper_sequences"] else (r["paper_note"] or "-")
        paper_wrong = f"{r['paper_wrong']}/2560" if r["paper_wrong"] is not None else "-"
        ours = (f"{compact(r['median_sequences'])} [{compact(r['min_sequences'])}-{compact(r['max_sequences'])}]"
                if r["n_solved"] else f"no (cap {compact(r['cap_sequences'])})")
        if r["max_test_wrong"] is None:
            wrong = "-"
        else:
            wrong = f"{r['median_test_wrong']:.0f}/{r['test_n']}" + \
                (f" (max {r['max_test_wrong']})" if r["max_test_wrong"] != r["median_test_wrong"] else "")
        wall = f"{r['median_wall_s']:.0f} s" if math.isfinite(r["median_wall_s"]) else "-"
        settings[series] = (f"{series}: {r['optimizer']} lr {r['lr']:g}, H={r['hidden']}, batch {r['batch']}, "
                            f"init {r['init']}, cap {r['cap_steps']:,} steps")
        out.append((series, r["seq_len"], paper_seq, paper_wrong, f"{r['n_solved']}/{r['n_seeds']}", ours, wrong,
                    wall))
    return columns, out, list(settings.values())


def write_csv(rows: list[dict], path: str) -> str:
    """The table as CSV (:data:`TABLE_COLUMNS`; empty cells for missing numbers)."""
    def cell(v):
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return ""
        return f"{v:g}" if isinstance(v, float) else v

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TABLE_COLUMNS)
        w.writerows([[cell(r[c]) for c in TABLE_COLUMNS] for r in rows])
    return path


def default_out(name: str) -> str:
    return os.path.join("reproduce", name)
