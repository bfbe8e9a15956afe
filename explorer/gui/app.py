"""Start the window: the display check, the QApplication and :func:`main`."""
from __future__ import annotations

import ctypes.util
import os
import sys

NO_DISPLAY_HELP = ("no display found (DISPLAY and WAYLAND_DISPLAY are unset): run the window on a desktop "
                   "or under a virtual display (xvfb-run lstm-explorer), set QT_QPA_PLATFORM=offscreen to run "
                   "it without showing anything, or use the headless commands (lstm-explorer train / export / info)")


def display_available() -> bool:
    """True when Qt can open windows here (or QT_QPA_PLATFORM names a non-X platform)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith(("xcb", "wayland")):
        return True   # offscreen, minimal, vnc, eglfs, cocoa, windows...
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def display_problem() -> str | None:
    """One line saying why the window cannot open here, or None."""
    if not display_available():
        return NO_DISPLAY_HELP
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if sys.platform.startswith("linux") and not platform and not os.environ.get("WAYLAND_DISPLAY"):
        # Qt's xcb plugin aborts the process without libxcb-cursor (Qt >= 6.5)
        if ctypes.util.find_library("xcb-cursor") is None:
            return ("the X11 display needs the system library libxcb-cursor0, which is not installed "
                    "(Debian/Ubuntu: apt-get install libxcb-cursor0); or set QT_QPA_PLATFORM=offscreen, "
                    "or use the headless commands (lstm-explorer train / export / info)")
    return None


def make_app(argv=None):
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(list(argv or ["lstm-explorer"]))
        app.setApplicationName("lstm-explorer")  # no organisation: data under ~/.local/share/lstm-explorer
        app.setApplicationDisplayName("LSTM Explorer")
    return app


def main(files=(), exec_loop: bool = True, screenshot: str | None = None, size: tuple[int, int] | None = None,
         settle_ms: int = 500, bands: bool = False) -> int:
    """Open the window (and ``files`` for replay; with ``bands`` as one configuration's seeds in one tab);
    returns the exit code of the event loop.

    With ``screenshot`` the window draws for ``settle_ms``, saves itself as that PNG and closes:
    exit code 0, or 1 when a file could not be opened or the image not written.
    """
    problem = display_problem()
    if problem:
        print(f"lstm-explorer: {problem}", file=sys.stderr)
        return 2
    app = make_app(sys.argv[:1])
    from explorer.gui.window import MainWindow

    window = MainWindow(prewarm=not screenshot)   # a screenshot exits at once: no compile thread left behind
    if size:
        window.resize(*size)
    window.show()
    if files and bands:
        window.open_seed_bands(list(files))
    elif files:
        window.open_files(list(files))
    if not exec_loop:
        return 0
    if screenshot:
        from PySide6 import QtCore

        result = {"code": 0}

        def shoot():
            window._refresh_visible(force=True)  # every plot of the shown tab, drawn now
            if not window.grab().save(screenshot, "PNG"):
                print(f"lstm-explorer: error: cannot write the screenshot {screenshot}", file=sys.stderr)
                result["code"] = 1
            for message in window.errors:
                print(f"lstm-explorer: error: {message}", file=sys.stderr)
            result["code"] = result["code"] or (1 if window.errors else 0)
            window.close()
            app.quit()

        QtCore.QTimer.singleShot(settle_ms, shoot)
        app.exec()
        dispose(window, app)
        return result["code"]
    code = int(app.exec())
    dispose(window, app)
    return code


def dispose(window, app) -> None:
    """Delete the window's widgets and plot items while Python is still whole: left to the interpreter's
    shutdown, their C++ halves went in an arbitrary order and a linked plot's went first now and then
    (a segmentation fault after the work was done)."""
    from PySide6 import QtCore

    window.deleteLater()
    app.sendPostedEvents(None, int(QtCore.QEvent.Type.DeferredDelete))     # the window goes now
    app.processEvents()
