"""Exceptions with messages meant for the person who sent the input or chose the model."""
import functools
import sys


class DeepfakeError(Exception):
    """Base class: the message is safe to show to a user (no paths from the server, no traceback)."""


class InputError(DeepfakeError):
    """The input file or array cannot be analysed: says what is wrong and what is accepted."""


class ModelLoadError(DeepfakeError):
    """A detector folder or Hub repo is missing, corrupt or inconsistent: names the file and the problem."""


def clear_errors(command):
    """A command (args -> exit code) whose DeepfakeError ends it with one 'error:' line on stderr and exit code 2,
    not a traceback: bad folders or models, for every training command."""
    @functools.wraps(command)
    def run(args) -> int:
        try:
            return command(args)
        except DeepfakeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return run
