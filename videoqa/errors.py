"""Exceptions a user can act on. The CLI prints their message as one line and exits with code 2.

Anything else that escapes a command is a bug in videoqa: the CLI calls it an internal error.
"""

from __future__ import annotations


class VideoqaError(Exception):
    """Base class for errors caused by input or environment, not by a bug in videoqa."""


class VideoError(VideoqaError):
    """The video file cannot be used: missing, unreadable, not a video, or undecodable."""


class InputError(VideoqaError, ValueError):
    """A value or a file the caller gave cannot be used: an option out of range, an unknown name, a
    questions file that is not valid JSON.

    Also a ValueError, Python's convention for a bad argument value, so code that catches ValueError
    keeps working.
    """


class OptionsError(InputError):
    """An options object was given a value it cannot work with."""


class QuestionError(InputError):
    """A question that cannot be asked as given: empty, or longer than a question can be."""
