"""The two kinds of failure a user can cause, each carrying one readable sentence."""


class InputError(ValueError):
    """Bad user input (text, numbers, options): the message is shown as is."""


class ModelLoadError(RuntimeError):
    """A model that cannot be found, is not allowed, or cannot be loaded safely."""
