"""Exceptions a user can act on. The CLI prints their message as one line and exits with code 2.

Anything else that escapes a command is a bug in videoqa: the CLI calls it an internal error.
"""

from __future__ import annotations


class VideoqaError(Exception):
    """Base class for errors caused by input or environment, not by a bug in videoqa."""


class VideoError(VideoqaError):
    """The video file cannot be used: missing, unreadable, not a video, or undecodable."""


class OptionsError(VideoqaError, ValueError):
    """An options object was given a value it cannot work with (out of range, an unknown name).

    Also a ValueError, as Python's convention for a bad argument value, so code that catches ValueError
    from an options class keeps working.
    """


class QuestionError(VideoqaError, ValueError):
    """A question that cannot be asked as given: empty, or longer than a question can be."""
