"""Open the window, replaying saved session files (each in its own tab).

With no FILE the window opens empty, ready to train (this is what plain
`lstm-explorer` does). A file still being written by `lstm-explorer train` is
followed live. Needs a display; without one, set QT_QPA_PLATFORM=offscreen or
use the headless commands (train, export, info).

example:
  lstm-explorer replay run.h5 other-run.h5
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="session files (.h5) to open")


def run(args: argparse.Namespace) -> int:
    from explorer.gui.app import main

    return main(getattr(args, "files", []) or [])
