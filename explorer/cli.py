"""The ``lstm-explorer`` command line: ``train | replay | export | info | bench | sweep | reproduce``.

Each subcommand lives in ``explorer/commands/<name>.py`` and provides
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can cause
(the project's own exception types) print one line on stderr and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from explorer import __version__

#: subcommand -> one-line help
COMMANDS = {
    "train": "train RNN, LSTM and GRU cells side by side, headless, with a progress bar and a summary",
    "replay": "open saved session files in the window",
    "export": "export plots of a session or sweep file to PNG, SVG or CSV (no display needed)",
    "info": "print the runs, configs, status and final figures of a session file",
    "bench": "time a full training step against PyTorch's CPU RNN/LSTM/GRU",
    "sweep": "train many (cell, lag, seed) runs on Dask and measure the lag frontier",
    "reproduce": "reproduce a classic long-lag table (H&S 1997 adding / temporal order, Arjovsky copy) beside the paper's",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception types whose message is shown as one line (no traceback)."""
    from explorer.errors import ExplorerError
    from kernels.errors import KernelError

    types: list[type[BaseException]] = [ExplorerError, KernelError]
    try:
        from sessions.errors import SessionError

        types.append(SessionError)
    except ImportError:  # pragma: no cover - sessions is part of the distribution
        pass
    return tuple(types)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-explorer",
        description="See and measure why LSTMs learn long-range dependencies where plain RNNs fail. "
        "Without a subcommand, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"lstm-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if importlib.util.find_spec(f"explorer.commands.{name}") is None:
            continue  # not built yet
        module = importlib.import_module(f"explorer.commands.{name}")
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code.

    Output to a pipe closed early (``lstm-explorer info run.h5 | head -3``) ends quietly: stdout is
    pointed at /dev/null so the interpreter's final flush raises nothing, and the exit code stays
    what the command returned (0 for a command that had nothing left to say).
    """
    code = 0
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        _silence_stdout()
    return code


def _silence_stdout() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:
        if importlib.util.find_spec("explorer.commands.replay") is None:
            parser.print_help()
            return 0
        args = parser.parse_args(["replay"])
        module = args._module
    try:
        return int(module.run(args) or 0)
    except _user_errors() as exc:
        print(f"lstm-explorer {args.command or ''}: error: {exc}".replace("  ", " "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lstm-explorer: interrupted", file=sys.stderr)
        return 130
