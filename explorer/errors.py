"""The application's own exceptions; each message says what is wrong and how to fix it."""


class ExplorerError(Exception):
    """Base class of every error a user can cause in the application."""


class ConfigError(ExplorerError, ValueError):
    """A training or sweep setting is invalid (the message names the field and allowed range)."""


class TrainingDiverged(ExplorerError, RuntimeError):
    """The loss became NaN or infinite."""
