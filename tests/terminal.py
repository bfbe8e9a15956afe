"""Child processes that get Ctrl-C as they would from a terminal, wherever the test suite itself runs."""
from __future__ import annotations

import signal


def ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT: a background job inherits SIGINT ignored (then
    Python installs no KeyboardInterrupt handler) and some CI runners start the suite with SIGINT blocked (then
    the signal waits, pending, until the child has finished on its own); undo both."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
