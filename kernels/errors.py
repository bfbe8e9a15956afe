"""The kernels' own exceptions: what went wrong and how to fix it."""


class KernelError(Exception):
    """Base class of every error the kernels raise on purpose."""


class KernelInputError(KernelError, ValueError):
    """Arrays of the wrong shape, dtype or layout were passed to a kernel."""


class BackendUnavailable(KernelError, RuntimeError):
    """The requested backend cannot run on this machine (unknown name, no GPU, no driver)."""
