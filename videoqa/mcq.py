"""Multiple-choice evaluation on public video-QA benchmarks: EgoSchema, NExT-QA and MLVU.

Each benchmark's annotations are read as they are published (the format told by the file, or named),
each question is answered from the evidence the assistant retrieves for it — the model asked for an
option letter — and accuracy is counted overall, per question type and, for NExT-QA, per family of types
(causal, temporal, descriptive):

    questions = load_questions(Path("nextqa/val.csv"))
    report = evaluate(assistant, questions, Path("NExTVideo"))
    print(report.overall.accuracy, report.by_type["CW"].accuracy)

A small model does not always reply with a letter. When no option can be read from its reply, the option
whose sentence embedding is closest to the evidence is taken instead, and the answer says so
(``method == "similarity"``), so a report shows how much of its accuracy is the model's own.

The model-side modules are imported where they are used: the command line reads this module's
constants when it starts, and ``videoqa --help`` must not wait for numpy.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoqa.errors import InputError, VideoError
from videoqa.prompt import load_prompt

if TYPE_CHECKING:
    from videoqa.assistant import Assistant
    from videoqa.llm import TextGenerator
    from videoqa.textindex import TextEmbedder

log = logging.getLogger("videoqa")

FORMATS = ("egoschema", "nextqa", "mlvu")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
# Option letters, A to H at most: the next letter, "I", is a word a reply uses.
LETTERS = "ABCDEFGH"
# Room for "Answer: (B)" and little more: a longer reply is an essay, not a choice.
MCQ_MAX_TOKENS = 8
# NExT-QA's question types (CW, CH, TN, TC, TP, DL, DC, DO ...) by their first letter.
NEXTQA_FAMILIES = {"C": "causal", "T": "temporal", "D": "descriptive"}
_NEXTQA_TYPE = re.compile(r"[CTD][A-Z]")
_NEXTQA_COLUMNS = ("video", "question", "answer", "qid", "a0", "a1", "a2", "a3", "a4")


class _Malformed(ValueError):
    """A problem inside the questions file; ``load_questions`` names the file."""


# --- questions ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class McqQuestion:
    """One multiple-choice question as a benchmark's annotations give it."""

    qid: str  # unique within the file (NExT-QA: "<video>_<qid>", as its own evaluation keys them)
    video: str  # the video's file name (or id) as the annotation gives it
    question: str
    options: tuple[str, ...]  # shown to the model as A, B, C ...
    answer: int | None  # index of the right option; None when the answer key lacks it
    qtype: str  # question type; "all" when the format has none

    def __post_init__(self) -> None:
        if not self.question.strip():
            raise InputError(f"question {self.qid} is empty")
        if not 2 <= len(self.options) <= len(LETTERS):
            raise InputError(f"question {self.qid} has {len(self.options)} options; "
                             f"2 to {len(LETTERS)} can be asked")
        if self.answer is not None and not 0 <= self.answer < len(self.options):
            raise InputError(f"question {self.qid}: answer {self.answer} is out of range "
                             f"for {len(self.options)} options (0 to {len(self.options) - 1})")


def load_questions(path: Path, answers: Path | None = None, fmt: str | None = None) -> list[McqQuestion]:
    """The questions of an EgoSchema (``questions.json``), NExT-QA (``.csv``) or MLVU (``.json``) file.

    ``fmt`` (one of ``FORMATS``) overrides telling the format from the file. ``answers`` is EgoSchema's
    separate answer key (``{q_uid: index}``, such as ``subset_answers.json``). Raises ValueError, one line
    naming the file and what is wrong with it, on a file that cannot be read.
    """
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    for given in (path, answers):
        if given is not None and not given.is_file():
            raise InputError(f"{given}: no such file")
    try:
        if (fmt or _format_by_suffix(path)) == "nextqa":
            chosen, questions = "nextqa", _nextqa(*_read_csv(path))
        else:
            records = _records(_read_json(path))
            chosen = fmt or _detect(records)
            key = _answer_key(answers) if answers is not None and chosen == "egoschema" else {}
            questions = _egoschema(records, key) if chosen == "egoschema" else _mlvu(records, path.stem)
    except _Malformed as exc:
        raise InputError(f"{path}: {exc}") from None
    if answers is not None and chosen != "egoschema":
        raise InputError(f"{answers}: a separate answer key is read for EgoSchema only; {path} is {chosen}")
    if not questions:
        raise InputError(f"{path}: holds no questions")
    return questions


