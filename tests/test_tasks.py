"""Task generators: shapes, layouts, targets, baselines, metrics, solved rules, determinism."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.errors import ConfigError
from explorer.tasks import TASKS, Batch, make_task

MIN_T = {"adding": 2, "copy": 1, "temporal": 10, "adding-hs97": 4, "temporal-hs97": 10}


def softmax_ce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy, ``logits : (..., C)``, ``labels : (...)``."""
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-np.take_along_axis(log_p, labels[..., None], axis=-1).mean())


# -- interface, shapes, dtypes ---------------------------------------------------------

@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("extra", [0, 1, 7, 90])
def test_shapes_and_dtypes(name, extra):
    T = MIN_T[name] + extra
    task = make_task(name, T)
    batch = task.sample(np.random.default_rng(0), 5)
    assert isinstance(batch, Batch)
    L = {"adding": T, "temporal": T, "copy": T + 20, "adding-hs97": T + T // 10, "temporal-hs97": T + T // 10}[name]
    assert (task.name, task.seq_len, task.length) == (name, T, L)
    assert T <= batch.x.shape[0] <= L       # variable-length tasks: one length per batch in [T, T + T//10]
    assert batch.x.shape[1:] == (5, task.n_in) and batch.x.dtype == np.float32
    if name == "copy":
        assert batch.y.shape == (L, 5) and batch.y.dtype == np.int64
        assert task.window == L
    else:
        assert batch.y.shape == (5,)
        assert batch.y.dtype == (np.float32 if name.startswith("adding") else np.int64)
        assert task.window == 1


@pytest.mark.parametrize("name, n_in, n_out, loss_kind, metric_name, higher", [
    ("adding", 2, 1, "mse_last", "mse", False),
    ("copy", 10, 9, "ce_window", "accuracy", True),
    ("temporal", 8, 4, "ce_last", "accuracy", True),
])
def test_static_attributes(name, n_in, n_out, loss_kind, metric_name, higher):
    task = make_task(name, 50)
    assert (task.n_in, task.n_out, task.loss_kind, task.metric_name, task.higher_is_better) == \
        (n_in, n_out, loss_kind, metric_name, higher)


@pytest.mark.parametrize("name", TASKS)
def test_deterministic_from_seed(name):
    task = make_task(name, 30)
    a = task.sample(np.random.default_rng(123), 16)
    b = task.sample(np.random.default_rng(123), 16)
    c = task.sample(np.random.default_rng(124), 16)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)


