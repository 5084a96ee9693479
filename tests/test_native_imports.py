"""The native libraries videoqa loads can live in one process, in any order.

Each wheel brings its own compiled code (and some their own C++ runtime); two that disagree crash the
process on import, whatever the order the product happens to use today (usearch 2.26 then ONNX Runtime
>= 1.23 died with SIGSEGV in libstdc++ when ``videoqa index FOLDER`` reached speech-activity detection).
Each import runs in a child process so a crash fails one test with its signal.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

NATIVE = (
    "torch",
    "onnxruntime",
    "usearch.index",
    "llama_cpp",
    "ctranslate2",
    "decord",
    "av",
    "cv2",
    "sentence_transformers",
)


def _imports_cleanly(modules: tuple[str, ...]) -> None:
    code = "; ".join(f"import {name}" for name in modules)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, (modules, done.returncode, done.stderr[-2000:])


def test_usearch_then_onnxruntime() -> None:
    _imports_cleanly(("usearch.index", "onnxruntime"))


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_every_pair_of_native_libraries_in_both_orders(order: str) -> None:
    # Between them, the two orders load each library before and after every other one.
    _imports_cleanly(NATIVE if order == "forward" else tuple(reversed(NATIVE)))
