"""Seeds as bands (Qt-free): several runs of one configuration that differ only in the seed, summed up per
training step as the median curve and the min–max range over the seeds.

TensorBoard users have asked for this since 2017 (tensorflow/tensorboard#376); the window draws it for
sessions opened together as seeds (File > Open seeds as bands…, ``lstm-explorer replay --bands``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.errors import ConfigError

#: configuration fields that may differ between the seeds of one band (the rest must agree)
SEED_FIELDS = ("seed",)


@dataclass
class Band:
    """One cell's runs over seeds: ``step (S,)`` and, per step, ``median``, ``lo`` (min), ``hi`` (max) and
    ``n`` (how many seeds reached that step: until-solved runs stop at different steps)."""

    cell: str
    seeds: list
    step: np.ndarray
    median: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray


def check_same_configuration(sessions) -> dict:
    """The configuration the sessions share (all fields but the seed); :class:`ConfigError` naming the
    first field that differs, or a file that records none."""
    base, first = None, None
    for s in sessions:
        runs = s.runs
        if not runs:
            raise ConfigError(f"{s.path}: the session holds no runs")
        cfg = {k: v for k, v in dict(runs[0].config).items() if k not in SEED_FIELDS}
        if base is None:
            base, first = cfg, s.path
            continue
        for key in sorted(set(base) | set(cfg)):
            if base.get(key) != cfg.get(key):
                raise ConfigError(f"seed bands need runs that differ only in the seed: {s.path} has "
                                  f"{key}={cfg.get(key)!r}, {first} has {key}={base.get(key)!r}")
    return base or {}


def band(cell: str, runs, scalar: str, smooth=None) -> Band:
    """The band of ``scalar`` over ``runs`` (one per seed, all of ``cell``); ``smooth(values)`` is applied
    to each run's series first (the view's EMA), so the band shows the spread of the curves one reads."""
    series = []
    for run in runs:
        step, _, value = run.scalar(scalar)
        value = np.asarray(value, dtype=np.float64)
        series.append((np.asarray(step, dtype=np.int64), smooth(value) if smooth else value))
    last = max((int(s[-1]) for s, _ in series if s.size), default=0)
    grid = np.full((len(series), last), np.nan)
    for k, (step, value) in enumerate(series):
        keep = (step >= 1) & (step <= last)
        grid[k, step[keep] - 1] = value[keep]
    have = np.isfinite(grid)
    n = have.sum(axis=0)
    steps = np.arange(1, last + 1)[n > 0]
    grid = grid[:, n > 0]
    median, lo, hi = np.nanmedian(grid, axis=0), np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
    return Band(cell=cell, seeds=[r.config.get("seed") for r in runs], step=steps, median=median, lo=lo, hi=hi,
                n=n[n > 0])
