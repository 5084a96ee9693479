"""Recurrent memory over scenes, the VideoLLaMB idea: a fixed number of memory tokens carried from scene to
scene, so what a language model is given stays the same size however long the video is.

One interface, ``MemoryBridge.step(state, scene_tokens) -> state``, two implementations:

* ``TrainingFreeBridge`` (the default; works with any model): the memory tokens live in the model's
  embedding space. Each step they attend to the scene's tokens with identity projections (a soft,
  similarity-weighted merge), are blended with the previous memory, then attend over the memory cache
  the same way, so early scenes are not forgotten. No weights; deterministic.
* ``LearnedBridge``: VideoLLaMB's shape — memory and scene tokens pass through one transformer layer and
  the memory half of the output is the new memory, which then cross-attends over the cache — with weights
  loaded from safetensors, so a trained bridge can be plugged in.

The memory cache keeps the memory after every step, up to ``cache_size`` entries (oldest dropped), so the
cost of a step is bounded too. ``MemoryState`` is a value object that can be saved and loaded.

Used by ``videollm.py`` (answers from a seeing model) and ``captions.py`` (captions that follow the story).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoqaError

_STATE_FORMAT = 1


class BridgeError(VideoqaError):
    """A memory state or bridge file cannot be read, or does not fit."""


@dataclass(frozen=True)
class MemoryOptions:
    """How many memory tokens there are and how the training-free bridge merges."""

    tokens: int = 32  # memory tokens carried from scene to scene
    cache_size: int = 64  # memories kept for the cache attention; the oldest is dropped beyond this
    keep: float = 0.5  # share of the previous memory kept at each step (the rest is the scene's merge)
    temperature: float = 1.0  # softmax temperature of the identity attention; lower is sharper

    def __post_init__(self) -> None:
        if self.tokens < 1:
            raise OptionsError(f"tokens must be at least 1, got {self.tokens}")
        if self.cache_size < 1:
            raise OptionsError(f"cache_size must be at least 1, got {self.cache_size}")
        if not 0.0 <= self.keep < 1.0:
            raise OptionsError(f"keep must be within 0..1 (1 excluded), got {self.keep}")
        if self.temperature <= 0:
            raise OptionsError(f"temperature must be positive, got {self.temperature}")


@dataclass(frozen=True, eq=False)
class MemoryState:
    """The memory after some scenes: ``memory`` (tokens, dim) and ``cache`` (entries, tokens, dim)."""

    memory: npt.NDArray[np.float32]
    cache: npt.NDArray[np.float32]
    scenes_seen: int

    def save(self, path: Path) -> None:
        """Write the state as an ``.npz`` of plain arrays (no pickles)."""
        header = np.frombuffer(
            json.dumps({"format": _STATE_FORMAT, "scenes_seen": self.scenes_seen}).encode(), np.uint8
        )
        with open(path, "wb") as handle:
            np.savez(handle, header=header, memory=self.memory, cache=self.cache)

    @staticmethod
    def load(path: Path) -> MemoryState:
        try:
            with np.load(path, allow_pickle=False) as archive:
                header = json.loads(bytes(archive["header"]).decode())
                memory, cache = archive["memory"], archive["cache"]
        except (OSError, ValueError, KeyError) as exc:
            raise BridgeError(f"{path}: not a memory state ({exc})") from None
        if header.get("format") != _STATE_FORMAT:
            raise BridgeError(f"{path}: memory state format {header.get('format')}, expected {_STATE_FORMAT}")
        if memory.ndim != 2 or cache.ndim != 3 or cache.shape[1:] != memory.shape:
            raise BridgeError(f"{path}: memory {memory.shape} and cache {cache.shape} do not fit")
        return MemoryState(memory.astype(np.float32), cache.astype(np.float32), int(header["scenes_seen"]))


class MemoryBridge(Protocol):
    """Carries memory tokens from scene to scene."""

    def start(self, dim: int) -> MemoryState:
        """The empty memory for tokens of width ``dim``."""
        ...

    def step(self, state: MemoryState, scene_tokens: npt.NDArray[np.float32]) -> MemoryState:
        """The memory after one more scene, given its tokens (n, dim)."""
        ...


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights: npt.NDArray[np.float64] = shifted / shifted.sum(axis=-1, keepdims=True)
    return weights


def _attend(
    queries: npt.NDArray[np.float64], keys: npt.NDArray[np.float64], temperature: float
) -> npt.NDArray[np.float64]:
    """Identity-projection attention: each query becomes the similarity-weighted mean of ``keys``."""
    scale = np.sqrt(queries.shape[-1]) * temperature
    merged: npt.NDArray[np.float64] = _softmax(queries @ keys.T / scale) @ keys
    return merged


def pool_tokens(tokens: npt.NDArray[np.floating], count: int) -> npt.NDArray[np.float32]:
    """``tokens`` (n, d) averaged into ``count`` consecutive groups (repeated when n < count)."""
    n = len(tokens)
    if n == 0:
        raise ValueError("no tokens to pool")
    edges = np.linspace(0, n, count + 1)
    rows = [
        tokens[int(np.floor(a)) : max(int(np.ceil(b)), int(np.floor(a)) + 1)].mean(axis=0)
        for a, b in itertools.pairwise(edges)
    ]
    return np.asarray(rows, dtype=np.float32)


class TrainingFreeBridge:
    """Memory as a similarity-weighted merge of what was seen; no weights (see the module docstring)."""

    def __init__(self, options: MemoryOptions | None = None) -> None:
        self.options = options or MemoryOptions()

    def start(self, dim: int) -> MemoryState:
        empty = np.zeros((0, self.options.tokens, dim), dtype=np.float32)
        return MemoryState(np.zeros((self.options.tokens, dim), dtype=np.float32), empty, 0)

    def step(self, state: MemoryState, scene_tokens: npt.NDArray[np.float32]) -> MemoryState:
        tokens = _checked(scene_tokens, state)
        options = self.options
        if state.scenes_seen == 0:  # nothing to attend from yet: the scene itself, pooled, is the memory
            memory = pool_tokens(tokens, options.tokens).astype(np.float64)
        else:
            merged = _attend(state.memory.astype(np.float64), tokens, options.temperature)
            memory = options.keep * state.memory + (1 - options.keep) * merged
            recalled = _attend(
                memory, state.cache.reshape(-1, tokens.shape[1]).astype(np.float64), options.temperature
            )
            memory = options.keep * memory + (1 - options.keep) * recalled
        cache = np.concatenate([state.cache, memory[None].astype(np.float32)])[-options.cache_size :]
        return MemoryState(memory.astype(np.float32), cache, state.scenes_seen + 1)


def _checked(scene_tokens: npt.NDArray[np.floating], state: MemoryState) -> npt.NDArray[np.float64]:
    tokens = np.asarray(scene_tokens, dtype=np.float64)
    if tokens.ndim != 2 or len(tokens) == 0 or tokens.shape[1] != state.memory.shape[1]:
        raise ValueError(f"scene tokens must be (n >= 1, {state.memory.shape[1]}), got {tokens.shape}")
    return tokens


class LearnedBridge:
    """VideoLLaMB's bridge: one transformer layer over [memory; scene] whose memory half is the new memory,
    then cross-attention from the memory over the cache; weights from safetensors (``load``/``save``)."""

    def __init__(self, dim: int, heads: int, options: MemoryOptions | None = None, seed: int = 0) -> None:
        import torch

        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.options = options or MemoryOptions()
        self.dim, self.heads = dim, heads
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # a fixed start for bridges built without trained weights
        self._layer = torch.nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True, norm_first=True
        ).eval()
        self._recall = torch.nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True).eval()
        self._initial = torch.nn.Parameter(torch.randn(self.options.tokens, dim) * 0.02)
        torch.random.set_rng_state(generator_state)
        self._projections: dict[bytes, Any] = {}  # a cached memory's keys and values, by its content

    def state_dict(self) -> dict[str, object]:
        import torch

        tensors: dict[str, torch.Tensor] = {"initial": self._initial.detach().contiguous()}
        for prefix, module in (("layer", self._layer), ("recall", self._recall)):
            tensors |= {
                f"{prefix}.{name}": value.detach().contiguous() for name, value in module.state_dict().items()
            }
        return dict(tensors)

    def save(self, path: Path) -> None:
        """Write the weights as safetensors, with the shape in the metadata."""
        from safetensors.torch import save_file

        shape = {"dim": str(self.dim), "heads": str(self.heads), "tokens": str(self.options.tokens)}
        save_file(self.state_dict(), str(path), metadata=shape)  # type: ignore[arg-type]

    @staticmethod
    def load(path: Path, options: MemoryOptions | None = None) -> LearnedBridge:
        """A bridge with the weights of a safetensors file written by ``save`` (or trained elsewhere)."""
        import torch
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            dim, heads, tokens = int(meta["dim"]), int(meta["heads"]), int(meta["tokens"])
        except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
            raise BridgeError(f"{path}: not a memory bridge in safetensors ({exc})") from None
        options = options or MemoryOptions(tokens=tokens)
        if options.tokens != tokens:
            raise BridgeError(f"{path} holds {tokens} memory tokens; options ask for {options.tokens}")
        bridge = LearnedBridge(dim, heads, options)
        with torch.no_grad():
            bridge._initial.copy_(tensors.pop("initial"))
            for prefix, module in (("layer", bridge._layer), ("recall", bridge._recall)):
                part = {
                    k.removeprefix(f"{prefix}."): v for k, v in tensors.items() if k.startswith(f"{prefix}.")
                }
                try:
                    module.load_state_dict(part)
                except RuntimeError as exc:
                    raise BridgeError(f"{path}: weights do not fit the bridge ({exc})") from None
        return bridge

    def _recall_over(self, memory: Any, cache: npt.NDArray[np.float32]) -> Any:
        """The ``recall`` cross-attention from ``memory`` (tokens, dim) over every cached memory.

        The same arithmetic as calling the ``nn.MultiheadAttention`` (tests compare them), but the keys
        and values of a cached memory are projected once, when it is first seen, and kept while it stays
        in the cache: re-projecting a full cache (64 x 32 tokens at width 4096) each scene cost more than
        the bridge's transformer layer.
        """
        import torch

        weights, biases = self._recall.in_proj_weight, self._recall.in_proj_bias
        w_q, w_kv = weights[: self.dim], weights[self.dim :]
        b_q, b_kv = biases[: self.dim], biases[self.dim :]
        keys_values = [self._projected_row(row, w_kv, b_kv) for row in cache]
        self._projections = {key: self._projections[key] for key, _ in keys_values}  # drop evicted rows
        projected = torch.cat([kv for _, kv in keys_values])
        keys, values = projected[:, : self.dim], projected[:, self.dim :]
        query = memory @ w_q.T + b_q

        def heads(x: Any) -> Any:
            return x.reshape(len(x), self.heads, -1).transpose(0, 1)

        attended = torch.nn.functional.scaled_dot_product_attention(heads(query), heads(keys), heads(values))
        return self._recall.out_proj(attended.transpose(0, 1).reshape(len(memory), self.dim))

    def _projected_row(self, row: npt.NDArray[np.float32], weight: Any, bias: Any) -> tuple[bytes, Any]:
        import torch

        key = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
        if key not in self._projections:
            tokens = torch.from_numpy(np.ascontiguousarray(row, dtype=np.float32)).to(weight.device)
            self._projections[key] = tokens @ weight.T + bias
        return key, self._projections[key]

    def to(self, device: str) -> LearnedBridge:
        """Run the bridge's layers on ``device`` ("cuda" on a GPU); states stay plain arrays."""
        for module in (self._layer, self._recall):
            module.to(device)
        self._projections.clear()
        self._initial = self._initial.to(device)  # type: ignore[assignment]
        return self

    def start(self, dim: int) -> MemoryState:
        if dim != self.dim:
            raise ValueError(f"this bridge works on tokens of width {self.dim}, not {dim}")
        memory = self._initial.detach().float().cpu().numpy()
        return MemoryState(memory, np.zeros((0, *memory.shape), dtype=np.float32), 0)

    def step(self, state: MemoryState, scene_tokens: npt.NDArray[np.float32]) -> MemoryState:
        import torch

        tokens = _checked(scene_tokens, state)
        device = self._initial.device
        with torch.inference_mode():
            memory = torch.from_numpy(state.memory)[None].to(device)
            joined = torch.cat([memory, torch.from_numpy(tokens.astype(np.float32))[None].to(device)], dim=1)
            memory = self._layer(joined)[:, : self.options.tokens]
            if len(state.cache):
                recalled = self._recall_over(memory[0], state.cache)[None]
                # normalised, so 1000 scenes of residual additions cannot blow the memory up
                memory = torch.nn.functional.layer_norm(memory + recalled, (self.dim,))
        new = memory[0].float().cpu().numpy()
        cache_rows = np.concatenate([state.cache, new[None]])[-self.options.cache_size :]
        return MemoryState(new, cache_rows, state.scenes_seen + 1)
