"""How many CPU cores this process may use: the thread count every CPU stage is given."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count).

    Every native runtime here (FFmpeg, CTranslate2, llama.cpp, onnxruntime) is given exactly this many
    threads: more threads than cores slows them down, much so on small machines.
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