def _format_by_suffix(path: Path) -> str | None:
    return "nextqa" if path.suffix.lower() == ".csv" else None


def _detect(records: list[dict[str, Any]]) -> str:
    first = records[0]
    if "q_uid" in first:
        return "egoschema"
    if "candidates" in first:
        return "mlvu"
    raise _Malformed("cannot tell the format (no q_uid for EgoSchema, no candidates for MLVU); "
                     f"name it: {', '.join(FORMATS)}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from None


def _records(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise _Malformed("expected a JSON list of question objects")
    if not data:
        raise _Malformed("holds no questions")
    return data


def _answer_key(path: Path) -> dict[str, int]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of question id to answer index")
    try:
        return {str(uid): _as_index(value, f"question {uid}") for uid, value in data.items()}
    except _Malformed as exc:
        raise InputError(f"{path}: {exc}") from None


def _as_index(value: object, where: str) -> int:
    """An option index given as a number or as digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _Malformed(f"{where}: answer {value!r} is not an option number")


def _field(record: dict[str, Any], name: str, where: str) -> Any:
    if record.get(name) is None:
        raise _Malformed(f"{where} has no {name!r} field")
    return record[name]


def _question(**fields: Any) -> McqQuestion:
    try:
        return McqQuestion(**fields)
    except ValueError as exc:
        raise _Malformed(str(exc)) from None


def _video_name(value: object) -> str:
    """The annotation's video as a file name: ids (NExT-QA's are numbers) get ``.mp4``."""
    name = str(value).strip()
    return name if Path(name).suffix.lower() in VIDEO_SUFFIXES else f"{name}.mp4"


def _egoschema(records: list[dict[str, Any]], key: dict[str, int]) -> list[McqQuestion]:
    """EgoSchema: ``q_uid``, ``question``, ``option 0`` ... ``option 4``; answers from the separate key
    (or an ``answer`` field, as some copies carry one)."""
    questions = []
    for number, record in enumerate(records, start=1):
        uid = str(_field(record, "q_uid", f"question {number}"))
        where = f"question {number} ({uid})"
        count = 0
        while record.get(f"option {count}") is not None:
            count += 1
        options = tuple(str(_field(record, f"option {i}", where)) for i in range(max(count, 2)))
        inline = record.get("answer")
        answer = key.get(uid, _as_index(inline, where) if inline is not None else None)
        questions.append(_question(qid=uid, video=_video_name(uid), question=str(_field(record, "question",
                                   where)), options=options, answer=answer, qtype="all"))
    return questions


def _nextqa(columns: list[str], rows: list[dict[str, str]]) -> list[McqQuestion]:
    """NExT-QA: ``video, frame_count, width, height, question, answer, qid, type, a0 ... a4``."""
    missing = [name for name in _NEXTQA_COLUMNS if name not in columns]
    if missing:
        raise _Malformed(f"not a NExT-QA file: no column {', '.join(missing)}")
    questions = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        cell = {name: (value or "").strip() for name, value in row.items() if name is not None}
        where = f"line {line}"
        if not cell["video"]:
            raise _Malformed(f"{where} has no video")
        questions.append(_question(
            qid=f"{cell['video']}_{cell['qid']}", video=_video_name(cell["video"]), question=cell["question"],
            options=tuple(cell[f"a{i}"] for i in range(5)),
            answer=_as_index(cell["answer"], where) if cell["answer"] else None,
            qtype=cell.get("type") or "all"))
    return questions


def _mlvu(records: list[dict[str, Any]], stem: str) -> list[McqQuestion]:
    """MLVU: ``video``, ``duration``, ``question``, ``candidates``, ``answer`` (the right candidate's
    text), ``question_type``. Questions have no id: they are numbered within the file."""
    questions = []
    for number, record in enumerate(records, start=1):
        where = f"question {number}"
        candidates = _field(record, "candidates", where)
        if not isinstance(candidates, list):
            raise _Malformed(f"{where}: 'candidates' is not a list")
        options = tuple(str(option).strip() for option in candidates)
        qid = str(record.get("question_id") or record.get("qid") or f"{stem}-{number}")
        questions.append(_question(
            qid=qid, video=_video_name(_field(record, "video", where)),
            question=strip_listed_options(str(_field(record, "question", where))), options=options,
            answer=_mlvu_answer(record.get("answer"), options, where),
            qtype=str(record.get("question_type") or "all")))
    return questions


def _mlvu_answer(answer: object, options: Sequence[str], where: str) -> int | None:
    """The right candidate's index, from its text (or its letter, as some copies give it)."""
    if answer is None or answer == "":
        return None
    text = str(answer).strip()
    if text in options:
        return options.index(text)
    letter = text.strip("()").upper()
    if len(letter) == 1 and letter in LETTERS[:len(options)]:
        return LETTERS.index(letter)
    raise _Malformed(f"{where}: the answer {text!r} is not one of its candidates")


# Options listed inside the question ("... ?\nOptions:\n(A) ...\n(B) ..."), as some MLVU copies have them:
# they are shown again, lettered, by the prompt.
_LISTED_OPTIONS = re.compile(r"\s*(?:(?i:options?):\s*)?(?:\(A\)|(?<!\w)A[.)])\s.*?"
                             r"(?:\(B\)|(?<!\w)B[.)])\s.*\Z", re.DOTALL)


def strip_listed_options(question: str) -> str:
    """The question without the options listed after it, if it lists them."""
    listed = _LISTED_OPTIONS.search(question)
    stripped = question[:listed.start()].strip() if listed else ""
    return stripped or question.strip()


def find_video(videos: Path, q: McqQuestion) -> Path | None:
    """The question's video in ``videos``: by its name, else its stem with any of ``VIDEO_SUFFIXES``;
    in the folder itself, else one folder below (MLVU and NExT-QA ship videos in subfolders)."""
    name = Path(q.video)
    wanted = [name, *(name.with_suffix(suffix) for suffix in VIDEO_SUFFIXES)]
    found = _first_file(videos, wanted)
    if found is not None:  # most benchmarks keep them flat: do not list the subfolders then
        return found
    for folder in sorted(p for p in videos.iterdir() if p.is_dir()):
        found = _first_file(folder, wanted)
        if found is not None:
            return found
    return None


def _first_file(folder: Path, names: Sequence[Path]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


# --- answering ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class McqAnswer:
    """The option chosen for one question, and how."""

    choice: int | None  # index of the chosen option; None when neither reply nor evidence picks one
    reply: str  # the model's own words
    method: str  # "model": read from the reply; "similarity": the option closest to the evidence
    evidence: tuple[str, ...]  # the evidence lines the model was given (answer.evidence_line)


def search_text(q: McqQuestion) -> str:
    """What the video is searched for: the question and its options, unless that breaks the question's
    temporal reading.

    The options carry the content words a question like "what does the speaker announce?" lacks: on the
    tests' narrated video they put the passage that answers first (similarity 0.35 against 0.22 with the
    question alone, where a stray on-screen timecode scored 0.21) and keep the timecode out of "what is
    written on the screen?". But "after X" in an option would make any question temporal, and an option
    glued to a temporal question's anchor blurs what the anchor is, so those are searched by the question.
    """
    combined = f"{q.question} {' '.join(q.options)}"
    from videoqa.temporal import parse_question

    return combined if parse_question(combined).relation == "none" else q.question


def answer_question(assistant: Assistant, video_path: Path, q: McqQuestion) -> McqAnswer:
    """Choose an option for ``q`` from the evidence in ``video_path``.

    The model reads the evidence as text (a model that sees is not shown frames here); an "after X"
    question's anchor X is held back from it, as in ``answer.py``.
    """
    found = assistant.evidence(video_path, search_text(q))
    shown = [item for item in found.items if item.text is not None and item.role != "anchor"]
    from videoqa.answer import evidence_line

    lines = tuple(evidence_line(item) for item in shown)
    reply = _ask_for_letter(assistant.llm, q, lines)
    choice = parse_choice(reply, q.options)
    if choice is not None:
        return McqAnswer(choice, reply, "model", lines)
    texts = [item.text for item in shown if item.text is not None]
    return McqAnswer(closest_option(assistant.text_embedder, q.options, texts), reply, "similarity", lines)


def _ask_for_letter(llm: TextGenerator, q: McqQuestion, lines: Sequence[str]) -> str:
    from videoqa.llm import GenerationOptions, Message

    template = load_prompt("mcq")
    letters = LETTERS[:len(q.options)]
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, q.options, strict=True))
    user = template.fill("user", evidence="\n".join(lines) or template.section("no_evidence"),
                         question=q.question, options=options)
    messages = [Message("system", template.section("system")), Message("user", user)]
    return "".join(llm.generate(messages, GenerationOptions(max_tokens=MCQ_MAX_TOKENS))).strip()


