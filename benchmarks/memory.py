"""Memory benchmark: the cost of carrying recurrent memory over 10, 100 and 1000 scenes.

Usage:
    python benchmarks/memory.py                          # both bridges, 10 / 100 / 1000 scenes, CPU
    python benchmarks/memory.py --scenes 10 100 --bridge tiny-vlm
    python benchmarks/memory.py --device cuda            # on a GPU

Two set-ups, each run in a fresh Python process per scene count so its peak memory (max RSS, and the
GPU's peak allocation on CUDA) belongs to it alone:
  tiny-vlm      a tiny random LLaVA-1.5 (the tests' builder): each scene's keyframe through the vision
                tower and projector, pooled to 32 tokens, folded in by the training-free bridge
  bridge-7b     the learned bridge with VideoLLaMB's 7B shape (width 4096, 32 heads, 32 memory tokens,
                64-entry memory cache), randomly initialised: the real compute of one bridge step on
                random scene tokens (32 x 4096) a scene
Columns:
  scenes          scenes folded into the memory
  ms/scene        median time of one scene (tokens + bridge step), after 3 warm-up scenes
  first/last 10%  median ms of the first and the last tenth of the scenes: equal when cost is constant
  peak MiB        the process's peak resident memory (GPU: peak allocated, apart)
  LLM input       visual tokens the language model is given with a question: memory + 4 scenes x 32
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tiny random VLM builder the tests use

BRIDGES = ("tiny-vlm", "bridge-7b")
SCENE_TOKENS = 32
RETRIEVED = 4
WARM_UP = 3  # scenes run before timing starts: the first calls pay for allocations and caches


def _run_tiny_vlm(scenes: int, device: str) -> tuple[list[float], int]:
    import numpy as np

    from videoqa.llm import LlmOptions
    from videoqa.llm.transformers_vlm import load_transformers_vlm
    from videoqa.memory.recurrent import TrainingFreeBridge, pool_tokens

    from vlm_models import save_tiny_vlm

    folder = save_tiny_vlm(Path(tempfile.mkdtemp()) / "tiny-llava", "llava")
    model = load_transformers_vlm(str(folder), LlmOptions(device=device))
    bridge = TrainingFreeBridge()
    state = bridge.start(model.hidden_size)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(scenes + WARM_UP):
        frame = rng.integers(0, 256, (336, 448, 3), dtype=np.uint8)
        started = time.perf_counter()
        tokens = pool_tokens(model.image_tokens([frame])[0], SCENE_TOKENS)
        state = bridge.step(state, tokens)
        times.append(time.perf_counter() - started)
    return times[WARM_UP:], len(state.memory) + RETRIEVED * SCENE_TOKENS


def _run_bridge_7b(scenes: int, device: str) -> tuple[list[float], int]:
    import numpy as np
    import torch

    from videoqa.memory.recurrent import LearnedBridge

    bridge = LearnedBridge(dim=4096, heads=32)
    bridge.to(device)
    state = bridge.start(4096)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(scenes + WARM_UP):
        tokens = rng.standard_normal((SCENE_TOKENS, 4096)).astype(np.float32)
        started = time.perf_counter()
        state = bridge.step(state, tokens)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times[WARM_UP:], len(state.memory) + RETRIEVED * SCENE_TOKENS


def _child(bridge: str, scenes: int, device: str) -> None:
    run = _run_tiny_vlm if bridge == "tiny-vlm" else _run_bridge_7b
    times, llm_input = run(scenes, device)
    gpu_peak = 0
    if device == "cuda":
        import torch

        gpu_peak = int(torch.cuda.max_memory_allocated())
    tenth = max(1, len(times) // 10)
    # medians: on a shared machine a few scenes stall behind other work, which a mean would count
    print(
        json.dumps(
            {
                "bridge": bridge,
                "scenes": scenes,
                "ms_per_scene": 1000 * statistics.median(times),
                "first_ms": 1000 * statistics.median(times[:tenth]),
                "last_ms": 1000 * statistics.median(times[-tenth:]),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "gpu_peak_mib": gpu_peak / 2**20,
                "llm_input": llm_input,
            }
        )
    )


def _measure(bridge: str, scenes: int, device: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", bridge, str(scenes), "--device", device]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{bridge} with {scenes} scenes failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--bridge", choices=BRIDGES, nargs="+", default=list(BRIDGES))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--child", nargs=2, metavar=("BRIDGE", "SCENES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.device)
        return
    print(
        f"{'set-up':<10} {'scenes':>6} {'ms/scene':>9} {'first 10%':>10} {'last 10%':>9} "
        f"{'last/first':>10} {'peak MiB':>9} {'GPU MiB':>8} {'LLM input':>9}"
    )
    for bridge in args.bridge:
        for scenes in args.scenes:
            row = _measure(bridge, scenes, args.device)
            print(
                f"{bridge:<10} {scenes:>6} {row['ms_per_scene']:>9.2f} {row['first_ms']:>10.2f} "
                f"{row['last_ms']:>9.2f} {row['last_ms'] / row['first_ms']:>10.2f} {row['peak_mib']:>9.0f} "
                f"{row['gpu_peak_mib']:>8.0f} {row['llm_input']:>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
