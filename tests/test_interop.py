"""The tools a researcher already uses: pandas tables, PyTorch modules and TensorBoard event files,
each fed from a real recorded session."""
from __future__ import annotations

import numpy as np
import pytest

from sessions import open_session, torch_module
from tests.gui_fixtures import record_session

STEPS = 24


@pytest.fixture(scope="module")
def session_file(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("interop") / "s.h5", steps=STEPS, probe_every=6)


def test_run_to_pandas_has_one_row_per_step_and_a_column_per_series(session_file):
    pytest.importorskip("pandas")
    with open_session(session_file) as s:
        run = s.run("lstm")
        df = run.to_pandas()
        _, _, loss = run.scalar("loss")
        names = run.scalar_names
    assert list(df.columns[:2]) == ["step", "time"]
    assert list(df.columns[2:]) == names and "grad_norm/weight_hh" in names
    assert list(df["step"]) == list(range(1, STEPS + 1))
    np.testing.assert_array_equal(df["loss"].to_numpy(), loss)


def test_session_to_pandas_is_long_format_with_a_cell_column(session_file):
    pytest.importorskip("pandas")
    with open_session(session_file) as s:
        df = s.to_pandas()
    assert list(df.columns[:4]) == ["run", "cell", "step", "time"]
    assert df.groupby("cell").size().to_dict() == {"lstm": STEPS, "rnn": STEPS}


def test_readme_torch_example_reproduces_our_forward_pass(session_file):
    torch = pytest.importorskip("torch")
    import kernels

    with open_session(session_file) as s:
        run = s.run("lstm")
        net = torch_module(run)                         # nn.LSTM + nn.Linear, final weights loaded
        params = run.params
    x = np.random.default_rng(0).uniform(0, 1, (10, 3, 2)).astype(np.float32)
    y = net(torch.from_numpy(x)).detach().numpy()       # (T, B, outputs)
    ours = kernels.backend("cpu").forward("lstm", {k[:-3]: v for k, v in params.items() if k.endswith("_l0")}, x)
    expected = ours.h @ params["readout.weight"].T + params["readout.bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    assert isinstance(net.rnn, torch.nn.LSTM) and isinstance(net.readout, torch.nn.Linear)
    assert not net.training


def test_torch_module_of_an_unfinished_run_says_why(tmp_path):
    pytest.importorskip("torch")
    from sessions import SessionError
    from tests.sessions_support import write_session

    path = tmp_path / "running.h5"
    write_session(path, steps=5, probe_every=5, finish=False)
    with open_session(path) as s, pytest.raises(SessionError, match="no final parameters"):
        torch_module(s.run("lstm"))


def test_tensorboard_export_reads_back_with_tensorboards_own_reader(session_file, tmp_path):
    pytest.importorskip("tensorboardX")
    ea_module = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tests.test_export_cli import cli

    out = tmp_path / "tb"
    r = cli("export", str(session_file), "--tensorboard", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["lstm", "rnn"]      # one TensorBoard run per cell
    ea = ea_module.EventAccumulator(str(out / "lstm"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    tags = ea.Tags()
    assert {"loss", "metric", "grad_norm", "grad_norm/weight_hh"} <= set(tags["scalars"])
    loss = ea.Scalars("loss")
    assert [e.step for e in loss] == list(range(1, STEPS + 1))
    with open_session(session_file) as s:
        _, _, expected = s.run("lstm").scalar("loss")
        probe_steps = list(s.run("lstm").probe_steps)
    np.testing.assert_allclose([e.value for e in loss], expected, rtol=1e-6)
    images = ea.Images("grad-heatmap")
    assert [e.step for e in images] == probe_steps and images[-1].width >= images[-1].height > 0
    assert "_hparams_/experiment" in ea.PluginTagToContent("hparams")
    again = cli("export", str(session_file), "--tensorboard", str(out))
    assert again.returncode == 2 and "already holds TensorBoard events" in again.stderr
