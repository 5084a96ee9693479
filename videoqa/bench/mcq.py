"""Multiple-choice evaluation on public video-QA benchmarks: EgoSchema, NExT-QA and MLVU.

Each benchmark's annotations are read as they are published (the format told by the file, or named),
each question is answered from the evidence the assistant retrieves for it — the model asked for an
option letter — and accuracy is counted overall, per question type and, for NExT-QA, per family of types
(causal, temporal, descriptive):

    questions = load_questions(Path("nextqa/val.csv"))
    report = evaluate(assistant, questions, Path("NExTVideo"))
    print(report.overall.accuracy, report.by_type["CW"].accuracy)

What is followed from each benchmark's own code (read in their repositories; none of it is copied):

- EgoSchema (egoschema/EgoSchema): ``questions.json`` records ``q_uid``, ``question``, ``option 0`` ...
  ``option 4``, as its benchmarking scripts read them; the answer key (``subset_answers.json``, the
  public 500) maps ``q_uid`` to an option number, and a prediction is that number: scored by index.
  Videos are ``<q_uid>.mp4`` in one folder (its ``download.py``).
- NExT-QA (doc-doc/NExT-QA): ``val.csv``/``test.csv`` columns ``video, frame_count, width, height,
  question, answer, qid, type, a0 ... a4``; ``eval_mc.py`` keys a question ``<video>_<qid>``, compares the
  predicted index with ``answer`` (by index, so of two options with one text only the annotated one is
  right), counts type TP as TN ("temporal previous and next" as one group), and reports the groups CW,
  CH, TN, TC, DC, DL, DO (Why, How, Bef&Aft, When, Cnt, Loc, Other), the families C, T, D and their
  total. Videos are ``NExTVideo/<folder>/<video>.mp4`` (its ``map_vid_vidorID.json``): one folder down.
- MLVU (JUNJIE99/MLVU): ``json/<n>_<task>.json`` records ``video, duration, question, candidates,
  answer, question_type``; ``evaluation/multiple_choice_evaluation/choice_bench.py`` letters the
  candidates and compares the letter a model gives with the right one, so scoring is by index, and the
  right index is that of the *last* candidate equal to the answer (see ``_mlvu_answer``). Videos are
  ``video/<n>_<task>/<name>.mp4`` (the released set; the script's own paths name the folder by task,
  ``video/needle``), and names repeat across tasks, so a question's own task folder is looked in first.
  The script's overall "Avg" (the paper's M-Avg) is the mean of the seven tasks' accuracies, not of all
  questions: score each task's file and average the seven. Its open-ended tasks (``8_sub_scene``,
  ``9_summary``) are scored by GPT-4 rating free text (``evaluate_ssc.py``, ``evaluate_summary.py``),
  not computed here: their files are refused.

Records that cannot be asked — MLVU's ``2_needle.json`` has two whose answer is none of their candidates
(the official script keeps them and scores them wrong for every model), ``7_topic_reasoning.json`` one
that is empty — are skipped and counted in one warning; a file with no usable record is an error.

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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoqa.errors import InputError, VideoError
from videoqa.media.formats import VIDEO_SUFFIXES
from videoqa.respond.prompt import load_prompt

if TYPE_CHECKING:
    from videoqa.assistant import Assistant
    from videoqa.channels.text_embedder import TextEmbedder
    from videoqa.llm import TextGenerator

log = logging.getLogger("videoqa")

FORMATS = ("egoschema", "nextqa", "mlvu")
# Option letters, A to H at most: the next letter, "I", is a word a reply uses.
LETTERS = "ABCDEFGH"
# Room for "Answer: (B)" and little more: a longer reply is an essay, not a choice.
MCQ_MAX_TOKENS = 8
# NExT-QA's question types (CW, CH, TN, TC, DC, DL, DO) by their first letter.
NEXTQA_FAMILIES = {"C": "causal", "T": "temporal", "D": "descriptive"}
# The column names eval_mc.py prints for each type.
NEXTQA_TYPE_NAMES = {
    "CW": "Why",
    "CH": "How",
    "TN": "Bef&Aft",
    "TC": "When",
    "DC": "Cnt",
    "DL": "Loc",
    "DO": "Other",
}
# eval_mc.py groups "temporal previous" with "temporal next": TP questions are scored as TN.
NEXTQA_MERGED_TYPES = {"TP": "TN"}
_NEXTQA_TYPE = re.compile(r"[CTD][A-Z]")
_NEXTQA_COLUMNS = ("video", "question", "answer", "qid", "a0", "a1", "a2", "a3", "a4")
# MLVU's task files are "<n>_<task>.json" and their videos "video/<n>_<task>/".
_MLVU_TASK_FILE = re.compile(r"\d+_(?P<task>.+)")


class _Malformed(ValueError):
    """A problem with the whole questions file; ``load_questions`` names the file."""


class _BadRecord(ValueError):
    """One record that cannot be asked: it is skipped, and counted under ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason  # the kind of problem, without the record's particulars


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
    folders: tuple[str, ...] = ()  # subfolders of the videos folder to look in first (MLVU: its task's)

    def __post_init__(self) -> None:
        problem = _problem(self.qid, self.question, self.options, self.answer)
        if problem is not None:
            raise InputError(str(problem))


