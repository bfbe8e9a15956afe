"""The run card: one session's claims per cell, in `info`, `info --json`, `export --plot card` and the window."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from tests.gui_fixtures import record_session

#: both cells solve temporal-hs97 at T = 12 within a few hundred steps, the LSTM first
SOLVES = dict(task="temporal-hs97", seq_len=12, steps=600, probe_every=100, until_solved=True, test_size=32, seed=0)


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("card") / "card.h5", **SOLVES)


def test_the_card_holds_what_the_run_recorded(session_file):
    from explorer.card import card_text, decay_ratio, run_card
    from sessions import open_session

    with open_session(session_file) as s:
        for run in s.runs:
            card = run_card(run)
            assert card["solved"] == run.solved_at and card["solved"] is not None
            assert card["test"]["n"] == 32 and card["test"]["wrong"] == run.test["wrong"]
            assert card["decay_ratio"] == decay_ratio(run.probe_series("grad_norm_t")[-1])
            _, _, metric = run.scalar("metric")
            assert card["best_metric"] == pytest.approx(np.max(metric))        # accuracy: higher is better
            assert card["final_metric"] == pytest.approx(np.mean(metric[-50:]))
            assert card["param_count"] == run.param_count and card["ms_per_step"] > 0
            text = card_text(card)
            assert text["solved"].startswith(f"step {run.solved_at['step']:,} (")
            if run.cell == "lstm":
                assert card["memory_gate"] == "f"
                f = list(run.gate_names).index("f")
                assert card["memory_gate_saturation"] == pytest.approx(run.probe_series("saturation")[-1][f])
                assert text["memory_gate_saturation"].startswith("f: ")
            else:
                assert card["memory_gate"] is None and math.isnan(card["memory_gate_saturation"])
                assert text["memory_gate_saturation"] == "—"


def test_info_prints_the_card_and_json_carries_it(session_file, capsys):
    from explorer.cli import main

    assert main(["info", str(session_file)]) == 0
    out = capsys.readouterr().out
    card = out[out.index("run card"):]
    assert "solved at" in card and "held-out test" in card and "memory gate saturated" in card
    assert "f: " in card and "accuracy" in card
    assert main(["info", str(session_file), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    lstm = next(r for r in doc["runs"] if r["cell"] == "lstm")
    assert lstm["card"]["memory_gate"] == "f" and 0 <= lstm["card"]["memory_gate_saturation"] <= 1
    rnn = next(r for r in doc["runs"] if r["cell"] == "rnn")
    assert rnn["card"]["memory_gate"] is None and rnn["card"]["memory_gate_saturation"] is None   # NaN -> null


def test_export_card_as_csv_png_and_svg(session_file, tmp_path):
    from explorer.cli import main
    from sessions import open_session

    assert main(["export", str(session_file), "--plot", "card", "-o", str(tmp_path / "card.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "card.csv")))
    with open_session(session_file) as s:
        assert [r["cell"] for r in rows] == s.run_names
        for r in rows:
            run = s.run(r["cell"])
            assert int(r["solved_step"]) == run.solved_at["step"] and int(r["test_n"]) == 32
            assert int(r["param_count"]) == run.param_count
    for fmt in ("png", "svg"):
        out = tmp_path / f"card.{fmt}"
        assert main(["export", str(session_file), "--plot", "card", "-o", str(out)]) == 0
        assert out.stat().st_size > 5000
    assert "solved at" in (tmp_path / "card.svg").read_text(encoding="utf-8")


def test_the_window_has_a_run_card_tab(session_file, qtbot, window):
    (view,) = window.open_files([session_file])
    tabs = [view.tabs.tabText(i) for i in range(view.tabs.count())]
    assert "Run card" in tabs
    view.tabs.setCurrentIndex(tabs.index("Run card"))
    group = view.groups["card"]
    qtbot.waitUntil(lambda: group.has_data, timeout=5000)
    assert [c["name"] for c in group.cards] == view.session.run_names
    assert "solved at" in group.label.text and "LSTM" in group.label.text
