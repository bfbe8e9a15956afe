"""Session data in the tools researchers already use: pandas tables and PyTorch modules.

Both libraries are optional; each function says how to install the one it needs.

    run = open_session("run.h5").run("lstm")
    df = run.to_pandas()           # one row per step: step, time, loss, metric, grad_norm, grad_norm/<param>
    net = torch_module(run)        # nn.LSTM + nn.Linear readout with the final weights
"""
from __future__ import annotations

import functools

from sessions.errors import SessionError


def _need(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SessionError(None, f"this needs {module}, which is not installed: pip install {extra}") from None


def _error(run, problem: str) -> SessionError:
    """A :class:`SessionError` naming ``run``'s file and the run."""
    return SessionError(getattr(getattr(run, "_session", None), "path", None), f"run {run.name!r}: {problem}")


def run_frame(run):
    """``pandas.DataFrame`` of one run: one row per recorded step, the columns ``step``, ``time``,
    then one per scalar series under its SCHEMA.md name (``loss``, ``metric``, ``grad_norm``,
    ``grad_norm/<param>``, ...). A series missing at some step holds NaN there."""
    pd = _need("pandas", "pandas")
    step, time, loss = run.scalar("loss")
    frame = pd.DataFrame({"step": step, "time": time})
    for name in run.scalar_names:
        s, _, value = run.scalar(name)
        column = pd.Series(value, index=s, name=name)
        column = column[~column.index.duplicated(keep="last")]
        frame[name] = column.reindex(step).to_numpy()
    return frame


def session_frame(session):
    """``pandas.DataFrame`` of every run of ``session`` in long format: the columns ``run`` and
    ``cell`` first, then :func:`run_frame`'s columns (a column a run lacks holds NaN)."""
    pd = _need("pandas", "pandas")
    frames = []
    for run in session.runs:
        f = run_frame(run)
        f.insert(0, "cell", run.cell)
        f.insert(0, "run", run.name)
        frames.append(f)
    if not frames:
        return pd.DataFrame(columns=["run", "cell", "step", "time"])
    return pd.concat(frames, ignore_index=True)


def torch_module(run):
    """A ``torch.nn.Module`` holding ``run``'s final weights: ``.rnn`` (``nn.RNN`` / ``nn.LSTM`` /
    ``nn.GRU``, time-major like ours) and ``.readout`` (``nn.Linear``), in eval mode.

    Calling it on ``x : (T, B, I)`` returns the readout at every step, ``(T, B, outputs)``: the
    last row is what the ``*_last`` tasks (adding, temporal order) score.
    """
    torch = _need("torch", "torch")
    params = run.params
    if params is None:
        raise _error(run, f"no final parameters yet (status {run.status}): they are written when training ends")
    layer_class = getattr(torch.nn, str(run.cell).upper(), None)
    if not isinstance(layer_class, type) or not issubclass(layer_class, torch.nn.RNNBase):
        raise _error(run, f"PyTorch has no recurrent layer for cell {run.cell!r}")
    try:
        w_ih, readout_w = params["weight_ih_l0"], params["readout.weight"]
    except KeyError as exc:
        raise _error(run, f"the final parameters lack {exc.args[0]}") from None
    options = {}
    if layer_class is torch.nn.RNN:
        options["nonlinearity"] = str(run.config.get("rnn_activation", "tanh"))
    rnn = layer_class(input_size=w_ih.shape[1], hidden_size=run.hidden, **options)
    readout = torch.nn.Linear(run.hidden, readout_w.shape[0])
    module = _recurrent_readout_class()(rnn, readout)
    dtype = torch.float64 if w_ih.dtype.itemsize == 8 else torch.float32
    module.to(dtype)
    state = {(k if k.startswith("readout.") else f"rnn.{k}"): torch.as_tensor(v, dtype=dtype)
             for k, v in params.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise _error(run, f"its parameters do not fit torch.nn.{layer_class.__name__} "
                          f"({str(exc).splitlines()[0]})") from None
    return module.eval()


@functools.cache
def _recurrent_readout_class():
    """``nn.Module`` class: a recurrent layer followed by a readout at every step (made on first
    use, since torch is optional)."""
    import torch

    class RecurrentReadout(torch.nn.Module):
        def __init__(self, rnn, readout):
            super().__init__()
            self.rnn, self.readout = rnn, readout

        def forward(self, x):
            """``x : (T, B, I)`` -> readout outputs ``(T, B, K)``."""
            h, _ = self.rnn(x)
            return self.readout(h)

    return RecurrentReadout