def _problem(qid: str, question: str, options: Sequence[str], answer: int | None) -> _BadRecord | None:
    """What keeps a question from being asked, if anything."""
    if not question.strip():
        return _BadRecord("empty question", f"question {qid} is empty")
    if not 2 <= len(options) <= len(LETTERS):
        return _BadRecord(
            f"not 2 to {len(LETTERS)} options",
            f"question {qid} has {len(options)} options; 2 to {len(LETTERS)} can be asked",
        )
    if answer is not None and not 0 <= answer < len(options):
        return _BadRecord(
            "answer out of range",
            f"question {qid}: answer {answer} is out of range "
            f"for {len(options)} options (0 to {len(options) - 1})",
        )
    return None


@dataclass(frozen=True)
class _Parsed:
    """A file's questions, and the records skipped (by reason) with the first one's particulars."""

    questions: list[McqQuestion]
    records: int
    skipped: Counter[str]
    example: str | None


def load_questions(path: Path, answers: Path | None = None, fmt: str | None = None) -> list[McqQuestion]:
    """The questions of an EgoSchema (``questions.json``), NExT-QA (``.csv``) or MLVU (``.json``) file.

    ``fmt`` (one of ``FORMATS``) overrides telling the format from the file. ``answers`` is EgoSchema's
    separate answer key (``{q_uid: index}``, such as ``subset_answers.json``). Records that cannot be
    asked are skipped with one warning that counts them by reason. Raises InputError (a ValueError), one
    line naming the file and what is wrong with it, on a file that cannot be read or has no usable record.
    """
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    for given in (path, answers):
        if given is not None and not given.is_file():
            raise InputError(f"{given}: no such file")
    try:
        chosen, parsed = _parse(path, answers, fmt)
    except _Malformed as exc:
        raise InputError(f"{path}: {exc}") from None
    if answers is not None and chosen != "egoschema":
        raise InputError(f"{answers}: a separate answer key is read for EgoSchema only; {path} is {chosen}")
    return _usable(path, parsed)


def _parse(path: Path, answers: Path | None, fmt: str | None) -> tuple[str, _Parsed]:
    if (fmt or _format_by_suffix(path)) == "nextqa":
        return "nextqa", _nextqa(*_read_csv(path))
    records = _records(_read_json(path))
    chosen = fmt or _detect(records)
    if chosen == "egoschema":
        key = _answer_key(answers) if answers is not None else {}
        return chosen, _each(records, lambda number, record: _egoschema(number, record, key))
    if chosen == "mlvu":
        _refuse_open_ended(records)
    return chosen, _each(records, lambda number, record: _mlvu(number, record, path.stem))


def _usable(path: Path, parsed: _Parsed) -> list[McqQuestion]:
    """The parsed questions; skipped records are one warning, or one error when none is left."""
    if parsed.records == 0:
        raise InputError(f"{path}: holds no questions")
    if parsed.skipped:
        total = sum(parsed.skipped.values())
        counts = ", ".join(f"{reason}: {n}" for reason, n in parsed.skipped.most_common())
        if not parsed.questions:
            raise InputError(
                f"{path}: no usable question: all {total} records skipped ({counts}); "
                f"the first: {parsed.example}"
            )
        log.warning(
            "%s: %d of %d records skipped (%s); the first: %s",
            path,
            total,
            parsed.records,
            counts,
            parsed.example,
        )
    return parsed.questions


def _each(records: Sequence[Any], parse: Callable[[int, Any], McqQuestion], first: int = 1) -> _Parsed:
    """Every record parsed, numbered from ``first``; the ones that cannot be asked are counted."""
    questions: list[McqQuestion] = []
    skipped: Counter[str] = Counter()
    example = None
    for number, record in enumerate(records, start=first):
        try:
            questions.append(parse(number, record))
        except _BadRecord as exc:
            skipped[exc.reason] += 1
            example = example or str(exc)
    return _Parsed(questions, len(records), skipped, example)


