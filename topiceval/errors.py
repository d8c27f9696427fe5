"""Exceptions raised for bad input.

Every problem a user can fix (a wrong shape, a missing file, a malformed GMT, an unknown metric)
raises a subclass of :class:`TopicEvalError`. The command-line interface turns these into a one-line
message and a non-zero exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["TopicEvalError", "InputError", "GeneSetFormatError", "DownloadError", "ChecksumError"]


class TopicEvalError(Exception):
    """Base class of errors caused by the user's input or environment."""


class InputError(TopicEvalError, ValueError):
    """Input data with the wrong shape, values, names or format."""


class GeneSetFormatError(InputError):
    """A gene-set file (GMT) that cannot be read."""


class DownloadError(TopicEvalError):
    """A file could not be downloaded (offline, HTTP error, truncated or refused content)."""


class ChecksumError(DownloadError):
    """A downloaded or cached file does not match the sha256 recorded when it was first fetched."""
