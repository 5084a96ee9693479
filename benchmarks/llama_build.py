"""llama.cpp builds side by side: what each was compiled for, and its speed on this CPU.

Usage:
    python benchmarks/llama_build.py                                  # the installed build only
    python benchmarks/llama_build.py --build native=/tmp/llama_native --build amx=/tmp/llama_amx

A ``--build NAME=DIR`` is a llama-cpp-python installed with ``pip install --target DIR`` (built with other
CMAKE_ARGS); it is put first on PYTHONPATH of a child process, so each build runs in its own process and
a build that crashes on this CPU (SIGILL for instruction sets it lacks, SIGSEGV for AMX) shows its signal
in the table instead of ending the benchmark. Rows alternate between builds for --repeat rounds; the
figures are medians. The model is the default answerer (SmolLM2-135M Q4_1) unless --model is given.
Columns:
  features      CPU features compiled in (llama_print_system_info), beyond SSE3/SSSE3
  AMX           whether an AMX code path is compiled in (crashes on AMX CPUs: llama.cpp #20824); "?" for
                a build that died before it could say (SIGILL: compiled for instruction sets this CPU lacks)
  prompt tok/s  prompt processing (a ~{PROMPT_TOKENS}-token prompt, 2 threads)
  gen tok/s     generation ({GEN_TOKENS} tokens, greedy, 2 threads)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT_TOKENS = 256
GEN_TOKENS = 64

CHILD = f"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
from videoqa.llm.runtime import compiled_features
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({{"features": sorted(compiled_features(info))}}), flush=True)  # before anything can crash
llama = Llama(model_path=sys.argv[1], n_ctx=1024, n_threads=2, n_threads_batch=2, seed=0, verbose=False)
tokens = llama.tokenize(("The quick brown fox jumps over the lazy dog. " * 64).encode())[:{PROMPT_TOKENS}]
started = time.perf_counter()
llama.eval(tokens)
prompt_s = time.perf_counter() - started
started = time.perf_counter()
made = 0
for _ in llama.generate([], temp=0.0, reset=False):
    made += 1
    if made == {GEN_TOKENS}:
        break
gen_s = time.perf_counter() - started
print(json.dumps({{"prompt": len(tokens) / prompt_s, "gen": made / gen_s}}))
"""


def run_build(path: str | None, model: Path) -> dict[str, Any]:
    """One measurement of one build in a child process: features and speeds, or the signal it died of."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([path, str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    result: dict[str, Any] = {}
    for line in done.stdout.strip().splitlines():
        result.update(json.loads(line))
    if done.returncode < 0:
        result["died"] = signal.Signals(-done.returncode).name
    elif done.returncode != 0:
        result["died"] = (done.stderr.strip().splitlines() or ["error"])[-1][:60]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--build",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another llama-cpp-python installed with pip --target DIR",
    )
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the default answerer)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = args.model or _default_model()
    builds: dict[str, str | None] = {"installed": None}
    builds.update(dict(item.split("=", 1) for item in args.build))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in builds}
    for _ in range(args.repeat):
        for name, path in builds.items():
            runs[name].append(run_build(path, model))
    _print_table(runs)


def _default_model() -> Path:
    from videoqa.llm import DEFAULT_LLM
    from videoqa.store import models

    return models.main_file(DEFAULT_LLM)


def _print_table(runs: dict[str, list[dict[str, Any]]]) -> None:
    base = runs["installed"]
    base_gen = statistics.median(r["gen"] for r in base) if all("gen" in r for r in base) else None
    header = f"{'build':<10} {'features':<52} {'AMX':<4} {'prompt tok/s':>12} {'gen tok/s':>10}"
    print(f"{header} {'gen ratio':>9}")
    for name, results in runs.items():
        features = [f for f in results[0].get("features", ["?"]) if f not in ("SSE3", "SSSE3")]
        amx = "?" if features == ["?"] else "yes" if any(f.startswith("AMX") for f in features) else "no"
        died = next((r["died"] for r in results if "died" in r), None)
        if died is not None:
            print(f"{name:<10} {' '.join(features)[:52]:<52} {amx:<4} {'died: ' + died:>34}")
            continue
        prompt = statistics.median(r["prompt"] for r in results)
        gen = statistics.median(r["gen"] for r in results)
        ratio = f"{gen / base_gen:.2f}" if base_gen else "-"
        print(f"{name:<10} {' '.join(features)[:52]:<52} {amx:<4} {prompt:12.0f} {gen:10.1f} {ratio:>9}")


if __name__ == "__main__":
    main()
