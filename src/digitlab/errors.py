"""Exceptions with messages meant for users (the CLI prints them without a traceback)."""


class DigitlabError(Exception):
    """Base class: the message says what was wrong and, where it can, what to do."""


class DataError(DigitlabError):
    """A data set file is missing, corrupt or fails its checksum."""


class ImageError(DigitlabError):
    """An input image cannot be read or is not acceptable (empty, too large, not an image)."""


class NoDigitFound(ImageError):
    """The image holds no ink that could be a digit (also importable from ``digitlab.digits.preprocess``)."""


class SeveralSymbols(NoDigitFound):
    """The image holds several symbols side by side (a written number, a line of arithmetic), not one digit."""


class ModelError(DigitlabError):
    """A model file is missing, corrupt, tampered with, or a model name is unknown."""


class NotFittedError(DigitlabError):
    """predict/save was called on a model that has not been fitted."""


def without_name(message: str, name) -> str:
    """``message`` less a leading ``"NAME: "``: the raisers name their file, and a line that names the
    file itself (the CLI's ``FILE: error: ...``, a JSON line's ``file``) names it once."""
    prefix = f"{name}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def report_file_error(path, exc: Exception, as_json: bool) -> None:
    """One line for a file that could not be processed: JSON on stdout, or text on stderr."""
    import json
    import sys

    message = without_name(str(exc), path)
    if as_json:
        print(json.dumps({"file": str(path), "error": message}), flush=True)
    else:
        print(f"{path}: error: {message}", file=sys.stderr, flush=True)
