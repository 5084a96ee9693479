"""``scenes`` (a video's scenes) and ``search`` (moments matching a text in every channel); ``index`` is in
``index.py``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.util import FetchProgress, UserError, VideoProgress, check_device, reports_user_errors
from videoqa.errors import VideoqaError
from videoqa.media.timefmt import format_clock
from videoqa.respond.writers import SearchHit
from videoqa.store.devices import devices_for
from videoqa.store.registry import DEFAULT_IMAGE_EMBEDDER, IMAGE_EMBEDDING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.channels.text_embedder import TextEmbedder
    from videoqa.knowledge.build import VideoKnowledge
    from videoqa.types import Scene, SceneHit, VideoIndex
    from videoqa.visual.embed import ImageEmbedder
    from videoqa.visual.index import IndexOptions

log = logging.getLogger("videoqa")

# The relevance cut-off of search's text hits (speech, screen text), measured on seeded question sets
# (tests/test_search.py::test_the_cut_off_keeps_what_a_query_asks_for): a passage is listed when it holds
# one of the query's words or its sentence similarity reaches MIN_TEXT_SIMILARITY (the passage a question
# asks about had at least 0.38 in 99 % of them), and when its similarity or its BM25 is at least
# RELATIVE_CUT of the best passage's: hits far below the best one on both are not listed.
MIN_TEXT_SIMILARITY = 0.35
RELATIVE_CUT = 0.5


def embedder_option(command: Any) -> Any:
    return click.option(
        "--embedder",
        default=lambda: os.environ.get("VIDEOQA_EMBEDDER", DEFAULT_IMAGE_EMBEDDER),
        show_default=f"{DEFAULT_IMAGE_EMBEDDER}, or $VIDEOQA_EMBEDDER",
        help="Image model: a registered name (pixel, clip-vit-b32, ...), a folder holding a CLIP or "
        "SigLIP model, or hf-hub:ORG/MODEL.",
    )(command)


def sampling_options(command: Any) -> Any:
    command = click.option(
        "--fps", type=float, default=1.0, show_default=True, help="Frames sampled per second of video."
    )(command)
    return click.option(
        "--device",
        type=click.Choice(devices_for(IMAGE_EMBEDDING)),
        default="auto",
        show_default=True,
        callback=check_device,
        help="Where the image model runs.",
    )(command)


def _load(embedder_name: str, device: str) -> ImageEmbedder:
    from videoqa.visual.embed import EmbedOptions, load_embedder

    return load_embedder(embedder_name, EmbedOptions(device=device))


def _index_options(fps: float) -> IndexOptions:
    from videoqa.media.video import SamplingOptions
    from videoqa.visual.index import IndexOptions

    return IndexOptions(sampling=SamplingOptions(fps=fps, max_side=448))


def _index_one(video: Path, embedder: ImageEmbedder, options: IndexOptions) -> VideoIndex:
    from videoqa.visual.index import index_video

    with VideoProgress() as progress:
        return index_video(video, embedder, options, on_progress=progress.track(f"indexing {video.name}"))


SCENES_EPILOG = """\b
Examples:
  videoqa scenes talk.mp4
  videoqa scenes talk.mp4 --json
  videoqa scenes talk.mp4 --save-keyframes keyframes/
