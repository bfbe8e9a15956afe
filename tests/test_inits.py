"""Initialisations (kernels/inits.py): the grammar, its errors, and every init held to its formula
on the *effective* bias bias_ih + bias_hh (set once, never doubled)."""
import numpy as np
import pytest

from kernels.errors import KernelInputError
from kernels.inits import Init, InitSpec, describe, init_params, parse_init, parse_init_list
from kernels.params import init_params as params_init_params

I, H, K = 3, 16, 2


def _p(cell, init, seed=0, seq_len=None, dtype=np.float64):
    return init_params(cell, I, H, K, np.random.default_rng(seed), dtype, init=init, seq_len=seq_len)


def _rows(p, k):
    return slice(k * H, (k + 1) * H)


def test_default_is_the_old_pytorch_uniform_bit_for_bit():
    """init_params's positional call, unchanged: every entry U(-1/√H, 1/√H) in param_shapes order."""
    rng = np.random.default_rng(5)
    bound = 1.0 / np.sqrt(H)
    want = {name: rng.uniform(-bound, bound, size=shape).astype(np.float32) for name, shape in
            [("weight_ih", (4 * H, I)), ("weight_hh", (4 * H, H)), ("bias_ih", (4 * H,)), ("bias_hh", (4 * H,)),
             ("readout.weight", (K, H)), ("readout.bias", (K,))]}
    got = params_init_params("lstm", I, H, K, np.random.default_rng(5), np.float32)
    assert list(got) == list(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
        assert got[k].dtype == np.float32


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_init_keeps_w_ih_and_the_readout_of_the_default(cell):
    base = _p(cell, "default")
    for init in ("orthogonal", "identity:0.5"):
        p = _p(cell, init)
        for k in ("weight_ih", "readout.weight", "readout.bias"):
            np.testing.assert_array_equal(p[k], base[k])


@pytest.mark.parametrize("cell, blocks", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_orthogonal_makes_each_gate_block_orthogonal_and_biases_zero(cell, blocks):
    p = _p(cell, "orthogonal")
    for k in range(blocks):
        W = p["weight_hh"][_rows(p, k)]
        np.testing.assert_allclose(W @ W.T, np.eye(H), atol=1e-12)
    assert not np.allclose(p["weight_hh"][:H], p["weight_hh"][H:2 * H]) if blocks > 1 else True
    assert not p["bias_ih"].any() and not p["bias_hh"].any()
    W = _p(cell, "orthogonal:2")["weight_hh"][:H]
    np.testing.assert_allclose(W @ W.T, 4 * np.eye(H), atol=1e-12)


@pytest.mark.parametrize("cell, blocks", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_identity_is_s_times_i_per_block(cell, blocks):
    for text, s in (("identity", 1.0), ("identity:0.25", 0.25)):
        p = _p(cell, text)
        for k in range(blocks):
            np.testing.assert_array_equal(p["weight_hh"][_rows(p, k)], s * np.eye(H))
        assert not p["bias_ih"].any() and not p["bias_hh"].any()


@pytest.mark.parametrize("text, b", [("forget-bias", 1.0), ("forget-bias:2.5", 2.5), ("orthogonal+forget-bias:1", 1.0)])
def test_forget_bias_sets_the_effective_lstm_forget_bias_once(text, b):
    p = _p("lstm", text)
    effective = p["bias_ih"] + p["bias_hh"]
    np.testing.assert_array_equal(effective[_rows(p, 1)], b)      # f
    assert not p["bias_hh"][_rows(p, 1)].any()                     # written once: into bias_ih
    base = _p("lstm", "orthogonal" if text.startswith("orthogonal") else "default")
    for k in (0, 2, 3):                                            # i, g, o untouched by the bias init
        np.testing.assert_array_equal(effective[_rows(p, k)], (base["bias_ih"] + base["bias_hh"])[_rows(p, k)])


def test_forget_bias_on_the_gru_raises_the_update_gate_z():
    """h' = (1 - z) n + z h: z keeps h, so "remember longer" is b_z = +b."""
    p = _p("gru", "forget-bias:3")
    effective = p["bias_ih"] + p["bias_hh"]
    np.testing.assert_array_equal(effective[_rows(p, 1)], 3.0)
    assert not p["bias_hh"][_rows(p, 1)].any()


@pytest.mark.parametrize("tmax_text, seq_len, tmax", [("chrono", 200, 200), ("chrono:50", 200, 50), ("chrono:50", None, 50)])
def test_chrono_lstm_forget_and_input_bias_follow_the_formula(tmax_text, seq_len, tmax):
    """Tallec & Ollivier 2018: b_f ~ log U[1, T_max - 1], b_i = -b_f, on the effective bias."""
    p = _p("lstm", tmax_text, seq_len=seq_len)
    effective = p["bias_ih"] + p["bias_hh"]
    b_f, b_i = effective[_rows(p, 1)], effective[_rows(p, 0)]
    assert np.all(b_f >= 0) and np.all(b_f <= np.log(tmax - 1))
    np.testing.assert_array_equal(b_i, -b_f)
    assert not p["bias_hh"][_rows(p, 1)].any() and not p["bias_hh"][_rows(p, 0)].any()
    # the values are log of the uniform draws that follow the default's draws in the same stream
    rng = np.random.default_rng(0)
    bound = 1.0 / np.sqrt(H)
    for shape in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (K, H), (K,)]:
        rng.uniform(-bound, bound, size=shape)
    np.testing.assert_allclose(b_f, np.log(rng.uniform(1.0, tmax - 1.0, size=H)), rtol=1e-15)


def test_chrono_gru_sets_only_plus_log_uniform_on_z():
    p = _p("gru", "chrono:100")
    base = _p("gru", "default")
    effective = p["bias_ih"] + p["bias_hh"]
    b_z = effective[_rows(p, 1)]
    assert np.all(b_z >= 0) and np.all(b_z <= np.log(99)) and b_z.std() > 0
    for k in (0, 2):
        np.testing.assert_array_equal(effective[_rows(p, k)], (base["bias_ih"] + base["bias_hh"])[_rows(p, k)])


def test_chrono_needs_a_t_max():
    with pytest.raises(KernelInputError, match="chrono needs T_max: write chrono:T_max"):
        _p("lstm", "chrono")


def test_per_cell_items_override_and_plain_bias_inits_skip_the_rnn():
    spec = parse_init("lstm=chrono,rnn=identity")
    assert spec.for_cell("lstm") == Init(bias="chrono") and spec.for_cell("rnn") == Init("identity")
    assert spec.for_cell("gru") == Init()
    spec = parse_init("orthogonal+forget-bias:1")
    assert spec.for_cell("rnn") == Init("orthogonal")               # no memory gate: bias init skipped
    assert spec.for_cell("lstm") == Init("orthogonal", None, "forget-bias", 1.0)
    p = _p("rnn", "chrono", seq_len=10)                              # a plain chrono leaves the RNN at default
    np.testing.assert_array_equal(p["weight_hh"], _p("rnn", "default")["weight_hh"])
    spec = parse_init("default,lstm=forget-bias:2")
    assert spec.for_cell("lstm").value == 2.0 and spec.for_cell("gru") == Init()


@pytest.mark.parametrize("text", ["default", "orthogonal+forget-bias:1", "identity:0.5", "chrono:750",
                                  "lstm=chrono,rnn=identity", "identity,lstm=orthogonal+chrono:30"])
def test_canonical_text_parses_back(text):
    spec = parse_init(text)
    assert isinstance(spec, InitSpec)
    assert parse_init(spec.text()) == spec
    assert parse_init(spec) is spec


def test_describe_fills_in_the_defaults():
    assert describe("orthogonal+forget-bias") == "orthogonal+forget-bias"
    assert describe("orthogonal+forget-bias", "lstm") == "orthogonal:1+forget-bias:1"
    assert describe("chrono", "lstm", seq_len=300) == "default+chrono:300"
    assert describe("chrono", "rnn", seq_len=300) == "default"
    assert describe("lstm=chrono,rnn=identity", "rnn") == "identity:1"


def test_init_lists_for_sweeps():
    assert [s.text() for s in parse_init_list("default,chrono,orthogonal+forget-bias:1")] == [
        "default", "default+chrono", "orthogonal+forget-bias:1"]
    assert [s.text() for s in parse_init_list("default;lstm=chrono,rnn=identity")] == [
        "default", "lstm=default+chrono,rnn=identity"]


@pytest.mark.parametrize("text, message", [
    ("uniform", r"unknown initialisation 'uniform'.*choose from default, orthogonal, identity, forget-bias, chrono"),
    ("identity:abc", r"bad number 'abc' for identity"),
    ("forget-bias:nan", r"forget-bias's bias b must be finite"),
    ("chrono:1", r"chrono's T_max must be at least 2"),
    ("default:3", r"'default' takes no number"),
    ("orthogonal+identity", r"two weight initialisations \(orthogonal, identity\)"),
    ("chrono+forget-bias", r"two bias initialisations \(chrono, forget-bias\)"),
    ("rnn=forget-bias", r"forget-bias does not apply to the rnn cell"),
    ("rnn=chrono:10", r"chrono does not apply to the rnn cell"),
    ("tpu=chrono", r"unknown cell 'tpu'"),
    ("lstm=chrono,lstm=identity", r"cell 'lstm' is given twice"),
    ("default,chrono", r"two items for every cell"),
    ("", r"non-empty string"),
    ("lstm=", r"bad initialisation ''"),
    ("orthogonal,", r"empty item"),
])
def test_bad_strings_give_clear_errors(text, message):
    with pytest.raises(KernelInputError, match=message):
        parse_init(text)


def test_init_params_dtype_and_the_cell_check():
    p = _p("gru", "orthogonal+chrono:20", dtype=np.float32)
    assert all(v.dtype == np.float32 for v in p.values())
    with pytest.raises(KernelInputError, match="forget-bias does not apply to the rnn cell"):
        init_params("rnn", I, H, K, np.random.default_rng(0), init=Init(bias="forget-bias"))
