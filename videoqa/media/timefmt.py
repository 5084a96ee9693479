"""Times as people read them: ``m:ss`` under an hour, ``h:mm:ss`` from an hour on."""

from __future__ import annotations

import math


def format_clock(seconds: float, decimals: int = 1) -> str:
    """``79.5`` -> ``"1:19.5"``; ``3725`` -> ``"1:02:05.0"``. Negative or non-finite input is an error."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds} as a clock time")
    scale = 10**decimals
    tenths = round(seconds * scale)
    whole, fraction = divmod(tenths, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    tail = f"{secs:02d}" + (f".{fraction:0{decimals}d}" if decimals else "")
    return f"{hours}:{minutes:02d}:{tail}" if hours else f"{minutes}:{tail}"
