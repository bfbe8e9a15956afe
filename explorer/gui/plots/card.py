"""The run card (:mod:`explorer.card`) as a figure: one row per cell, drawn as a table in the graphics
scene so it exports to PNG and SVG like every plot, and to CSV with plain numbers."""
from __future__ import annotations

import html

import pyqtgraph as pg
from PySide6 import QtWidgets

from explorer.card import CARD_COLUMNS, card_text, csv_table, run_card
from explorer.gui.plots.base import PlotGroup, cell_color, rows_key


class CardGroup(PlotGroup):
    """Per cell: solved at step N or not, best and final metric, held-out test, decay ratio, memory-gate
    saturation, parameters, ms/step."""

    name, title = "card", "Run card"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = pg.LabelItem(justify="left")
        self.addItem(self.label, row=0, col=0)
        self.cards: list[dict] = []

    def data_key(self, runs, probes, settings):
        return (rows_key(runs), tuple(r.status for r in runs))

    def draw(self, runs, probes, settings) -> None:
        """One column per run, one row per figure (as ``lstm-explorer info`` prints it): narrow enough for
        three cells side by side at 1280×800."""
        self.cards = [run_card(run) for run in runs]
        texts = [card_text(card) for card in self.cards]
        head = "<th></th>" + "".join(
            f"<th align='right'><font color='{cell_color(c['cell'])}'>{html.escape(t['cell'].upper())}</font></th>"
            for c, t in zip(self.cards, texts))
        body = "".join(
            f"<tr><td><b>{html.escape(header)}</b></td>"
            + "".join(f"<td align='right'>{html.escape(t[key])}</td>" for t in texts) + "</tr>"
            for key, header in list(CARD_COLUMNS.items())[1:])
        self.label.setText(f"<b>{self.title}</b><table cellpadding='4' cellspacing='0' border='1'>"
                           f"<tr>{head}</tr>{body}</table>", color="k", size="9pt")
        self.has_data = bool(self.cards)

    def csv_table(self, runs, probes):
        return csv_table([run_card(run) for run in runs])

    def contextMenuEvent(self, event) -> None:
        """Right-click: export the card as PNG, SVG or CSV (the plots offer the same from their menus)."""
        self.export_menu().exec(event.globalPos())

    def export_menu(self) -> QtWidgets.QMenu:
        menu = QtWidgets.QMenu(self)
        sub = menu.addMenu(f"Export “{self.name}”")
        for fmt in ("png", "svg", "csv"):
            sub.addAction(f"as {fmt.upper()}…").triggered.connect(
                lambda _=False, f=fmt: self.export_handler and self.export_handler(self.name, f))
        return menu
