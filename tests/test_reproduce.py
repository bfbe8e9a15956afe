"""lstm-explorer reproduce: presets, the plan they build, the table "paper | ours", and one tiny run end to end."""
from __future__ import annotations

import csv
import math

import pytest

from explorer.reproduce import PRESETS, TABLE_COLUMNS, build_plan, display_rows, table


def test_presets_are_valid_plans_with_until_solved_budgets(tmp_path):
    for name, p in PRESETS.items():
        plan = build_plan(p, str(tmp_path / name))
        assert plan.base.until_solved and plan.base.steps == p.cap and plan.base.test_size == 2560
        assert plan.seq_lens == p.seq_lens and plan.cells == p.cells and plan.base.task == p.task
    assert PRESETS["hs97-adding"].paper[1000].sequences == 853_000
    assert build_plan(PRESETS["arjovsky-copy"], str(tmp_path)).vary == {"init": ("default", "default+chrono")}


def test_flags_override_the_preset(tmp_path):
    plan = build_plan(PRESETS["hs97-adding"], str(tmp_path), cells=("lstm",), seq_lens=(20,), seeds=2, hidden=16,
                      batch=4, lr=3e-3, init="forget-bias:1", cap=50, test_size=10)
    b = plan.base
    assert (plan.cells, plan.seq_lens, plan.seeds) == (("lstm",), (20,), 2)
    assert (b.hidden, b.batch, b.lr, b.init, b.steps, b.test_size) == (16, 4, 3e-3, "default+forget-bias:1", 50, 10)
    assert PRESETS["hs97-adding"].overridden(plan) == ["cells", "seq-lens", "seeds", "hidden", "batch", "lr", "init",
                                                       "cap", "test-size"]
    p = PRESETS["arjovsky-copy"]
    assert p.overridden(build_plan(p, str(tmp_path), init="default;chrono", hidden=p.hidden)) == []


def _row(cell, T, seed, solved, seq, wrong, **kw):
    return dict(cell=cell, seq_len=T, seed=seed, status="completed", solved=solved, solved_sequences=seq if solved else 0,
                test_n=2560, test_wrong=wrong, test_metric=0.001, wall_s=10.0 + seed,
                session=f"adding-hs97-{cell}-T{T}-s{seed}.h5", variant="", baseline_metric=0.04, final_metric=0.001,
                **kw)


def test_table_puts_the_paper_beside_our_median_and_range(tmp_path):
    p = PRESETS["hs97-adding"]
    plan = build_plan(p, str(tmp_path), seq_lens=(100,), seeds=3)
    results = [_row("lstm", 100, 0, True, 40_000, 0), _row("lstm", 100, 1, True, 60_000, 2),
               _row("lstm", 100, 2, False, 0, 900), *[_row("rnn", 100, s, False, 0, 2000) for s in range(3)]]
    rows = {r["cell"]: r for r in table(p, plan, results)}
    lstm, rnn = rows["lstm"], rows["rnn"]
    assert (lstm["paper_sequences"], lstm["paper_wrong"]) == (74_000, 1)
    assert (lstm["n_seeds"], lstm["n_solved"], lstm["median_sequences"], lstm["min_sequences"],
            lstm["max_sequences"]) == (3, 2, 50_000, 40_000, 60_000)
    assert (lstm["median_test_wrong"], lstm["max_test_wrong"], lstm["median_wall_s"]) == (2, 900, 11.0)
    assert (lstm["optimizer"], lstm["lr"], lstm["hidden"], lstm["batch"], lstm["init"]) == \
        ("adam", 0.01, 64, 32, "default+chrono:100")
    assert rnn["paper_sequences"] is None and rnn["n_solved"] == 0 and math.isnan(rnn["median_sequences"])
    assert rnn["init"] == "default"                  # chrono does not apply to the RNN
    columns, cells, settings = display_rows([rnn, lstm])
    assert cells[1][2:6] == ("74k", "1/2560", "2/3", "50k [40k-60k]") and cells[0][5].startswith("no (cap")
    assert any("lstm: adam lr 0.01, H=64, batch 32, init default+chrono:100" in s for s in settings)


def test_reproduce_end_to_end_tiny(tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "rep"
    argv = ["reproduce", "hs97-temporal", "--seq-lens", "12", "--seeds", "1", "--cells", "lstm", "--hidden", "8",
            "--batch", "8", "--cap", "600", "--test-size", "32", "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "reproduce hs97-temporal" in captured.err and "at most 600 steps (4,800 sequences)" in captured.err
    assert "(the preset's; overridden here: --cells, --seq-lens, --seeds, --hidden, --batch, --cap, --test-size)" \
        in captured.err      # its reasons name H=64: the run says which settings are not the preset's
    assert "paper seq." in captured.out and "lstm: adam lr 0.01, H=8, batch 8" in captured.out   # no paper row at T=12
    with open(out / "reproduce.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(TABLE_COLUMNS) and len(rows) == 1
    r = rows[0]
    assert (r["cell"], r["seq_len"], r["paper_sequences"], r["n_solved"], r["test_n"]) == ("lstm", "12", "", "1", "32")
    assert int(r["median_sequences"]) % 8 == 0 and r["init"] == "default+chrono:12"
    assert (out / "reproduce.png").stat().st_size > 1000 and (out / "reproduce.svg").stat().st_size > 1000
    # resumable: a second call trains nothing and writes the same table
    assert main(argv) == 0
    with open(out / "reproduce.csv") as fh:
        assert list(csv.DictReader(fh))[0]["median_sequences"] == r["median_sequences"]


def test_unknown_preset_is_a_usage_error(capsys):
    from explorer.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "hs98"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_the_papers_optimizer_is_one_flag_away(tmp_path, capsys):
    """`--optimizer rmsprop:0.9 --clip 0` (the copy-task papers' RMSprop, no clipping) overrides the preset's
    Adam and clip, and the printed settings say so; a bad optimizer is a one-line error before any training."""
    from explorer.cli import main
    from explorer.commands.reproduce import print_preset

    p = PRESETS["arjovsky-copy"]
    plan = build_plan(p, str(tmp_path), optimizer="rmsprop:0.9", clip=0.0)
    assert (plan.base.optimizer, plan.base.clip) == ("rmsprop:0.9", 0.0)
    assert p.overridden(plan) == ["optimizer", "clip"]
    print_preset(p, plan)
    err = capsys.readouterr().err
    assert "training: rmsprop:0.9 lr 0.001, clip 0," in err and "overridden here: --optimizer, --clip" in err
    assert main(["reproduce", "arjovsky-copy", "--optimizer", "rmsprop:2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "smoothing constant must be in [0, 1)" in err and len(err.strip().splitlines()) == 1