_STANDALONE_LETTER = re.compile(r"(?<![\w'])([A-H])(?![\w'])")
_ANSWER_IS = re.compile(r"\banswer(?:\s+is)?\s*[:\-]?\s*\(?([a-hA-H])(?![\w'])", re.IGNORECASE)
_ARTICLE_NEXT = re.compile(r"\s+(?!is\b)[a-z]")  # "A red car": the article, not option A


def parse_choice(reply: str, options: Sequence[str]) -> int | None:
    """The option a reply names: by its letter ("B", "Answer: (C)", "B. the text"; the first standalone
    one), else by quoting an option's text; None when it names none."""
    letters = LETTERS[:len(options)]
    explicit = _ANSWER_IS.search(reply)
    if explicit and explicit.group(1).upper() in letters:
        return letters.index(explicit.group(1).upper())
    bare = reply.strip().strip(".():*").strip()
    if len(bare) == 1 and bare.upper() in letters:  # a lone "b"
        return letters.index(bare.upper())
    for match in _STANDALONE_LETTER.finditer(reply):
        letter = match.group(1)
        if letter in letters and not (letter == "A" and _ARTICLE_NEXT.match(reply, match.end())):
            return letters.index(letter)
    return _quoted_option(reply, options)


def _quoted_option(reply: str, options: Sequence[str]) -> int | None:
    """The one option whose text the reply contains, not counting one within another ("noon" within
    "at noon"); None when it contains none, or several."""
    said = f" {_words(reply)} "
    quoted = {i: _words(option) for i, option in enumerate(options)
              if _words(option) and f" {_words(option)} " in said}
    outermost = [i for i, words in quoted.items()
                 if not any(words != other and f" {words} " in f" {other} " for other in quoted.values())]
    return outermost[0] if len(outermost) == 1 else None


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def closest_option(embedder: TextEmbedder, options: Sequence[str], texts: Sequence[str]) -> int | None:
    """The option most similar to any of ``texts`` (cosine of sentence embeddings); None without texts."""
    if not any(text.strip() for text in texts):
        return None
    vectors = embedder.embed([*options, *texts])  # (options + texts, dim), unit rows
    similarity = vectors[:len(options)] @ vectors[len(options):].T  # (options, texts)
    return int(similarity.max(axis=1).argmax())


