"""Shared test set-up: headless Qt, and a per-session numba cache so CI reuses compiled kernels."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
