"""The optimizers (kernels/optim.py): Adam and RMSprop as PyTorch computes them, checked against a float64
NumPy reference and torch.optim itself; their names and options from the command line; RMSprop in a run."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from kernels.errors import KernelInputError
from kernels.optim import adaptive_coefficients, adaptive_step, parse_optimizer

LR, BETAS, EPS = 1e-2, (0.9, 0.999), 1e-8


def _reference(name: str, alpha, p0, grads):
    """Float64 NumPy, written from torch.optim.Adam's and torch.optim.RMSprop's documented algorithms."""
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, 1):
        if name == "rmsprop":
            v = alpha * v + (1 - alpha) * g * g
            p = p - LR * g / (np.sqrt(v) + EPS)
        else:
            m = BETAS[0] * m + (1 - BETAS[0]) * g
            v = BETAS[1] * v + (1 - BETAS[1]) * g * g
            m_hat, v_hat = m / (1 - BETAS[0] ** t), v / (1 - BETAS[1] ** t)
            p = p - LR * m_hat / (np.sqrt(v_hat) + EPS)
    return p


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "rmsprop:0.9"])
def test_the_update_is_pytorchs(optimizer):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(40)
    grads = [rng.standard_normal(40) * 10.0 ** rng.uniform(-3, 1) for _ in range(6)]
    name, alpha = parse_optimizer(optimizer)
    p, m, v = p0.copy(), np.zeros(40), np.zeros(40)
    for t, g in enumerate(grads, 1):
        adaptive_step(p, g, m, v, *adaptive_coefficients(name, LR, BETAS, alpha, t), EPS)
    np.testing.assert_allclose(p, _reference(name, alpha, p0, grads), rtol=1e-12, atol=1e-14)
    assert not np.allclose(p, _reference("adam" if name == "rmsprop" else "rmsprop", 0.9, p0, grads))
    torch = pytest.importorskip("torch")
    w = torch.tensor(p0, requires_grad=True)
    opt = torch.optim.RMSprop([w], lr=LR, alpha=alpha, eps=EPS) if name == "rmsprop" else \
        torch.optim.Adam([w], lr=LR, betas=BETAS, eps=EPS)
    for g in grads:
        w.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(p, w.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_names_and_options():
    assert parse_optimizer("adam") == ("adam", None) and parse_optimizer("sgd") == ("sgd", None)
    assert parse_optimizer("rmsprop") == ("rmsprop", 0.99) and parse_optimizer(" rmsprop:0.9 ") == ("rmsprop", 0.9)
    for bad, message in [("nadam", "choose adam, sgd or rmsprop[:alpha]"), ("adam:0.9", "takes no option"),
                         ("rmsprop:1", "must be in [0, 1)"), ("rmsprop:fast", "must be a number")]:
        with pytest.raises(KernelInputError, match=re.escape(message)):
            parse_optimizer(bad)


def _train(tmp_path, optimizer: str):
    out = tmp_path / f"{optimizer.replace(':', '_')}.h5"
    r = subprocess.run([sys.executable, "-m", "explorer", "train", "--task", "adding", "--seq-len", "10", "--cell",
                        "lstm", "--hidden", "6", "--batch", "8", "--steps", "40", "--lr", "1e-2", "--test-size", "0",
                        "--optimizer", optimizer, "--quiet", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    return r, out


def test_a_run_with_rmsprop_records_it_and_takes_its_steps(tmp_path):
    from sessions import open_session

    losses = {}
    for optimizer in ("rmsprop:0.9", "rmsprop", "adam"):
        r, out = _train(tmp_path, optimizer)
        assert r.returncode == 0, r.stderr
        with open_session(out) as s:
            run = s.run("lstm")
            assert run.config["optimizer"] == optimizer
            losses[optimizer] = run.scalar("loss")[2]
    assert losses["rmsprop:0.9"][0] == losses["adam"][0]            # the same first batch and weights...
    assert losses["rmsprop:0.9"][1] != losses["adam"][1]            # ... then each optimizer's own step
    assert losses["rmsprop:0.9"][2] != losses["rmsprop"][2]         # and the smoothing constant is used
    info = subprocess.run([sys.executable, "-m", "explorer", "info", "--json", str(tmp_path / "rmsprop_0.9.h5")],
                          capture_output=True, text=True, timeout=120)
    assert json.loads(info.stdout)["runs"][0]["config"]["optimizer"] == "rmsprop:0.9"


def test_a_bad_optimizer_is_a_one_line_error(tmp_path):
    r, _ = _train(tmp_path, "rmsprop:2")
    assert r.returncode == 2 and "rmsprop's smoothing constant must be in [0, 1), got 2" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
