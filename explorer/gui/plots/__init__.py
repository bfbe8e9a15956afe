"""The plot panels: one :class:`PlotGroup` per exportable plot name, and :class:`SessionView`.

Every group draws from run objects with the ``sessions.Run`` read API (a replayed
file) or :class:`explorer.gui.data.LiveRun` (a training in progress) — the same
code path. Plot items are created once and updated with ``setData`` from the
view's timer; curves use peak downsampling and clip-to-view.

Plot names (stable; used by the context menus, File > Export all and
``lstm-explorer export --plot``): see :data:`PLOT_NAMES`.
"""
from __future__ import annotations

from explorer.gui.names import PLOT_NAMES
from explorer.gui.plots.base import (GATE_PALETTE, PlotDataError, PlotGroup, cell_color, cell_label, cell_title,
                                     default_settings, ema, ema_carry, log10_safe)
from explorer.gui.plots.gates import gate_panels
from explorer.gui.plots.registry import GROUP_CLASSES
from explorer.gui.plots.view import SessionView

__all__ = ["GATE_PALETTE", "GROUP_CLASSES", "PLOT_NAMES", "PlotDataError", "PlotGroup", "SessionView", "cell_color",
           "cell_label", "cell_title", "default_settings", "ema", "ema_carry", "gate_panels", "log10_safe"]
