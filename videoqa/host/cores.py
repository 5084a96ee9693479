"""How many CPU cores this process may use, and how indexing shares them between its two sides."""

from __future__ import annotations

import os
from dataclasses import dataclass


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count).

    Every native runtime here (FFmpeg, CTranslate2, llama.cpp, onnxruntime) is given exactly this many
    threads when it runs alone: more threads than cores slows them down, much so on small machines.
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """Threads for the two sides of indexing, which run at the same time: speech recognition on one side;
    decoding, the image model and the screen-text reader on the other. Together they fill the cores
    without oversubscribing them (benchmarks/ask.py; docs/benchmarks.md, issue 16)."""

    speech: int  # CTranslate2's threads
    frames: int  # threads of each frame-side runtime: FFmpeg's decoder, onnxruntime, torch


def thread_plan(cores: int | None = None) -> ThreadPlan:
    """Half the cores for speech (at least one), the rest for the frames (at least one)."""
    total = cores or available_cores()
    speech = max(1, total // 2)
    return ThreadPlan(speech=speech, frames=max(1, total - speech))
