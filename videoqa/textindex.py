"""The text channels' search: sentence embeddings plus a lexical score over a video's passages.

Dense embeddings (sentence-transformers; the offline default is all-MiniLM-L6-v2 from the model store)
find paraphrases; BM25 over word tokens finds the names and numbers that embeddings blur ("gate 42" vs
"gate 24"). Number words are folded into digits on both sides, so a spoken "seventeen" that the
transcriber wrote out still meets a question's "17". ``score_passages`` returns both scores for every
passage; ``retrieve.py`` fuses them (and the visual channel) by reciprocal rank.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoqaError

if TYPE_CHECKING:
    from videoqa.types import Passage

log = logging.getLogger("videoqa")

DEFAULT_TEXT_EMBEDDER = "all-minilm-l6-v2"
TEXT_DEVICES = ("auto", "cpu", "cuda", "mps")


class TextEmbedderError(VideoqaError):
    """A text embedding model cannot be found or loaded."""


class TextEmbedder(Protocol):
    """Turns texts into unit-length vectors that can be compared by dot product."""

    @property
    def id(self) -> str:
        """Names the model and its files, for cache keys."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(len(texts), dim) float32, rows of unit length."""
        ...


@dataclass(frozen=True)
class PassageScores:
    """How every passage of a video matches one query (arrays aligned with the passages)."""

    dense: npt.NDArray[np.float32]  # cosine similarity of sentence embeddings, -1..1
    lexical: npt.NDArray[np.float64]  # BM25 of the query's tokens, 0 when none occurs


class SentenceEmbedder:
    """A sentence-transformers model from a local folder (the model store's, checkpoints/, or a path)."""

    def __init__(self, folder: Path, device: str = "auto") -> None:
        if device not in TEXT_DEVICES:
            raise ValueError(f"device must be one of {', '.join(TEXT_DEVICES)}, got {device!r}")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # its weight-loading bar would garble our stderr
        resolved = _torch_device(device)
        try:
            self._model = SentenceTransformer(str(folder), device=resolved, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise TextEmbedderError(f"{folder}: not a sentence-transformers model ({exc})") from None
        from videoqa.models import folder_fingerprint

        self._id = f"sentence-transformers:{folder.name}:{folder_fingerprint(folder)}"

    @property
    def id(self) -> str:
        return self._id

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


StoreFetcher = Callable[[str], Path]  # a model-store name -> its installed folder


def load_text_embedder(name_or_path: str = DEFAULT_TEXT_EMBEDDER, device: str = "auto",
                       fetch: StoreFetcher | None = None) -> TextEmbedder:
    """A model-store name (fetched through ``fetch`` when not installed) or a sentence-transformers folder."""
    from videoqa import models

    if name_or_path in models.REGISTRY:
        if models.REGISTRY[name_or_path].task != "text-embedding":
            raise TextEmbedderError(f"{name_or_path} is not a text embedding model")
        folder = (fetch or models.model_dir)(name_or_path)
    else:
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            known = ", ".join(n for n, s in models.REGISTRY.items() if s.task == "text-embedding")
            raise TextEmbedderError(f"{name_or_path}: no such folder, and not a known text model ({known})")
    return SentenceEmbedder(folder, device)


# --- lexical ----------------------------------------------------------------------------------------

def word_list(text: str) -> list[str]:
    """The words of a space-separated literal: long word lists read better as one string."""
    return text.split()


_NUMBER_WORDS = {word: str(value) for value, word in enumerate(word_list(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"))}
_TENS = {word: 10 * (i + 2) for i, word in enumerate(word_list(
    "twenty thirty forty fifty sixty seventy eighty ninety"))}
# Words that carry no meaning for search; kept short on purpose: "after", "first" and the like matter.
STOPWORDS = frozenset(word_list(
    "a an the is are was were be been being do does did of to in on at by for with and or but what which "
    "who whom whose how why where there this that these those it its as from into than then so if "
    "has have had i you he she we they me him her us them my your his our their can could would should "
    "will shall may might must about video show shows shown say says said"))
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stop words; number words up to 99 become digits."""
    words = _WORD.findall(text.lower().replace("-", " "))
    tokens: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _TENS:
            unit = words[i + 1] if i + 1 < len(words) else ""
            ones = int(_NUMBER_WORDS[unit]) if unit in _NUMBER_WORDS and int(_NUMBER_WORDS[unit]) < 10 else 0
            tokens.append(str(_TENS[word] + ones))
            i += 2 if ones else 1
            continue
        word = _NUMBER_WORDS.get(word, word)
        if word not in STOPWORDS:
            tokens.append(word)
        i += 1
    return tokens


def lexical_scores(query: str, passages: Sequence[str]) -> npt.NDArray[np.float64]:
    """BM25 of the query against each passage; 0 where none of the query's tokens occurs."""
    from rank_bm25 import BM25Okapi

    query_tokens = tokenize(query)
    corpus = [tokenize(text) for text in passages]
    if not query_tokens or not any(corpus):
        return np.zeros(len(passages))
    bm25 = BM25Okapi([tokens or ["\0"] for tokens in corpus])
    scores = np.asarray(bm25.get_scores(query_tokens), dtype=np.float64)
    # BM25Okapi floors the idf of very common words above 0, so a passage that shares nothing with the
    # query could still score; only passages holding a query token count.
    query_set = set(query_tokens)
    holds = np.asarray([bool(query_set.intersection(tokens)) for tokens in corpus])
    return np.where(holds, np.maximum(scores, 1e-6), 0.0)


def embedding_text(passage: Passage) -> str:
    """What is embedded for a passage: screen text is marked as such. A sign's bare words ("WELCOME TO
    OSLO") sit far from a question about "the sign on the screen"; the marker closes much of that gap
    (cosine 0.29 -> 0.49 with all-MiniLM-L6-v2) without raising unrelated questions' scores."""
    return f"On screen: {passage.text}" if passage.channel == "screen" else passage.text


def question_scores(question: str, anchor: str | None, embedder: TextEmbedder, passages: Sequence[Passage],
                    passage_vectors: npt.NDArray[np.float32]) -> PassageScores:
    """Passages scored for a question; with an anchor event ("after the swim"), for the event *in* the
    question: the mean of the anchor's and the whole question's scores, so "what does Henry do after the
    swim" finds Henry's swim rather than anybody's."""
    if anchor is None:
        return score_passages(question, embedder.embed([question])[0], passages, passage_vectors)
    vectors = embedder.embed([anchor, question])
    by_anchor = score_passages(anchor, vectors[0], passages, passage_vectors)
    by_question = score_passages(question, vectors[1], passages, passage_vectors)
    return PassageScores(dense=((by_anchor.dense + by_question.dense) / 2).astype(np.float32),
                         lexical=(by_anchor.lexical + by_question.lexical) / 2)


def score_passages(query: str, query_vector: npt.NDArray[np.float32], passages: Sequence[Passage],
                   passage_vectors: npt.NDArray[np.float32]) -> PassageScores:
    """Dense and lexical scores of every passage for one query."""
    if len(passages) != len(passage_vectors):
        raise ValueError(f"{len(passages)} passages but {len(passage_vectors)} vectors")
    dense = (passage_vectors @ query_vector.reshape(-1)).astype(np.float32) if len(passages) else \
        np.zeros(0, dtype=np.float32)
    return PassageScores(dense=dense, lexical=lexical_scores(query, [p.text for p in passages]))
