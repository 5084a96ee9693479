"""The installed llama.cpp runtime runs on any x86-64 CPU, and a native crash is reported, not suffered.

The first ``videoqa ask`` on a fresh cloud machine (Intel with AMX) died with SIGSEGV: llama-cpp-python
had been compiled with ``-march=native`` on a CPU with AMX. These tests read back what the installed
build was compiled for, so a machine without AMX (like CI's) still sees a build that would crash on one.
"""

from __future__ import annotations

import platform
import re
import stat
import sys
from pathlib import Path

import pytest

from videoqa.llm import runtime
from videoqa.store import models

# llama_print_system_info() of llama-cpp-python 0.3.36 built the default way on the Sapphire Rapids
# machine where the first ask crashed (as reported), and of the README's build.
NATIVE_SAPPHIRE_RAPIDS = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)
PORTABLE = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)
x86_only = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 build flags")


@x86_only
def test_installed_runtime_has_no_amx_and_runs_on_any_x86_64_cpu() -> None:
    info = runtime.system_info()
    features = runtime.compiled_features(info)
    assert "AVX2" in features, info  # the build is not a slow generic one either
    assert runtime.crash_prone(features) == [], info
    assert runtime.non_portable(features) == [], info
    assert runtime.missing_on_this_cpu(features) == [], info


def test_a_native_build_on_an_amx_cpu_is_recognised() -> None:
    features = runtime.compiled_features(NATIVE_SAPPHIRE_RAPIDS)
    assert runtime.crash_prone(features) == ["AMX_INT8"]
    assert runtime.non_portable(features) == [
        "AMX_INT8",
        "AVX512",
        "AVX512_BF16",
        "AVX512_VBMI",
        "AVX512_VNNI",
    ]
    portable = runtime.compiled_features(PORTABLE)
    assert runtime.crash_prone(portable) == [] and runtime.non_portable(portable) == []


def test_only_the_cpu_backend_counts_and_older_strings_are_read() -> None:
    cuda = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | " + PORTABLE
    assert runtime.compiled_features(cuda) == runtime.compiled_features(PORTABLE)
    older = "AVX = 1 | AVX_VNNI = 0 | AVX2 = 1 | AVX512 = 0 | FMA = 1 | NEON = 0 | "
    assert runtime.compiled_features(older) == {"AVX", "AVX2", "FMA"}


def test_instruction_sets_this_cpu_lacks() -> None:
    features = runtime.compiled_features(NATIVE_SAPPHIRE_RAPIDS)
    zen3 = frozenset({"pni", "ssse3", "sse4_2", "avx", "avx2", "f16c", "fma", "bmi2"})
    assert runtime.missing_on_this_cpu(features, zen3) == [
        "AMX_INT8",
        "AVX512",
        "AVX512_BF16",
        "AVX512_VBMI",
        "AVX512_VNNI",
    ]
    assert runtime.missing_on_this_cpu(runtime.compiled_features(PORTABLE), zen3) == []
    assert runtime.missing_on_this_cpu(features, frozenset()) == []  # nothing known: nothing claimed


@pytest.mark.usefixtures("installed_models")
def test_real_generate_in_a_child_process() -> None:
    result = runtime.generate_in_child(models.main_file(models.FAST_LLM))  # the one installed_models has
    assert result.ok, result.problem
    assert result.text.strip()


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize(
    ("signal_name", "shown"),
    [("SEGV", "SIGSEGV (segmentation fault)"), ("ILL", "SIGILL (illegal instruction")],
)
def test_a_native_crash_in_the_child_is_reported_with_its_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signal_name: str, shown: str
) -> None:
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, f"kill -{signal_name} $$"))
    result = runtime.generate_in_child(tmp_path / "model.gguf")
    assert not result.ok
    assert result.problem.startswith(f"crashed with {shown}")
    with pytest.raises(RuntimeError, match=f"loading llama.cpp crashed with {re.escape(shown)}"):
        runtime.system_info()  # a build for another CPU dies as it loads: read in a child too


def test_a_child_that_fails_or_hangs_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = _fake_python(tmp_path, 'echo \'{"error": "ValueError: bad"}\'; exit 1')
    monkeypatch.setattr(sys, "executable", failing)
    assert runtime.generate_in_child(tmp_path / "m.gguf").problem == "ValueError: bad"
    monkeypatch.setattr(sys, "executable", _fake_python(tmp_path, "exec sleep 30"))
    assert runtime.generate_in_child(tmp_path / "m.gguf", timeout_s=1).problem == "timed out after 1 s"


def test_the_readme_install_builds_llama_cpp_the_portable_way() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    install = readme.split("<!-- ci:install -->", 1)[1].split("```", 2)[1]
    assert f'CMAKE_ARGS="{runtime.PORTABLE_CMAKE_ARGS}"' in install
    assert f'"{runtime.LLAMA_CPP_REQUIREMENT}"' in install and "--no-cache-dir" in install
    assert install.index(runtime.LLAMA_CPP_REQUIREMENT) < install.index('-e ".[dev]"')  # built first


def test_each_reply_starts_from_an_empty_context() -> None:
    # Reusing the previous prompt's cached start made one question's greedy reply depend on the question
    # before it (tests/test_serve_load.py): every completion must start from an empty context.
    from videoqa.llm import GenerationOptions, LlmOptions, Message, load_llm

    llm = load_llm(models.FAST_LLM, LlmOptions(threads=1), fetch=models.pull)
    llama = llm._llama  # type: ignore[attr-defined]
    complete = llama.create_chat_completion
    seen: list[int] = []

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(llama.n_tokens)
        return complete(*args, **kwargs)

    llama.create_chat_completion = recording
    for question in ("Which gate is shown?", "Which gate is shown? Answer briefly."):
        "".join(llm.generate([Message("user", question)], GenerationOptions(max_tokens=4)))
    assert seen == [0, 0]