# -- adding ----------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(T=st.integers(2, 300), batch=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_adding_two_markers_one_per_half_and_target_is_their_sum(T, batch, seed):
    b = make_task("adding", T).sample(np.random.default_rng(seed), batch)
    values, marks = b.x[:, :, 0], b.x[:, :, 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(marks)) <= {0.0, 1.0}
    assert (marks[: T // 2].sum(axis=0) == 1).all()
    assert (marks[T // 2:].sum(axis=0) == 1).all()
    np.testing.assert_allclose(b.y, (values * marks).sum(axis=0), rtol=1e-6)


def test_adding_marker_positions_cover_each_half():
    T = 9
    b = make_task("adding", T).sample(np.random.default_rng(0), 2000)
    t = np.nonzero(b.x[:, :, 1])[0]
    assert set(t) == set(range(T))


def test_adding_baseline_is_mse_of_always_one():
    task = make_task("adding", 20)
    b = task.sample(np.random.default_rng(0), 40_000)
    mse = task.metric(np.ones((40_000, 1), dtype=np.float32), b.y)
    assert task.baseline_loss == task.baseline_metric == pytest.approx(1 / 6)
    assert mse == pytest.approx(1 / 6, abs=0.006)   # sd of (s-1)^2 is ~0.2, se ~0.001


def test_adding_metric_and_solved():
    task = make_task("adding", 10)
    y = np.array([0.5, 1.0, 1.5, 2.0], dtype=np.float32)
    out = np.array([[0.5], [1.2], [1.5], [1.6]], dtype=np.float32)
    assert task.metric(out, y) == pytest.approx((0.04 + 0.16) / 4)
    assert task.solved(loss=1.0, metric=0.0099)
    assert not task.solved(loss=0.0, metric=0.01)
    assert not task.solved(loss=0.0, metric=float("nan"))
    assert task.describe() == "adding problem, T=10: MSE, chance 0.167, solved below 0.01"


# -- copy ------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 200), batch=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_copy_layout(T, batch, seed):
    b = make_task("copy", T).sample(np.random.default_rng(seed), batch)
    assert (b.x.sum(axis=-1) == 1).all()                 # one-hot at every step
    inp = b.x.argmax(axis=-1)                            # (L, B)
    symbols = inp[:10]
    assert ((symbols >= 1) & (symbols <= 8)).all()
    assert (inp[10:T + 9] == 0).all()                    # T - 1 blanks
    assert (inp[T + 9] == 9).all()                       # the delimiter
    assert (inp[T + 10:] == 0).all()                     # 10 blanks while recalling
    assert (b.y[:T + 10] == 0).all()
    np.testing.assert_array_equal(b.y[T + 10:], symbols)


def test_copy_uses_all_eight_symbols():
    b = make_task("copy", 5).sample(np.random.default_rng(0), 200)
    assert set(np.unique(b.x.argmax(-1)[:10])) == set(range(1, 9))


@pytest.mark.parametrize("T", [1, 100])
def test_copy_baseline_is_perfect_blanks_and_uniform_symbols(T):
    task = make_task("copy", T)
    b = task.sample(np.random.default_rng(0), 64)
    L = T + 20
    logits = np.full((L, 64, 9), -1e4)
    logits[:T + 10, :, 0] = 0.0                          # certain blank where the target is blank
    logits[T + 10:, :, 1:] = 0.0                         # uniform over the 8 symbols while recalling
    assert task.baseline_loss == pytest.approx(10 * math.log(8) / L)
    assert softmax_ce(logits, b.y) == pytest.approx(task.baseline_loss, rel=1e-9)


def test_copy_baseline_metric_is_random_symbol_guess():
    task = make_task("copy", 10)
    b = task.sample(np.random.default_rng(0), 4000)
    guess = np.random.default_rng(1).integers(1, 9, size=b.y.shape)
    logits = np.eye(9)[guess]
    assert task.baseline_metric == 1 / 8
    assert task.metric(logits, b.y) == pytest.approx(1 / 8, abs=0.01)


def test_copy_metric_counts_only_the_recalled_symbols():
    task = make_task("copy", 3)
    b = task.sample(np.random.default_rng(0), 4)
    logits = np.eye(9)[b.y].copy()                       # (L, B, 9), all correct
    assert task.metric(logits, b.y) == 1.0
    logits[:13] = np.eye(9)[5]                           # wrong blanks do not count
    assert task.metric(logits, b.y) == 1.0
    logits[-1] = np.eye(9)[0]                            # last symbol wrong in all 4 sequences
    assert task.metric(logits, b.y) == pytest.approx(0.9)
    assert task.solved(loss=9.0, metric=0.99)
    assert not task.solved(loss=0.0, metric=0.98)
    assert task.describe() == ("copy task, T=3 (L=23): per-symbol accuracy, chance 0.125, "
                               "solved at 0.99 or above")


# -- temporal order --------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(T=st.integers(10, 300), batch=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_temporal_layout_and_classes(T, batch, seed):
    b = make_task("temporal", T).sample(np.random.default_rng(seed), batch)
    assert (b.x.sum(axis=-1) == 1).all()
    sym = b.x.argmax(axis=-1)                            # (T, B): 0 E, 1 B, 2 X, 3 Y, 4..7 a..d
    assert (sym[0] == 0).all() and (sym[-1] == 1).all()
    assert (sym[1:-1] >= 2).all()
    for j in range(batch):
        t1, t2 = np.nonzero((sym[:, j] == 2) | (sym[:, j] == 3))[0]   # exactly two relevant
        assert T // 10 <= t1 <= T // 5 and T // 2 <= t2 <= 3 * T // 5
        assert b.y[j] == 2 * (sym[t1, j] - 2) + (sym[t2, j] - 2)      # XX 0, XY 1, YX 2, YY 3


def test_temporal_windows_at_paper_length_and_minimum():
    assert make_task("temporal", 100).windows == ((10, 20), (50, 60))
    assert make_task("temporal", 10).windows == ((1, 2), (5, 6))


def test_temporal_classes_balanced_and_baselines():
    task = make_task("temporal", 40)
    b = task.sample(np.random.default_rng(0), 8000)
    np.testing.assert_allclose(np.bincount(b.y, minlength=4) / 8000, 0.25, atol=0.02)
    assert task.baseline_loss == pytest.approx(math.log(4))
    assert softmax_ce(np.zeros((8000, 4)), b.y) == pytest.approx(task.baseline_loss)
    assert task.metric(np.eye(4)[np.zeros(8000, dtype=int)], b.y) == pytest.approx(0.25, abs=0.02)
    assert task.baseline_metric == 0.25


def test_temporal_metric_and_solved():
    task = make_task("temporal", 10)
    y = np.array([0, 1, 2, 3])
    logits = np.eye(4)[[0, 1, 2, 0]] * 3.0 - 1.0
    assert task.metric(logits, y) == 0.75
    assert task.solved(loss=5.0, metric=0.95)
    assert not task.solved(loss=0.0, metric=0.94)
    assert task.describe() == "temporal order task, T=10: accuracy, chance 0.25, solved at 0.95 or above"


# -- make_task errors ------------------------------------------------------------------

def test_unknown_task_lists_the_choices():
    with pytest.raises(ConfigError, match="adding, copy, temporal, adding-hs97, temporal-hs97"):
        make_task("parity", 10)


@pytest.mark.parametrize("name", TASKS)
def test_too_short_seq_len_names_the_minimum(name):
    make_task(name, MIN_T[name])
    with pytest.raises(ConfigError, match=f">= {MIN_T[name]}"):
        make_task(name, MIN_T[name] - 1)


@pytest.mark.parametrize("bad", [2.5, "20", True])
def test_non_integer_seq_len(bad):
    with pytest.raises(ConfigError, match="integer"):
        make_task("copy", bad)


# -- the paper-exact tasks (Hochreiter & Schmidhuber 1997) -------------------------------

def _hs97_batch(name, T, batch, seed):
    """A batch of a paper-exact task and its length, checked to lie in [T, T + T//10]."""
    b = make_task(name, T).sample(np.random.default_rng(seed), batch)
    assert T <= b.x.shape[0] <= T + T // 10
    return b, b.x.shape[0]


def _adding_marks(b):
    """Marker positions ``(p1, p2)`` per sequence (the two pairs marked 1.0, in time order)."""
    marks = b.x[:, :, 1]
    pos = [np.flatnonzero(marks[:, j] == 1.0) for j in range(marks.shape[1])]
    assert all(len(p) == 2 for p in pos)
    return np.array(pos)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(20, 400), batch=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_adding_hs97_follows_the_paper(T, batch, seed):
    b, L = _hs97_batch("adding-hs97", T, batch, seed)
    values, marks = b.x[:, :, 0].astype(np.float64), b.x[:, :, 1]
    assert ((values >= -1) & (values <= 1)).all()
    assert set(np.unique(marks)) <= {-1.0, 0.0, 1.0}
    pos = _adding_marks(b)
    assert (pos[:, 1] < T // 2 - 1 + 1).all()            # both marks among the first T/2 - 1 unmarked (+ X1's pair)
    assert (pos.min(axis=1) < 10).all()                  # one of them (X1) among the first ten pairs
    assert (marks[1:L - 1][(marks[1:L - 1] != 1.0)] == 0).all()          # unmarked inner pairs: 0
    assert (marks[L - 1] == -1).all()                                    # the last pair: -1
    assert ((marks[0] == -1) | (marks[0] == 1)).all()                    # the first: -1 unless marked
    cols = np.arange(batch)
    np.testing.assert_allclose(b.y, 0.5 + (values[pos[:, 0], cols] + values[pos[:, 1], cols]) / 4,
                               rtol=1e-6, atol=2e-7)   # float32 targets: their rounding, ~6e-8, near 0


def test_adding_hs97_first_pair_marked_counts_zero_and_marks_are_spread():
    T = 100
    b = make_task("adding-hs97", T).sample(np.random.default_rng(0), 20_000)
    pos = _adding_marks(b)
    first = b.x[0, :, 1] == 1.0
    assert 0.09 < first.mean() < 0.13                     # X1 on the first pair 1/10 (+ X2 there ~ 0.9/49)
    zero = np.mean(b.x[0, first, 0] == 0)                 # X1 there is set to 0 ("we set X1 to zero"); X2 is not
    assert zero == pytest.approx(0.1 / (0.1 + 0.9 / (T // 2 - 1)), abs=0.03)
    assert set(np.unique(pos)) == set(range(T // 2))      # X2 among the first T/2 - 1 unmarked pairs: 0..T/2-1
    # the chance level (always 0.5) is what baseline_metric says
    assert np.mean((b.y - 0.5) ** 2) == pytest.approx(make_task("adding-hs97", T).baseline_metric, rel=0.03)


def test_adding_hs97_lengths_cover_the_range_and_the_test_set_too():
    task = make_task("adding-hs97", 50)
    rng = np.random.default_rng(0)
    assert task.lengths == (50, 55) and task.length == 55
    assert {task.sample(rng, 2).x.shape[0] for _ in range(300)} == set(range(50, 56))
    tests = task.test_batches(np.random.default_rng(1), 600)
    assert sorted(b.x.shape[0] for b in tests) == list(range(50, 56))   # one batch per length, all present
    assert sum(b.x.shape[1] for b in tests) == 600
    assert task.probe_sequence(np.random.default_rng(2)).x.shape == (55, 1, 2)
    with pytest.raises(ValueError, match="outside"):
        task.sample(rng, 1, length=56)


def test_adding_hs97_correct_rule_and_error():
    task = make_task("adding-hs97", 100)
    y = np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
    out = np.array([[0.5], [0.539], [0.459], [0.6]])
    np.testing.assert_array_equal(task.correct(out, y), [True, True, False, False])   # |error| < 0.04
    np.testing.assert_allclose(task.sequence_error(out, y), [0, 0.039 ** 2, 0.041 ** 2, 0.01], atol=1e-9)
    assert task.sequence_rule == "|error| < 0.04"
    assert "average training error < 0.01" in task.describe() and "L=100..110" in task.describe()


@settings(max_examples=20, deadline=None)
@given(T=st.integers(10, 300), batch=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
def test_temporal_hs97_follows_the_paper(T, batch, seed):
    b, _ = _hs97_batch("temporal-hs97", T, batch, seed)
    sym = b.x.argmax(axis=-1)
    assert (sym[0] == 0).all() and (sym[-1] == 1).all()          # E first, B (the trigger) last
    for j in range(batch):
        t1, t2 = np.nonzero((sym[:, j] == 2) | (sym[:, j] == 3))[0]
        assert T // 10 <= t1 <= T // 5 and T // 2 <= t2 <= 3 * T // 5   # 10..20 and 50..60 at T = 100
        assert b.y[j] == 2 * (sym[t1, j] - 2) + (sym[t2, j] - 2)


def test_temporal_hs97_rule_on_softmax_outputs():
    task = make_task("temporal-hs97", 100)
    assert task.lengths == (100, 110)
    y = np.array([0, 0, 1])
    p = np.array([[0.71, 0.1, 0.1, 0.09], [0.69, 0.11, 0.1, 0.1], [0.05, 0.9, 0.03, 0.02]])
    logits = np.log(p)
    np.testing.assert_array_equal(task.correct(logits, y), [True, False, True])   # every |p_k - t_k| < 0.3
    np.testing.assert_allclose(task.sequence_error(logits, y)[0], 0.29 ** 2 + 0.1 ** 2 + 0.1 ** 2 + 0.09 ** 2)


# -- stop rules ----------------------------------------------------------------------------

def test_paper_stop_rule_needs_2000_correct_in_a_row_and_a_small_error():
    from explorer.stop_rules import PaperStopRule

    task = make_task("adding-hs97", 100)
    rule = task.stop_rule()
    assert isinstance(rule, PaperStopRule) and rule.window == 2000
    y = np.full(100, 0.5, dtype=np.float32)
    good, bad = np.full((100, 1), 0.52), np.full((100, 1), 0.52)
    bad[37] = 0.6                                        # one sequence wrong
    results = [rule.update(good, y) for _ in range(19)]
    assert not any(results)                              # 1,900 sequences: not yet 2,000
    assert rule.update(good, y)                          # the 2,000th: all correct, error 4e-4 < 0.01
    rule = task.stop_rule()
    for _ in range(10):
        rule.update(good, y)
    assert not rule.update(bad, y)
    held = [rule.update(good, y) for _ in range(20)]
    assert held == [False] * 19 + [True]                 # the wrong one left the window of 2,000 at last
    assert task.stop_rule(window=10).update(np.full((10, 1), 0.539), y[:10])     # error 0.0015 < 0.01, all correct
    temporal, labels = make_task("temporal-hs97", 100), np.zeros(4, dtype=np.int64)
    logits = np.log(np.array([[0.71, 0.0967, 0.0967, 0.0966]] * 4))    # all correct (p_true > 0.7) ...
    assert temporal.correct(logits, labels).all()
    assert temporal.sequence_error(logits, labels).mean() > 0.1          # ... but the average error is 0.112
    assert not temporal.stop_rule(window=4).update(logits, labels)


def test_metric_stop_rule_is_a_running_mean_over_the_last_sequences():
    from explorer.stop_rules import MetricStopRule

    task = make_task("adding", 20)
    rule = task.stop_rule(window=100)
    assert isinstance(rule, MetricStopRule)
    y = np.ones(50, dtype=np.float32)
    assert not rule.update(np.full((50, 1), 1.0), y)     # 50 < 100 sequences seen
    assert rule.update(np.full((50, 1), 1.05), y)        # mean MSE (0 + 0.0025) / 2 < 0.01
    assert not rule.update(np.full((50, 1), 1.2), y)     # (0.0025 + 0.04) / 2 >= 0.01
    assert "last 100 training sequences < 0.01" in rule.describe()