def _format_by_suffix(path: Path) -> str | None:
    return "nextqa" if path.suffix.lower() == ".csv" else None


def _detect(records: list[Any]) -> str:
    objects = [record for record in records if isinstance(record, dict)]
    if any("q_uid" in record for record in objects):
        return "egoschema"
    if any("candidates" in record for record in objects):
        return "mlvu"
    _refuse_open_ended(records)
    raise _Malformed(
        "cannot tell the format (no q_uid for EgoSchema, no candidates for MLVU); "
        f"name it: {', '.join(FORMATS)}"
    )


def _refuse_open_ended(records: list[Any]) -> None:
    """MLVU's sub-scene captioning and summary files: a video, a question and a free-text answer each, and
    no candidates. Their official score is GPT-4's rating of free text, which is not computed here."""
    objects = [record for record in records if isinstance(record, dict)]
    if not objects or any("candidates" in record for record in objects):
        return
    if all({"video", "question", "answer"} <= record.keys() for record in objects):
        tasks = sorted({str(record.get("question_type") or "unnamed") for record in objects})
        raise _Malformed(
            f"MLVU's open-ended task ({', '.join(tasks)}) has free-text answers and no "
            "candidates; its official score is GPT-4 rating the text (MLVU's evaluate_ssc.py, "
            "evaluate_summary.py), which bench mcq does not compute: give a multiple-choice "
            "task's file (1_plotQA.json to 7_topic_reasoning.json)"
        )


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


def _records(data: Any) -> list[Any]:
    """The file's list of records; what is not an object among them is skipped when they are parsed."""
    if not isinstance(data, list):
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
    except _BadRecord as exc:
        raise InputError(f"{path}: {exc}") from None


def _as_index(value: object, where: str) -> int:
    """An option index given as a number or as digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _BadRecord("answer not an option number", f"{where}: answer {value!r} is not an option number")


def _object(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise _BadRecord("not a question object", f"{where} is not a JSON object")
    return record


def _field(record: dict[str, Any], name: str, where: str) -> Any:
    if record.get(name) is None:
        raise _BadRecord(f"no {name!r} field", f"{where} has no {name!r} field")
    return record[name]


def _question(**fields: Any) -> McqQuestion:
    problem = _problem(fields["qid"], fields["question"], fields["options"], fields["answer"])
    if problem is not None:
        raise problem
    return McqQuestion(**fields)


def _video_name(value: object) -> str:
    """The annotation's video as a file name: ids (NExT-QA's are numbers) get ``.mp4``."""
    name = str(value).strip()
    return name if Path(name).suffix.lower() in VIDEO_SUFFIXES else f"{name}.mp4"


def _egoschema(number: int, record: Any, key: dict[str, int]) -> McqQuestion:
    """EgoSchema: ``q_uid``, ``question``, ``option 0`` ... ``option 4``; answers from the separate key
    (or an ``answer`` field, as some copies carry one). The video is ``<q_uid>.mp4``."""
    record = _object(record, f"question {number}")
    uid = str(_field(record, "q_uid", f"question {number}"))
    where = f"question {number} ({uid})"
    count = 0
    while record.get(f"option {count}") is not None:
        count += 1
    options = tuple(str(_field(record, f"option {i}", where)) for i in range(max(count, 2)))
    inline = record.get("answer")
    answer = key.get(uid, _as_index(inline, where) if inline is not None else None)
    return _question(
        qid=uid,
        video=_video_name(uid),
        question=str(_field(record, "question", where)),
        options=options,
        answer=answer,
        qtype="all",
    )


def _nextqa(columns: list[str], rows: list[dict[str, str]]) -> _Parsed:
    """NExT-QA: ``video, frame_count, width, height, question, answer, qid, type, a0 ... a4``."""
    missing = [name for name in _NEXTQA_COLUMNS if name not in columns]
    if missing:
        raise _Malformed(f"not a NExT-QA file: no column {', '.join(missing)}")
    return _each(rows, _nextqa_row, first=2)  # line 1 is the header


def _nextqa_row(line: int, row: dict[str, str]) -> McqQuestion:
    cell = {name: (value or "").strip() for name, value in row.items() if name is not None}
    where = f"line {line}"
    if not cell["video"]:
        raise _BadRecord("no video", f"{where} has no video")
    qtype = cell.get("type") or "all"
    return _question(
        qid=f"{cell['video']}_{cell['qid']}",
        video=_video_name(cell["video"]),
        question=cell["question"],
        options=tuple(cell[f"a{i}"] for i in range(5)),
        answer=_as_index(cell["answer"], where) if cell["answer"] else None,
        qtype=NEXTQA_MERGED_TYPES.get(qtype, qtype),
    )


def _mlvu(number: int, record: Any, stem: str) -> McqQuestion:
    """MLVU: ``video``, ``duration``, ``question``, ``candidates``, ``answer`` (the right candidate's
    text), ``question_type``. Dev-set questions have no id: they are numbered within the file."""
    where = f"question {number}"
    record = _object(record, where)
    candidates = _field(record, "candidates", where)
    if not isinstance(candidates, list):
        raise _BadRecord("candidates not a list", f"{where}: 'candidates' is not a list")
    qid = str(record.get("question_id") or record.get("qid") or f"{stem}-{number}")
    qtype = str(record.get("question_type") or "all")
    return _question(
        qid=qid,
        video=_video_name(_field(record, "video", where)),
        question=strip_listed_options(str(_field(record, "question", where))),
        options=tuple(str(option).strip() for option in candidates),
        answer=_mlvu_answer(record.get("answer"), candidates, where),
        qtype=qtype,
        folders=_mlvu_folders(stem, qtype),
    )


def _mlvu_answer(answer: object, candidates: Sequence[object], where: str) -> int | None:
    """The right candidate's index, as MLVU's choice_bench.py finds it.

    Its ``qa_template`` walks the candidates and sets the right letter at each one equal (``==``, the text
    as given, spaces and all) to the answer, with no break: when two candidates hold the answer's text the
    last one is right, and the model's letter is compared with that (``check_ans``), so choosing the first
    scores wrong. An answer of "" that is a candidate is that candidate. An answer that is no candidate
    gets the letter "@" (``chr(ord("A") - 1)``), which no reply names, so that question is wrong for every
    model: here it is skipped instead. A copy that gives the answer as a letter is read by its letter.
    """
    if answer is None:
        return None  # the test set's records carry no answer
    text = str(answer)
    equal = [i for i, candidate in enumerate(candidates) if str(candidate) == text]
    if equal:
        return equal[-1]
    letter = text.strip().strip("()").upper()
    if len(letter) == 1 and letter in LETTERS[: len(candidates)]:
        return LETTERS.index(letter)
    raise _BadRecord(
        "answer not among candidates", f"{where}: the answer {text!r} is not one of its candidates"
    )


def _mlvu_folders(stem: str, qtype: str) -> tuple[str, ...]:
    """Where a task's videos are: ``video/2_needle`` as released, ``video/needle`` as choice_bench.py's own
    paths have it, or the question type's name."""
    task = _MLVU_TASK_FILE.fullmatch(stem)
    names = [stem, task.group("task") if task else stem, qtype]
    return tuple(dict.fromkeys(name for name in names if name != "all"))


