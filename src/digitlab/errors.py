"""Exceptions with messages meant for users (the CLI prints them without a traceback)."""


class DigitlabError(Exception):
    """Base class: the message says what was wrong and, where it can, what to do."""


class DataError(DigitlabError):
    """A data set file is missing, corrupt or fails its checksum."""


class ImageError(DigitlabError):
    """An input image cannot be read or is not acceptable (empty, too large, not an image)."""


class ModelError(DigitlabError):
    """A model file is missing, corrupt, tampered with, or a model name is unknown."""


class NotFittedError(DigitlabError):
    """predict/save was called on a model that has not been fitted."""
