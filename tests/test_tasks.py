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
