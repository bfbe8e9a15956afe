"""Every tab of a session lays out whole at the window sizes people use (issue 14): each plot, colour bar
and label of every group lies inside the part of its view that is on screen, at 1280×800, 1400×860 and
1920×1080, for two cells and for three. ``tab_screenshots`` also saves what it checked (docs/screens)."""
from __future__ import annotations

import os

import pytest

from tests.gui_fixtures import record_session

pytest.importorskip("pytestqt")

SIZES = ((1280, 800), (1400, 860), (1920, 1080))


@pytest.fixture(scope="module")
def two_cells(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("layout") / "two.h5", seq_len=30, hidden=16, steps=60,
                          probe_every=20, until_solved=False)


@pytest.fixture(scope="module")
def three_cells(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("layout") / "three.h5", seq_len=30, hidden=16, steps=60,
                          probe_every=20, cells=("rnn", "lstm", "gru"))


def clipped_items(group) -> list[str]:
    """Layout items (plots, colour bars, labels) of ``group`` reaching outside its visible viewport."""
    from PySide6 import QtCore

    visible = group.mapToScene(group.viewport().rect()).boundingRect().adjusted(-1, -1, 1, 1)
    out = []
    layout = group.ci.layout
    for i in range(layout.count()):
        item = layout.itemAt(i)
        rect = item.mapRectToScene(item.boundingRect()) if hasattr(item, "mapRectToScene") else \
            QtCore.QRectF(item.geometry())
        if rect.width() < 20 or rect.height() < 20 or not visible.contains(rect):
            title = getattr(getattr(item, "titleLabel", None), "text", "") or type(item).__name__
            out.append(f"{group.name}: {title} at {rect.getRect()} (visible {visible.getRect()})")
    return out


def tab_screenshots(window, view, folder: str | None = None, stem: str = "") -> list[str]:
    """Show each tab of ``view`` in turn; returns every clipped item (and saves a PNG per tab to ``folder``)."""
    from PySide6 import QtWidgets

    problems = []
    for i in range(view.tabs.count()):
        view.tabs.setCurrentIndex(i)
        view.refresh(force=True)
        for _ in range(3):
            QtWidgets.QApplication.processEvents()
        for group in view.groups.values():
            if group.isVisible():
                problems += [f"tab {view.tabs.tabText(i)!r}: {p}" for p in clipped_items(group)]
        if folder:
            name = view.tabs.tabText(i).lower().replace("&&", "and").replace(" ", "-")
            window.grab().save(os.path.join(folder, f"{stem}{name}.png"), "PNG")
    return problems


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_tab_lays_out_whole(qtbot, tmp_path, monkeypatch, two_cells, three_cells, size):
    from PySide6 import QtWidgets

    from explorer.gui.window import MainWindow

    monkeypatch.setenv("LSTM_EXPLORER_DATA_DIR", str(tmp_path / "data"))
    w = MainWindow(check_cuda=False, prewarm=False)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    QtWidgets.QApplication.processEvents()
    problems = []
    for path in (two_cells, three_cells):
        (view,) = w.open_files([path])
        problems += [f"{os.path.basename(path)}: {p}" for p in tab_screenshots(w, view)]
    assert not problems, "\n".join(problems)