# --- evaluation -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class McqResult:
    """How one question went."""

    qid: str
    qtype: str
    video: str  # the file answered from; the annotation's name when none was found
    choice: int | None  # the chosen option's index
    answer: int | None  # the right option's index; None when the answer key lacks it
    method: str | None  # see McqAnswer.method; None when skipped
    reply: str  # the model's own words
    seconds: float  # retrieval and answering; the first question on a video also pays for indexing it
    skipped: str | None = None  # why the question was not answered (no video, unreadable video)

    @property
    def correct(self) -> bool | None:
        """Whether the right option was chosen; None when not scored (skipped, or no answer key)."""
        if self.skipped is not None or self.answer is None:
            return None
        return self.choice == self.answer


@dataclass(frozen=True)
class Tally:
    """Scored questions and how many were answered right."""

    n: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


@dataclass(frozen=True)
class McqReport:
    """Every question's result, and accuracy overall and by question type."""

    results: tuple[McqResult, ...]

    @property
    def overall(self) -> Tally:
        return _tally(self._scored())

    @property
    def by_type(self) -> dict[str, Tally]:
        """Per question type, in name order; types with no scored question are left out."""
        scored = self._scored()
        return {qtype: _tally([r for r in scored if r.qtype == qtype])
                for qtype in sorted({r.qtype for r in scored})}

    @property
    def by_family(self) -> dict[str, Tally]:
        """NExT-QA's families ("C", "T", "D"; see NEXTQA_FAMILIES); empty for other benchmarks."""
        scored = [r for r in self._scored() if _NEXTQA_TYPE.fullmatch(r.qtype)]
        return {family: _tally([r for r in scored if r.qtype[0] == family])
                for family in NEXTQA_FAMILIES if any(r.qtype[0] == family for r in scored)}

    @property
    def skipped(self) -> int:
        return sum(r.skipped is not None for r in self.results)

    @property
    def unscored(self) -> int:
        """Questions answered but not scored: the answer key lacks them."""
        return sum(r.skipped is None and r.answer is None for r in self.results)

    def _scored(self) -> list[McqResult]:
        return [r for r in self.results if r.correct is not None]

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types: tallies, then every result."""
        return {
            "overall": _tally_json(self.overall),
            "by_type": {name: _tally_json(t) for name, t in self.by_type.items()},
            "by_family": {name: _tally_json(t) for name, t in self.by_family.items()},
            "skipped": self.skipped, "unscored": self.unscored,
            "results": [{"qid": r.qid, "qtype": r.qtype, "video": r.video, "choice": r.choice,
                         "answer": r.answer, "correct": r.correct, "method": r.method, "reply": r.reply,
                         "seconds": round(r.seconds, 3), "skipped": r.skipped} for r in self.results],
        }


def _tally(results: Sequence[McqResult]) -> Tally:
    return Tally(n=len(results), correct=sum(r.correct is True for r in results))


def _tally_json(tally: Tally) -> dict[str, Any]:
    accuracy = tally.accuracy
    return {"n": tally.n, "correct": tally.correct,
            "accuracy": round(accuracy, 4) if accuracy is not None else None}


ResultCallback = Callable[[McqResult], None]


def evaluate(assistant: Assistant, questions: Sequence[McqQuestion], videos: Path,
             on_result: ResultCallback | None = None) -> McqReport:
    """Answer every question from its video in ``videos`` and score the answers.

    A question whose video is missing or cannot be read is skipped with a warning; the run goes on.
    ``on_result`` sees each result as it is made.
    """
    unreadable: dict[Path, str] = {}  # a video that failed once is not read again for its next question
    results = []
    for q in questions:
        result = _evaluate_one(assistant, q, videos, unreadable)
        if result.skipped is not None:
            log.warning("question %s skipped: %s", q.qid, result.skipped)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return McqReport(tuple(results))


def _evaluate_one(assistant: Assistant, q: McqQuestion, videos: Path,
                  unreadable: dict[Path, str]) -> McqResult:
    started = time.perf_counter()
    path = find_video(videos, q)
    if path is None:
        return _skipped(q, q.video, f"no video {q.video} (under any of {', '.join(VIDEO_SUFFIXES)}) "
                                    f"in {videos}")
    if path in unreadable:
        return _skipped(q, str(path), unreadable[path])
    try:
        chosen = answer_question(assistant, path, q)
    except VideoError as exc:
        unreadable[path] = str(exc)
        return _skipped(q, str(path), str(exc))
    return McqResult(q.qid, q.qtype, str(path), chosen.choice, q.answer, chosen.method, chosen.reply,
                     time.perf_counter() - started)


def _skipped(q: McqQuestion, video: str, reason: str) -> McqResult:
    return McqResult(q.qid, q.qtype, video, None, q.answer, None, "", 0.0, skipped=reason)
