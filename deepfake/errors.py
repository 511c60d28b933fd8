"""Exceptions with messages meant for the person who sent the input or chose the model."""


class DeepfakeError(Exception):
    """Base class: the message is safe to show to a user (no paths from the server, no traceback)."""


class InputError(DeepfakeError):
    """The input file or array cannot be analysed: says what is wrong and what is accepted."""


class ModelLoadError(DeepfakeError):
    """A detector folder or Hub repo is missing, corrupt or inconsistent: names the file and the problem."""
