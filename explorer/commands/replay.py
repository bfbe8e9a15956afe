"""Open the window, replaying saved session files and sweeps (each in its own tab).

With no FILE the window opens empty, ready to train (this is what plain
`lstm-explorer` does). A file still being written by `lstm-explorer train` is
followed live. Needs a display; without one, set QT_QPA_PLATFORM=offscreen or
use the headless commands (train, export, info).

With --screenshot the window opens, draws, saves itself as a PNG and closes
(on a machine without a display, together with QT_QPA_PLATFORM=offscreen).

With --bands the files are one configuration's seeds, opened together in one tab: per cell the
median loss and metric over the seeds and the min-max band (the same as File > Open seeds as bands).

examples:
  lstm-explorer replay run.h5
  lstm-explorer replay run.h5 --screenshot window.png --size 1280x800
  lstm-explorer replay run.h5 seed1.h5 seed2.h5 --bands
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="FILE", help="session files (.h5) or sweep files (sweep.h5) to open")
    p.add_argument("--bands", action="store_true",
                   help="the files are one configuration's seeds: one tab with the median and min-max band per cell")
    p.add_argument("--screenshot", metavar="FILE.png", help="save the window as this PNG once drawn, then close")
    p.add_argument("--size", metavar="WxH", help="window size in pixels, e.g. 1280x800")


def parse_size(text: str | None) -> tuple[int, int] | None:
    """``"1280x800"`` -> ``(1280, 800)``; a clear error otherwise."""
    from explorer.errors import ConfigError

    if not text:
        return None
    w, sep, h = text.lower().partition("x")
    try:
        size = int(w), int(h)
    except ValueError:
        size = None
    if not sep or size is None or not all(200 <= v <= 16384 for v in size):
        raise ConfigError(f"--size must be WIDTHxHEIGHT with each from 200 to 16384 pixels, e.g. 1280x800; "
                          f"got {text!r}")
    return size


def run(args: argparse.Namespace) -> int:
    from explorer.gui.app import main

    return main(getattr(args, "files", []) or [], screenshot=getattr(args, "screenshot", None),
                size=parse_size(getattr(args, "size", None)), bands=bool(getattr(args, "bands", False)))