# Options listed inside the question ("... ?\nOptions:\n(A) ...\n(B) ..."), as some MLVU copies have them:
# they are shown again, lettered, by the prompt.
_LISTED_OPTIONS = re.compile(
    r"\s*(?:(?i:options?):\s*)?(?:\(A\)|(?<!\w)A[.)])\s.*?"
    r"(?:\(B\)|(?<!\w)B[.)])\s.*\Z",
    re.DOTALL,
)


def strip_listed_options(question: str) -> str:
    """The question without the options listed after it, if it lists them."""
    listed = _LISTED_OPTIONS.search(question)
    stripped = question[: listed.start()].strip() if listed else ""
    return stripped or question.strip()


def find_video(videos: Path, q: McqQuestion) -> Path | None:
    """The question's video in ``videos``: by its name, else its stem with any of ``VIDEO_SUFFIXES``;
    in the question's own ``folders`` first (MLVU's video names repeat across its task folders), then in
    ``videos`` itself, then one folder below (MLVU and NExT-QA ship videos in subfolders)."""
    name = Path(q.video)
    wanted = [name, *(name.with_suffix(suffix) for suffix in VIDEO_SUFFIXES)]
    for folder in [*(videos / own for own in q.folders), videos]:
        found = _first_file(folder, wanted)
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
    from videoqa.retrieval.temporal import parse_question

    return combined if parse_question(combined).relation == "none" else q.question


def answer_question(assistant: Assistant, video_path: Path, q: McqQuestion) -> McqAnswer:
    """Choose an option for ``q`` from the evidence in ``video_path``.

    The model reads the evidence as text (a model that sees is not shown frames here); an "after X"
    question's anchor X is held back from it, as in ``answer.py``.
    """
    found = assistant.evidence(video_path, search_text(q))
    shown = [item for item in found.items if item.text is not None and item.role != "anchor"]
    from videoqa.respond.answer import evidence_line

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
    letters = LETTERS[: len(q.options)]
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, q.options, strict=True))
    user = template.fill(
        "user",
        evidence="\n".join(lines) or template.section("no_evidence"),
        question=q.question,
        options=options,
    )
    messages = [Message("system", template.section("system")), Message("user", user)]
    return "".join(llm.generate(messages, GenerationOptions(max_tokens=MCQ_MAX_TOKENS))).strip()


