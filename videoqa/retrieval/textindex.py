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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from videoqa.channels.text_embedder import TextEmbedder

if TYPE_CHECKING:
    from videoqa.types import Passage

log = logging.getLogger("videoqa")


@dataclass(frozen=True)
class PassageScores:
    """How every passage of a video matches one query (arrays aligned with the passages)."""

    dense: npt.NDArray[np.float32]  # cosine similarity of sentence embeddings, -1..1
    lexical: npt.NDArray[np.float64]  # BM25 of the query's tokens, 0 when none occurs


# --- lexical ----------------------------------------------------------------------------------------


def word_list(text: str) -> list[str]:
    """The words of a space-separated literal: long word lists read better as one string."""
    return text.split()


_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        word_list(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen"
        )
    )
}
_TENS = {
    word: 10 * (i + 2)
    for i, word in enumerate(word_list("twenty thirty forty fifty sixty seventy eighty ninety"))
}
# Words that carry no meaning for search; kept short on purpose: "after", "first" and the like matter.
STOPWORDS = frozenset(
    word_list(
        "a an the is are was were be been being do does did of to in on at by for with and or but what which "
        "who whom whose how why where there this that these those it its as from into than then so if "
        "has have had i you he she we they me him her us them my your his our their can could would should "
        "will shall may might must about video show shows shown say says said"
    )
)
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


def question_scores(
    question: str,
    anchor: str | None,
    embedder: TextEmbedder,
    passages: Sequence[Passage],
    passage_vectors: npt.NDArray[np.float32],
) -> PassageScores:
    """Passages scored for a question; with an anchor event ("after the swim"), for the event *in* the
    question: the mean of the anchor's and the whole question's scores, so "what does Henry do after the
    swim" finds Henry's swim rather than anybody's."""
    if anchor is None:
        return score_passages(question, embedder.embed([question])[0], passages, passage_vectors)
    vectors = embedder.embed([anchor, question])
    by_anchor = score_passages(anchor, vectors[0], passages, passage_vectors)
    by_question = score_passages(question, vectors[1], passages, passage_vectors)
    return PassageScores(
        dense=((by_anchor.dense + by_question.dense) / 2).astype(np.float32),
        lexical=(by_anchor.lexical + by_question.lexical) / 2,
    )


def score_passages(
    query: str,
    query_vector: npt.NDArray[np.float32],
    passages: Sequence[Passage],
    passage_vectors: npt.NDArray[np.float32],
) -> PassageScores:
    """Dense and lexical scores of every passage for one query."""
    if len(passages) != len(passage_vectors):
        raise ValueError(f"{len(passages)} passages but {len(passage_vectors)} vectors")
    dense = (
        (passage_vectors @ query_vector.reshape(-1)).astype(np.float32)
        if len(passages)
        else np.zeros(0, dtype=np.float32)
    )
    return PassageScores(dense=dense, lexical=lexical_scores(query, [p.text for p in passages]))
