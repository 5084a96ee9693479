"""Recurrent memory bridges: bounded size, determinism, recall, and saving states and weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videoqa.memory.recurrent import (
    BridgeError,
    LearnedBridge,
    MemoryOptions,
    MemoryState,
    TrainingFreeBridge,
    pool_tokens,
)

DIM = 32


def _scenes(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(4, 20)), DIM)).astype(np.float32) for _ in range(count)]


def _run(bridge: TrainingFreeBridge | LearnedBridge, scenes: list[np.ndarray]) -> MemoryState:
    state = bridge.start(DIM)
    for tokens in scenes:
        state = bridge.step(state, tokens)
    return state


@pytest.mark.parametrize(
    "make",
    [
        lambda: TrainingFreeBridge(MemoryOptions(tokens=8, cache_size=16)),
        lambda: LearnedBridge(DIM, 4, MemoryOptions(tokens=8, cache_size=16)),
    ],
)
def test_memory_and_cache_stay_the_same_size_however_many_scenes(make) -> None:  # type: ignore[no-untyped-def]
    short, long = _run(make(), _scenes(10)), _run(make(), _scenes(500))
    assert short.memory.shape == long.memory.shape == (8, DIM)
    assert short.cache.shape == (10, 8, DIM) and long.cache.shape == (16, 8, DIM)
    assert long.scenes_seen == 500 and np.isfinite(long.memory).all()


def test_training_free_bridge_is_deterministic_and_remembers_what_it_saw() -> None:
    scenes = _scenes(30)
    first, again = _run(TrainingFreeBridge(), scenes), _run(TrainingFreeBridge(), scenes)
    assert np.array_equal(first.memory, again.memory)
    # The memory is closer to the scenes it saw than to scenes it did not.
    seen = np.concatenate(scenes).mean(axis=0)
    unseen = np.concatenate(_scenes(30, seed=99)).mean(axis=0) + 1.0
    centre = first.memory.mean(axis=0)
    assert np.linalg.norm(centre - seen) < np.linalg.norm(centre - unseen)


def test_the_first_scene_becomes_the_memory_pooled() -> None:
    tokens = np.arange(8 * DIM, dtype=np.float32).reshape(8, DIM)
    state = TrainingFreeBridge(MemoryOptions(tokens=4)).step(
        TrainingFreeBridge(MemoryOptions(tokens=4)).start(DIM), tokens
    )
    assert np.allclose(state.memory, pool_tokens(tokens, 4))
    assert np.allclose(pool_tokens(tokens, 4)[0], tokens[:2].mean(axis=0))
    assert pool_tokens(tokens[:2], 4).shape == (4, DIM)  # fewer tokens than slots: repeated


def test_state_round_trips_and_bad_files_are_refused(tmp_path: Path) -> None:
    state = _run(TrainingFreeBridge(), _scenes(5))
    state.save(tmp_path / "state.npz")
    loaded = MemoryState.load(tmp_path / "state.npz")
    assert np.array_equal(loaded.memory, state.memory) and np.array_equal(loaded.cache, state.cache)
    assert loaded.scenes_seen == 5
    (tmp_path / "junk.npz").write_text("not numpy")
    with pytest.raises(BridgeError, match="not a memory state"):
        MemoryState.load(tmp_path / "junk.npz")


def test_learned_bridge_round_trips_through_safetensors(tmp_path: Path) -> None:
    bridge = LearnedBridge(DIM, 4, MemoryOptions(tokens=8), seed=3)
    bridge.save(tmp_path / "bridge.safetensors")
    loaded = LearnedBridge.load(tmp_path / "bridge.safetensors")
    scenes = _scenes(12)
    assert np.allclose(_run(bridge, scenes).memory, _run(loaded, scenes).memory, atol=1e-6)
    other = LearnedBridge(DIM, 4, MemoryOptions(tokens=8), seed=4)
    assert not np.allclose(_run(other, scenes).memory, _run(bridge, scenes).memory)
    with pytest.raises(BridgeError, match="holds 8 memory tokens"):
        LearnedBridge.load(tmp_path / "bridge.safetensors", MemoryOptions(tokens=16))
    (tmp_path / "bad.safetensors").write_bytes(b"\\x00" * 64)
    with pytest.raises(BridgeError, match="not a memory bridge"):
        LearnedBridge.load(tmp_path / "bad.safetensors")


def test_bad_tokens_and_options_are_refused() -> None:
    bridge = TrainingFreeBridge()
    with pytest.raises(ValueError, match="scene tokens"):
        bridge.step(bridge.start(DIM), np.zeros((3, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="scene tokens"):
        bridge.step(bridge.start(DIM), np.zeros((0, DIM), dtype=np.float32))
    for bad in ({"tokens": 0}, {"cache_size": 0}, {"keep": 1.0}, {"temperature": 0.0}):
        with pytest.raises(ValueError):
            MemoryOptions(**bad)
    with pytest.raises(ValueError, match="multiple of heads"):
        LearnedBridge(30, 4)


def test_the_learned_recall_keeps_projections_and_matches_the_attention_module() -> None:
    import torch

    bridge = LearnedBridge(dim=32, heads=4, options=MemoryOptions(tokens=4, cache_size=3))
    rng = np.random.default_rng(0)
    state = bridge.start(32)
    for _ in range(6):  # past the cache size: evicted memories' projections must go too
        state = bridge.step(state, rng.standard_normal((5, 32)).astype(np.float32))
    memory = torch.from_numpy(state.memory)
    ours = bridge._recall_over(memory, state.cache)
    cache = torch.from_numpy(state.cache.reshape(1, -1, 32))
    with torch.inference_mode():
        reference, _ = bridge._recall(memory[None], cache, cache, need_weights=False)
    torch.testing.assert_close(ours, reference[0], rtol=1e-5, atol=1e-5)
    assert len(bridge._projections) == 3