_STANDALONE_LETTER = re.compile(r"(?<![\w'])([A-H])(?![\w'])")
_ANSWER_IS = re.compile(r"\banswer(?:\s+is)?\s*[:\-]?\s*\(?([a-hA-H])(?![\w'])", re.IGNORECASE)
_ARTICLE_NEXT = re.compile(r"\s+(?!is\b)[a-z]")  # "A red car": the article, not option A


def parse_choice(reply: str, options: Sequence[str]) -> int | None:
    """The option a reply names: by its letter ("B", "Answer: (C)", "B. the text"; the first standalone
    one), else by quoting an option's text; None when it names none."""
    letters = LETTERS[: len(options)]
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
    quoted = {
        i: _words(option)
        for i, option in enumerate(options)
        if _words(option) and f" {_words(option)} " in said
    }
    outermost = [
        i
        for i, words in quoted.items()
        if not any(words != other and f" {words} " in f" {other} " for other in quoted.values())
    ]
    return outermost[0] if len(outermost) == 1 else None


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def closest_option(embedder: TextEmbedder, options: Sequence[str], texts: Sequence[str]) -> int | None:
    """The option most similar to any of ``texts`` (cosine of sentence embeddings); None without texts."""
    if not any(text.strip() for text in texts):
        return None
    vectors = embedder.embed([*options, *texts])  # (options + texts, dim), unit rows
    similarity = vectors[: len(options)] @ vectors[len(options) :].T  # (options, texts)
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
        return {
            qtype: _tally([r for r in scored if r.qtype == qtype])
            for qtype in sorted({r.qtype for r in scored})
        }

    @property
    def by_family(self) -> dict[str, Tally]:
        """NExT-QA's families ("C", "T", "D"; see NEXTQA_FAMILIES); empty for other benchmarks."""
        scored = [r for r in self._scored() if _NEXTQA_TYPE.fullmatch(r.qtype)]
        return {
            family: _tally([r for r in scored if r.qtype[0] == family])
            for family in NEXTQA_FAMILIES
            if any(r.qtype[0] == family for r in scored)
        }

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
            "skipped": self.skipped,
            "unscored": self.unscored,
            "results": [
                {
                    "qid": r.qid,
                    "qtype": r.qtype,
                    "video": r.video,
                    "choice": r.choice,
                    "answer": r.answer,
                    "correct": r.correct,
                    "method": r.method,
                    "reply": r.reply,
                    "seconds": round(r.seconds, 3),
                    "skipped": r.skipped,
                }
                for r in self.results
            ],
        }


def _tally(results: Sequence[McqResult]) -> Tally:
    return Tally(n=len(results), correct=sum(r.correct is True for r in results))


def _tally_json(tally: Tally) -> dict[str, Any]:
    accuracy = tally.accuracy
    return {
        "n": tally.n,
        "correct": tally.correct,
        "accuracy": round(accuracy, 4) if accuracy is not None else None,
    }


ResultCallback = Callable[[McqResult], None]


def evaluate(
    assistant: Assistant,
    questions: Sequence[McqQuestion],
    videos: Path,
    on_result: ResultCallback | None = None,
) -> McqReport:
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


def _evaluate_one(
    assistant: Assistant, q: McqQuestion, videos: Path, unreadable: dict[Path, str]
) -> McqResult:
    started = time.perf_counter()
    path = find_video(videos, q)
    if path is None:
        return _skipped(
            q, q.video, f"no video {q.video} (under any of {', '.join(VIDEO_SUFFIXES)}) in {videos}"
        )
    if path in unreadable:
        return _skipped(q, str(path), unreadable[path])
    try:
        chosen = answer_question(assistant, path, q)
    except VideoError as exc:
        unreadable[path] = str(exc)
        return _skipped(q, str(path), str(exc))
    return McqResult(
        q.qid,
        q.qtype,
        str(path),
        chosen.choice,
        q.answer,
        chosen.method,
        chosen.reply,
        time.perf_counter() - started,
    )


def _skipped(q: McqQuestion, video: str, reason: str) -> McqResult:
    return McqResult(q.qid, q.qtype, video, None, q.answer, None, "", 0.0, skipped=reason)
