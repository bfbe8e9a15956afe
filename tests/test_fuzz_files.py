"""Hostile files (issue 16): seeded mutations of a real session file (finished and interrupted) and a
real sweep file through info, info --check, export, the plots, the window's open and the sweep view,
in worker processes with a timeout; every case ends in success or one of the project's errors naming
the file. See tests/fuzz_files.py for the harness and tests/fuzz_mutations.py for the mutations.

LSTM_FUZZ_N (default 500) and LSTM_FUZZ_SEED (default 16) choose the cases; a failure prints the
command that replays it in one process.
"""
from __future__ import annotations

import os
import re
import struct

import pytest

from tests.fuzz_driver import entry_kind, run_fuzz
from tests.fuzz_files import make_bases
from tests.fuzz_mutations import lookup3, mutate

pytest.importorskip("pytestqt")

N = int(os.environ.get("LSTM_FUZZ_N", "500"))
SEED = int(os.environ.get("LSTM_FUZZ_SEED", "16"))
#: the mutations must fit in 3 minutes on a 2-core machine: their CPU time on both cores together
CPU_BUDGET_S = 2 * 180


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    return make_bases(tmp_path_factory.mktemp("fuzz-bases"))


@pytest.mark.slow
def test_mutated_files_end_in_success_or_an_error_naming_the_file(bases, tmp_path):
    report = run_fuzz(bases, N, SEED, str(tmp_path / "work"), workers=2)
    print(report.summary())
    replay = "\n".join(f"  python -m tests.fuzz_files case {bases[f['base'].split('.')[0]]} {f['seed']}"
                       f"{' sweep' if f['base'] == 'sweep.h5' else ''}" for f in report.failures[:10])
    assert not report.failures, f"{len(report.failures)} failure(s):\n{report.describe_failures()}\nreplay:\n{replay}"
    assert report.count >= N
    # every entry point saw cases, and some of each kind of outcome
    entries = {entry_kind(e) for e, _ in report.outcomes}
    assert {"info --check", "validate", "export", "export --all", "draw every plot", "window open",
            "sweep view"} <= entries, entries
    outcomes = {o for _, o in report.outcomes}
    assert outcomes == {"ok", "error"}, outcomes
    assert report.cpu_seconds < CPU_BUDGET_S, report.summary()


@pytest.mark.slow
def test_the_harness_reports_a_crash_and_a_hang_with_their_mutation(bases, tmp_path):
    report = run_fuzz(bases, 4, SEED, str(tmp_path / "work"), workers=2, timeout_s=8,
                      inject={1: "crash", 2: "hang"})
    assert report.count == 4
    got = {f["index"]: f for f in report.failures}
    assert sorted(got) == [1, 2], report.describe_failures()
    assert "crashed" in got[1]["detail"] and "hung" in got[2]["detail"]
    assert all(f["what"] not in ("", "?") for f in got.values())   # the mutation is named
    assert "Fatal Python error: Aborted" in got[1]["detail"]         # with the worker's log tail


def test_mutations_are_seeded_and_keep_an_interrupted_file_interrupted(bases, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    structural = 0
    for seed in range(40):
        what = mutate(bases["interrupted"], a, seed)
        assert mutate(bases["interrupted"], b, seed) == what
        assert a.read_bytes() == b.read_bytes(), what
        if not re.match(r"(truncated|bits|\d+ )", what):
            # a change made through h5py: the superblock still says "open for write", as the killed writer
            # left it, and its checksum holds
            head = a.read_bytes()[:48]
            assert head[11] & 0x1, what
            assert struct.unpack("<I", head[44:48])[0] == lookup3(head[:44]), what
            structural += 1
    assert structural > 10