"""


@click.command(epilog=SCENES_EPILOG)
@click.argument("video", type=click.Path(path_type=Path, readable=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--save-keyframes",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write each scene's keyframe as a full-size JPEG into this folder.",
)
@embedder_option
@sampling_options
@reports_user_errors
def scenes(
    video: Path, as_json: bool, save_keyframes: Path | None, embedder: str, fps: float, device: str
) -> None:
    """List a video's scenes: start, end, duration and keyframe time."""
    result = _index_one(video, _load(embedder, device), _index_options(fps))
    saved = _save_keyframes(result, save_keyframes) if save_keyframes else {}
    if as_json:
        rows = [
            {
                **asdict(scene),
                "duration_s": scene.duration_s,
                **({"keyframe_file": str(saved[scene.index])} if scene.index in saved else {}),
            }
            for scene in result.scenes
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for scene in result.scenes:
        click.echo(
            f"{scene.index:>4}  {_span(scene)}  {scene.duration_s:7.1f} s  "
            f"keyframe {format_clock(scene.keyframe_s)}"
            + (f"  {saved[scene.index]}" if scene.index in saved else "")
        )


def _span(scene: Scene) -> str:
    return f"{format_clock(scene.start_s):>9}-{format_clock(scene.end_s):<9}"


def _save_keyframes(result: VideoIndex, folder: Path) -> dict[int, Path]:
    """Write every scene's keyframe at full size, decoding the video once for all of them."""
    import numpy as np
    from PIL import Image

    from videoqa.media.video import SamplingOptions, read_frames

    folder.mkdir(parents=True, exist_ok=True)
    times = np.asarray([scene.keyframe_s for scene in result.scenes], dtype=np.float64)
    saved = {}
    for batch in read_frames(result.info, times, SamplingOptions(batch_size=4)):
        for time_s, pixels in zip(batch.timestamps_s, batch.pixels, strict=True):
            scene = result.scenes[int(np.argmin(np.abs(times - time_s)))]
            path = folder / f"scene-{scene.index:04d}.jpg"
            Image.fromarray(pixels).save(path, quality=92)
            saved[scene.index] = path
    return saved


SEARCH_EPILOG = """\b
Examples:
  videoqa search "the market" talk.mp4
  videoqa search "gate 42" --library ~/Videos --top-k 10 --json
  videoqa search "a dog on a beach" holiday.mp4 --embedder checkpoints/clip-vit-b32 --save-frame best.jpg
\b
What is said (speech) and written on screen is searched by meaning and by word; with a CLIP or SigLIP
model (--embedder) the pictures are too, and the channels' rankings are fused. Passages far below the
best match (and unrelated ones) are not listed, so there may be fewer than --top-k. Each video is indexed
the first time (as ask does, sharing its cache); --library indexes the folder's videos that are not yet,
then searches the likeliest videos, found through the library's passage index.
"""


@click.command(epilog=SEARCH_EPILOG)
@click.argument("query")
@click.argument("video", required=False, type=click.Path(readable=False))
@click.option(
    "--library",
    type=click.Path(path_type=Path, readable=False),
    help="Search every video in this folder instead of one video.",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many moments to show at most (fewer when fewer match well).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--save-frame",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the best match's frame (full size) to this image file.",
)
@embedder_option
@sampling_options
@reports_user_errors
def search(
    query: str,
    video: str | None,
    library: Path | None,
    top_k: int,
    as_json: bool,
    save_frame: Path | None,
    embedder: str,
    fps: float,
    device: str,
) -> None:
    """Find the moments that best match a text, in what is said, written on screen and (with a CLIP
    model) shown, in one video or across a library."""
    from videoqa.assistant import Assistant
    from videoqa.respond.writers import SearchResults, writer

    _check_query(query)
    target = _target(video, library)
    with VideoProgress() as stages, FetchProgress() as fetches:
        labels = _StageLabels(stages)
        assistant = Assistant(
            _search_options(embedder, device, fps), progress=labels, fetch_progress=fetches.update
        )
        assistant.load_index_models()  # a wrong model name fails now, not after indexing
        if isinstance(target, Target):
            searched = _knowledge_of([target], assistant, labels, alone=True)
        else:
            searched = library_candidates(target, query, assistant, labels, top_k)
    ranked = rank_moments(query, searched, assistant.text_embedder, assistant.embedder)
    found = cut_off(ranked)[:top_k]
    if save_frame is not None and found:
        _save_frame(found[0].path, found[0].hit.frame_s, save_frame)
    if not found and not as_json:
        click.echo(f'nothing matches "{query}" closely enough', err=True)
    click.echo(
        writer("json" if as_json else "text").render(SearchResults(tuple(m.hit for m in found))), nl=False
    )


@dataclass(frozen=True)
class Target:
    """A video to search, and how its hits name it."""

    path: Path
    label: str  # as the user typed it, or relative to the library folder


@dataclass(frozen=True)
class Searched:
    """A video's knowledge (index, passages), ready to search."""

    target: Target
    known: VideoKnowledge


@dataclass(frozen=True)
class Moment:
    """A hit and the file it is in (to save its frame)."""

    hit: SearchHit
    path: Path


def _check_query(query: str) -> None:
    from videoqa.retrieval.temporal import MAX_QUESTION_CHARS

    if not query.strip():
        raise UserError("the search text is empty; give the words or the description to look for")
    if len(query) > MAX_QUESTION_CHARS:
        raise UserError(
            f"the search text is {len(query):,} characters long; give at most {MAX_QUESTION_CHARS:,}"
        )


def _target(video: str | None, library: Path | None) -> Target | Path:
    """The video to search, or the library folder (checked: a folder that holds videos)."""
    from videoqa.library.folder import find_videos
    from videoqa.media.video import check_file

    if video is not None and library is None:
        return Target(check_file(video), video)
    if library is not None and video is None:
        if not find_videos(library):  # not a folder: LibraryError, one line
            raise UserError(f"{library}: no videos in this folder")
        return library
    raise UserError("give either a VIDEO or --library FOLDER (one of them)")


def _search_options(embedder: str, device: str, fps: float) -> AssistantOptions:
    """The index and text channels as ``ask`` builds them (the same cache entries), with this image model."""
    from videoqa.assistant import AssistantOptions

    return AssistantOptions(embedder=embedder, device=device, index=_index_options(fps))


class _StageLabels:
    """Progress bars named after the stage and the video being indexed."""

    def __init__(self, progress: VideoProgress) -> None:
        self._progress = progress
        self.video = ""

    def __call__(self, stage: str) -> Callable[[float, float], None] | None:
        return self._progress.track(f"{stage}: {self.video}")


def library_candidates(
    folder: Path, query: str, assistant: Assistant, labels: _StageLabels, top_k: int
) -> list[Searched]:
    """The videos of a library likeliest to hold the best moments, with their knowledge.

    The library's videos that are new or changed are indexed first (as ``ask --library`` does, skipping
    the files known to be bad); then its passage index (one vector index over every video's passages,
    and each video's words) gives the candidates, and with an image-text model the frames library gives
    the videos of the best scenes too. Only the candidates' knowledge is read, not every video's.
    """
    from videoqa.assistant import LIBRARY_CANDIDATES

    def on_video(name: str) -> None:
        labels.video = Path(name).name

    report = assistant.sync_library(folder, on_video)
    for name, reason in report.failed:
        log.warning("skipped %s: %s", name, reason)
    library = assistant.library(folder)
    if not library.videos:
        raise UserError(f"{folder}: none of its videos could be indexed")
    # Twice as many videos as moments shown: the fused ranking can lift a moment that neither channel
    # alone put among the first top_k.
    limit = max(2 * top_k, LIBRARY_CANDIDATES)
    vectors = assistant.text_embedder.embed([query])
    names = [candidate.name for candidate in library.candidates(vectors, query, limit)]
    names += _scene_candidates(folder, query, assistant, limit)
    targets = [Target(library.folder / name, str(Path(name))) for name in dict.fromkeys(names)]
    return _knowledge_of(targets, assistant, labels)


def _scene_candidates(folder: Path, query: str, assistant: Assistant, limit: int) -> list[str]:
    """With an image-text model, the videos of the library's best scenes by picture (the frames library,
    brought up to date); none with an image model that reads no text."""
    from videoqa.library.folder import Library
    from videoqa.visual.embed import EmbedderError

    try:
        vector = assistant.embedder.embed_texts([query])[0]
    except EmbedderError:
        return []
    frames = Library(folder, assistant.embedder, assistant.options.index)
    frames.sync()  # the videos' frames are in the cache already: only the library's index is written
    return [Path(hit.video).relative_to(frames.folder).as_posix() for hit in frames.search(vector, limit)]


def _knowledge_of(
    targets: Sequence[Target], assistant: Assistant, labels: _StageLabels, alone: bool = False
) -> list[Searched]:
    """Each video's knowledge, from the cache or built now; in a library, a video that cannot be read is
    skipped with a warning (a video given ``alone`` fails the command)."""
    searched = []
    for target in targets:
        labels.video = target.path.name
        try:
            searched.append(Searched(target, assistant.knowledge(target.path)))
        except VideoqaError as exc:
            if alone:
                raise
            log.warning("skipped %s: %s", target.label, exc)
    return searched


@dataclass(frozen=True)
class _Ranked:
    """Candidate moments and, per channel, a score for each (NaN where the channel does not rank it)."""

    moments: tuple[Moment, ...]
    channels: tuple[npt.NDArray[np.float64], ...]


def rank_moments(
    query: str, searched: Sequence[Searched], text_embedder: TextEmbedder, image_embedder: ImageEmbedder
) -> list[Moment]:
    """Every passage and (with an image-text model) every scene of the videos, best first: the channels
    (sentence similarity, BM25 where a query word occurs, image-text similarity) fused by reciprocal rank,
    as ``ask`` fuses them. One ranking over all the videos: BM25 counts word rarity across all of them."""
    import numpy as np

    from videoqa.retrieval.retrieve import RetrievalOptions, rrf

    parts = [
        _text_candidates(query, searched, text_embedder),
        _visual_candidates(query, searched, image_embedder),
    ]
    moments = [moment for part in parts for moment in part.moments]
    if not moments:
        return []
    channels = [_padded(channel, part, parts) for part in parts for channel in part.channels]
    fused = rrf(channels, RetrievalOptions().rrf_k)
    order = np.argsort(-fused, kind="stable")
    return [Moment(replace(moments[i].hit, score=float(fused[i])), moments[i].path) for i in order]


def cut_off(moments: Sequence[Moment]) -> list[Moment]:
    """The moments worth listing, in their order: a text hit (speech, screen text) that holds none of the
    query's words needs a sentence similarity of MIN_TEXT_SIMILARITY, and every text hit a similarity or
    a BM25 of at least RELATIVE_CUT of the best text hit's. Visual hits (a CLIP model's scenes) are all
    kept: image-text similarities sit in a narrow band whose spread depends on the model, and no CLIP
    model was at hand to measure a rule on; --top-k bounds them."""
    texts = [m.hit for m in moments if m.hit.channel != "visual"]
    best_dense = max((hit.similarity for hit in texts), default=0.0)
    best_lexical = max((hit.lexical or 0.0 for hit in texts), default=0.0)

    def listed(hit: SearchHit) -> bool:
        if hit.channel == "visual":
            return True
        lexical = hit.lexical or 0.0
        if lexical <= 0 and hit.similarity < MIN_TEXT_SIMILARITY:
            return False
        near_by_meaning = hit.similarity >= RELATIVE_CUT * best_dense
        return near_by_meaning or (lexical > 0 and lexical >= RELATIVE_CUT * best_lexical)

    return [m for m in moments if listed(m.hit)]


def _padded(
    channel: npt.NDArray[np.float64], owner: _Ranked, parts: Sequence[_Ranked]
) -> npt.NDArray[np.float64]:
    """One part's channel spread over all the parts' moments: NaN (not ranked) for the other parts'."""
    import numpy as np

    pieces = [channel if part is owner else np.full(len(part.moments), np.nan) for part in parts]
    return np.concatenate(pieces)


def _text_candidates(query: str, searched: Sequence[Searched], embedder: TextEmbedder) -> _Ranked:
    """The speech and screen-text passages of all the videos, scored by meaning and by word."""
    import numpy as np

    from videoqa.retrieval.retrieve import scene_at
    from videoqa.retrieval.textindex import score_passages

    owned = [(item, passage) for item in searched for passage in item.known.passages]
    if not owned:
        return _Ranked((), ())
    vectors = np.vstack([item.known.passage_vectors for item in searched if item.known.passages])
    scores = score_passages(query, embedder.embed([query])[0], [p for _, p in owned], vectors)
    moments: list[Moment] = []
    for (item, p), dense, lexical in zip(owned, scores.dense, scores.lexical, strict=True):
        middle = (p.start_s + p.end_s) / 2
        hit = SearchHit(
            video=item.target.label,
            channel=p.channel,
            start_s=p.start_s,
            end_s=p.end_s,
            frame_s=middle,
            text=p.text,
            scene=scene_at(item.known.visual.scenes, middle),
            similarity=float(dense),
            lexical=float(lexical),
            score=0.0,  # set once the channels are fused
        )
        moments.append(Moment(hit, item.target.path))
    lexical_ranked = np.where(scores.lexical > 0, scores.lexical, np.nan)
    return _Ranked(tuple(moments), (scores.dense.astype(np.float64), lexical_ranked))


def _visual_candidates(query: str, searched: Sequence[Searched], embedder: ImageEmbedder) -> _Ranked:
    """The scenes of all the videos scored by an image-text model; none when the model reads no text."""
    import numpy as np

    from videoqa.retrieval.retrieve import score_scenes
    from videoqa.visual.embed import EmbedderError

    try:
        vector = embedder.embed_texts([query])[0]
    except EmbedderError:  # the pixel embedder: the text channels alone
        return _Ranked((), ())
    moments = tuple(
        Moment(_scene_hit(item.target.label, hit), item.target.path)
        for item in searched
        for hit in score_scenes(item.known.visual, vector)
    )
    return _Ranked(moments, (np.asarray([m.hit.similarity for m in moments], dtype=np.float64),))


def _scene_hit(label: str, hit: SceneHit) -> SearchHit:
    return SearchHit(
        video=label,
        channel="visual",
        start_s=hit.scene.start_s,
        end_s=hit.scene.end_s,
        frame_s=hit.best_frame_s,
        text=None,
        scene=hit.scene.index,
        similarity=hit.max_score,
        lexical=None,
        score=0.0,  # set once the channels are fused
    )


def _save_frame(video: Path, time_s: float, path: Path) -> None:
    from PIL import Image

    from videoqa.media.video import frame_at

    frame = frame_at(video, time_s)
    try:
        Image.fromarray(frame.pixels[0]).save(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: cannot write the frame ({exc}); use a .jpg or .png name") from exc
    log.info("best frame written to %s", path)
