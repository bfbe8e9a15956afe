"""Export plots of a session (or sweep) file to PNG, SVG or CSV, with no display needed.

One plot:     lstm-explorer export FILE --plot NAME --format png|svg|csv -o PATH
All plots:    lstm-explorer export FILE --all -o DIR   (every plot in png, svg and csv,
              or only --format's)
TensorBoard:  lstm-explorer export FILE --tensorboard DIR   (one run per cell: scalars,
              heatmap images at each probe, the config as hparams)

CSV files hold the raw data behind the plot: one row per recorded step (loss,
metric, param-grads), per probe (grad-heatmap, saturation) or per time step of
the probe (grad-flow, gates). Probe plots show the newest probe unless --step.
Runs on an offscreen Qt platform when there is no display.

plot names:
"""
from __future__ import annotations

import argparse
import importlib.util
import os

from explorer.gui.names import FORMATS, PLOT_NAMES, SWEEP_PLOT_NAMES

__doc__ += "".join(f"  {name:<13} {text}\n" for name, text in {**PLOT_NAMES, **SWEEP_PLOT_NAMES}.items())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="session file (.h5) or sweep summary")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--plot", choices=[*PLOT_NAMES, *SWEEP_PLOT_NAMES], metavar="NAME",
                      help="the plot to export: session files " + ", ".join(PLOT_NAMES)
                      + "; sweep files " + ", ".join(SWEEP_PLOT_NAMES))
    what.add_argument("--all", action="store_true", help="export every plot to the folder -o DIR")
    what.add_argument("--tensorboard", metavar="DIR",
                      help="write TensorBoard event files to DIR, one run per cell (no -o needed)")
    p.add_argument("--format", choices=FORMATS, help="png | svg | csv (default: from -o's suffix; "
                                                     "with --all: all three)")
    p.add_argument("-o", "--out", metavar="PATH", help="output file (--plot) or folder (--all)")
    p.add_argument("--width", type=int, help="image width in pixels (PNG/SVG; default depends on the plot)")
    p.add_argument("--height", type=int, help="image height in pixels")
    p.add_argument("--step", type=int, help="probe plots: the newest probe at or before this training step")
    p.add_argument("--run", action="append", metavar="NAME", help="only these runs (repeatable; default all)")


def _is_sweep(path: str) -> bool:
    if importlib.util.find_spec("sessions.sweep") is None:
        return False
    from sessions.sweep import is_sweep_file

    try:
        return bool(is_sweep_file(path))
    except Exception:
        return False


def run(args: argparse.Namespace) -> int:
    from explorer.errors import ConfigError

    if args.tensorboard:
        if _is_sweep(args.file):
            raise ConfigError(f"{args.file} is a sweep file: export its runs' session files to TensorBoard")
        from explorer.tensorboard_export import export_tensorboard

        for folder in export_tensorboard(args.file, args.tensorboard, runs_filter=args.run):
            print(folder)
        return 0
    if not args.out:
        raise ConfigError("-o/--out is needed: the output file (--plot) or folder (--all)")
    fmt = args.format
    if args.plot and fmt is None:
        suffix = os.path.splitext(args.out)[1].lower().lstrip(".")
        if suffix not in FORMATS:
            raise ConfigError(f"--format is needed: cannot tell the format from {args.out!r} "
                              f"(use a .png, .svg or .csv name, or --format)")
        fmt = suffix
    for name, v in (("--width", args.width), ("--height", args.height)):
        if v is not None and not 16 <= v <= 16384:
            raise ConfigError(f"{name} must be from 16 to 16384 pixels, got {v}")
    sweep = _is_sweep(args.file)
    if args.plot and (args.plot in SWEEP_PLOT_NAMES) != sweep:
        kind, names = ("a sweep file", SWEEP_PLOT_NAMES) if sweep else ("a session file", PLOT_NAMES)
        raise ConfigError(f"{args.file} is {kind}: --plot {args.plot} does not apply; choose one of "
                          f"{', '.join(names)}")
    folder = os.path.dirname(os.path.abspath(args.out)) if args.plot else os.path.abspath(args.out)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the folder {folder} for -o ({exc.strerror or exc})") from None
    if sweep:
        from explorer.gui.export import ensure_app
        from explorer.gui.sweep_view import export_plot as export_sweep

        ensure_app()
        export_sweep(args.file, None if args.all else args.plot, fmt, args.out)
        print(f"exported {args.file} to {args.out}")
        return 0
    from explorer.gui.export import DEFAULT_SIZE, ExportError, export_file
    from explorer.gui.plots import PlotDataError

    size = None
    if args.plot and (args.width or args.height):
        w0, h0 = DEFAULT_SIZE[args.plot]
        size = (args.width or w0, args.height or h0)
    try:
        written = export_file(args.file, None if args.all else args.plot, fmt, args.out, size=size,
                              step=args.step, runs_filter=args.run)
    except PlotDataError as exc:   # the data cannot be drawn: say which file
        raise ExportError(f"{args.file}: cannot draw the plot: {exc}") from None
    for path in written:
        print(path)
    return 0
