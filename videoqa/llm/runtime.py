"""What the installed llama.cpp runtime was built for, and a generate run in a child process.

llama-cpp-python compiles llama.cpp when it is installed, by default for the build machine's own CPU
(``-march=native``). Such a build can die on another CPU: with SIGILL where an instruction set it was
compiled for is missing, and with SIGSEGV on CPUs with AMX (Intel Sapphire Rapids and later), where ggml
repacks the weights into its AMX buffer and faults on the first decode (llama.cpp issue #20824). The
README's install builds for x86-64-v3 (AVX2, FMA, F16C, BMI2) without AMX; this module reads back what the
installed build was compiled with (``llama_print_system_info``) so the tests and ``videoqa doctor`` can
tell, and runs a real generate in a child process so that a native crash is reported with its signal
instead of taking the caller down.

    python -m videoqa.llm.runtime MODEL.gguf      # the child: prints one JSON line, or dies
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The build flags the README's install passes to llama-cpp-python (see docs/models.md).
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_AVX2=ON "
    "-DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF "
    "-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
LLAMA_CPP_REQUIREMENT = "llama-cpp-python==0.3.36"
REINSTALL_COMMAND = (
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" .venv/bin/pip install --force-reinstall '
    f'--no-deps --no-cache-dir "{LLAMA_CPP_REQUIREMENT}"'
)
# For a CPU older than x86-64-v3 (no AVX2): build for that CPU itself, still without AMX.
NATIVE_REINSTALL_COMMAND = (
    'CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF '
    '-DGGML_AMX_BF16=OFF" .venv/bin/pip install --force-reinstall --no-deps '
    f'--no-cache-dir "{LLAMA_CPP_REQUIREMENT}"'
)

# Compiled-in features that crash ggml on the CPUs that have them (the AMX weight repacking).
CRASH_PRONE = ("AMX_INT8", "AMX_BF16", "AMX_TILE")
# Instruction sets of x86-64-v3, the most a build may use and still run on every x86-64 CPU of the last
# decade (Intel Haswell, AMD Excavator/Zen and later). Anything else compiled in ties the build to a CPU.
PORTABLE_X86 = frozenset({"SSE3", "SSSE3", "SSE42", "AVX", "AVX2", "F16C", "FMA", "BMI2"})
# Features system info reports that are not instruction sets (runtime choices, other architectures).
_NOT_X86_ISA = frozenset(
    {
        "LLAMAFILE",
        "OPENMP",
        "REPACK",
        "KLEIDIAI",
        "ACCELERATE",
        "NEON",
        "ARM_FMA",
        "FP16_VA",
        "MATMUL_INT8",
        "SVE",
        "DOTPROD",
        "SME",
        "RISCV_V",
        "VSX",
        "WASM_SIMD",
        "LASX",
        "LSX",
        "VXE",
        "NNPA",
        "RVV",
        "AARCH64_REPACK",
    }
)
# system-info name -> the flag /proc/cpuinfo shows when the CPU has it
_CPU_FLAG = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "SSE42": "sse4_2",
    "AVX": "avx",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX_VNNI": "avx_vnni",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
    "AMX_BF16": "amx_bf16",
    "AMX_TILE": "amx_tile",
}
_FEATURE = re.compile(r"([A-Z][A-Z0-9_]*) = (\d+)")
_BACKEND = re.compile(r"([A-Za-z0-9_-]+) : (.*)")


def system_info(timeout_s: float = 120.0) -> str:
    """The installed llama.cpp's own report of what it was compiled with, read in a child process: a
    build for instruction sets this CPU lacks dies as soon as it is loaded (SIGILL).

    Raises RuntimeError saying how the child failed.
    """
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode(errors='replace'))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"loading llama.cpp timed out after {timeout_s:.0f} s") from None
    if done.returncode < 0:
        raise RuntimeError(f"loading llama.cpp crashed with {_signal_name(-done.returncode)}")
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1])
    return done.stdout.strip()


def compiled_features(info: str) -> frozenset[str]:
    """The CPU backend's features a system-info string reports as on.

    ``"CPU : AVX2 = 1 | AMX_INT8 = 0 | "`` -> {"AVX2"}; other backends' entries (``CUDA : ARCHS = 890``)
    are left out, and a string without backend names (older llama.cpp) is read as the CPU's.
    """
    features: set[str] = set()
    backend = "CPU"
    for part in info.split("|"):
        entry = part.strip()
        if header := _BACKEND.match(entry):
            backend, entry = header.group(1), header.group(2)
        feature = _FEATURE.fullmatch(entry)
        if backend == "CPU" and feature is not None and feature.group(2) != "0":
            features.add(feature.group(1))
    return frozenset(features)


def crash_prone(features: frozenset[str]) -> list[str]:
    """Compiled-in features known to crash llama.cpp on the CPUs that have them."""
    return sorted(features & set(CRASH_PRONE))


def non_portable(features: frozenset[str]) -> list[str]:
    """x86 instruction sets compiled in beyond x86-64-v3: the build runs only on CPUs that have them."""
    return sorted(features - PORTABLE_X86 - _NOT_X86_ISA)


def missing_on_this_cpu(features: frozenset[str], cpu_flags: frozenset[str] | None = None) -> list[str]:
    """Compiled-in instruction sets this CPU lacks (each one a SIGILL waiting to happen)."""
    flags = cpu_flags if cpu_flags is not None else cpu_flags_here()
    if not flags:  # not Linux/x86, or /proc unreadable: nothing to compare with
        return []
    return sorted(name for name in features if name in _CPU_FLAG and _CPU_FLAG[name] not in flags)


def cpu_flags_here() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@dataclass(frozen=True)
class GenerateCheck:
    """How a generate run in a child process went."""

    ok: bool
    text: str  # what the model wrote (empty unless ok)
    problem: str  # why not ok: "crashed with SIGSEGV (...)", "timed out after 120 s", the child's error
    seconds: float


def generate_in_child(model: Path, max_tokens: int = 8, timeout_s: float = 180.0) -> GenerateCheck:
    """Load ``model`` and generate a few tokens in a separate Python process; a crash there is reported
    with its signal and cannot take this process down."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "videoqa.llm.runtime", str(model), str(max_tokens)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return GenerateCheck(False, "", f"timed out after {timeout_s:.0f} s", time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if done.returncode < 0:
        return GenerateCheck(False, "", f"crashed with {_signal_name(-done.returncode)}", seconds)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        reply = json.loads(last)
    except json.JSONDecodeError:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return GenerateCheck(False, "", reason[:300], seconds)
    if done.returncode != 0 or "error" in reply:
        return GenerateCheck(False, "", str(reply.get("error", f"exit status {done.returncode}")), seconds)
    return GenerateCheck(True, str(reply["text"]), "", seconds)


def _signal_name(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    meaning = {
        "SIGSEGV": "segmentation fault",
        "SIGILL": "illegal instruction: built for another CPU",
        "SIGBUS": "bus error",
        "SIGABRT": "aborted",
        "SIGKILL": "killed, perhaps out of memory",
    }
    return f"{name} ({meaning[name]})" if name in meaning else name


def _child(model: str, max_tokens: int) -> None:
    """Runs in the child: load, generate, print one JSON line."""
    from llama_cpp import Llama

    try:
        llama = Llama(model_path=model, n_ctx=256, n_threads=2, seed=0, verbose=False)
        reply = llama.create_chat_completion(
            messages=[{"role": "user", "content": "Say hello in one short sentence."}],
            max_tokens=max_tokens,
            temperature=0.0,
            seed=0,
        )
        text = reply["choices"][0]["message"]["content"] or ""  # type: ignore[index]  # not streamed
    except (ValueError, RuntimeError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    print(json.dumps({"text": text}))


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8)
