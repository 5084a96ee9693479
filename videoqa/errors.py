"""Exceptions a user can act on. The CLI prints their message as one line and exits with code 2."""

from __future__ import annotations


class VideoqaError(Exception):
    """Base class for errors caused by input or environment, not by a bug in videoqa."""


class VideoError(VideoqaError):
    """The video file cannot be used: missing, unreadable, not a video, or undecodable."""
