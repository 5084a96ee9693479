"""Commands over the visual index: ``scenes`` and ``search`` (``index`` lives in ``cli_index.py``)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.util import UserError, VideoProgress, check_device, reports_user_errors
from videoqa.media.timefmt import format_clock
from videoqa.store.devices import devices_for
from videoqa.store.registry import DEFAULT_IMAGE_EMBEDDER, IMAGE_EMBEDDING

if TYPE_CHECKING:
    from videoqa.types import Scene, SceneHit, VideoIndex
    from videoqa.visual.embed import ImageEmbedder
    from videoqa.visual.index import IndexOptions

log = logging.getLogger("videoqa")


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
  videoqa search "a dog on a beach" holiday.mp4 --embedder checkpoints/clip-vit-b32
  videoqa search "whiteboard" --library ~/Videos --top-k 10 --json
  videoqa search "sunset" holiday.mp4 --save-frame best.jpg
"""


@click.command(epilog=SEARCH_EPILOG)
@click.argument("query")
@click.argument("video", required=False, type=click.Path(path_type=Path, readable=False))
@click.option(
    "--library",
    type=click.Path(path_type=Path, readable=False),
    help="Search every video in this folder instead of one video.",
)
@click.option(
    "--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="How many scenes to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--save-frame",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the best-matching frame (full size) to this image file.",
)
@embedder_option
@sampling_options
@reports_user_errors
def search(
    query: str,
    video: Path | None,
    library: Path | None,
    top_k: int,
    as_json: bool,
    save_frame: Path | None,
    embedder: str,
    fps: float,
    device: str,
) -> None:
    """Find the scenes that best match a text, in one video or across a library."""
    if (video is None) == (library is None):
        raise UserError("give either a VIDEO or --library FOLDER (one of them)")
    model = _load(embedder, device)
    query_vector = model.embed_texts([query])[0]  # fails at once, before indexing, without a text side
    hits = (
        _search_library(library, model, query_vector, top_k, fps)
        if library is not None
        else _search_video(video, model, query_vector, top_k, fps)  # type: ignore[arg-type]
    )
    if save_frame is not None and hits:
        _save_best_frame(hits[0], save_frame)
    _print_hits(hits, as_json)


def _search_video(
    video: Path,
    model: ImageEmbedder,
    query: Any,
    top_k: int,
    fps: float,
) -> list[SceneHit]:
    from videoqa.retrieval.retrieve import top_scenes

    return top_scenes(_index_one(video, model, _index_options(fps)), query, top_k)


def _search_library(
    folder: Path,
    model: ImageEmbedder,
    query: Any,
    top_k: int,
    fps: float,
) -> list[SceneHit]:
    from videoqa.library.folder import Library

    library = Library(folder, model, _index_options(fps))
    with VideoProgress() as progress:
        report = library.sync(lambda path: progress.track(f"indexing {path.name}"))
    for name, reason in report.failed:
        log.warning("skipped %s: %s", name, reason)
    return library.search(query, top_k)


def _save_best_frame(hit: SceneHit, path: Path) -> None:
    from PIL import Image

    from videoqa.media.video import frame_at

    frame = frame_at(hit.video, hit.best_frame_s)
    try:
        Image.fromarray(frame.pixels[0]).save(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: cannot write the frame ({exc}); use a .jpg or .png name") from exc
    log.info("best frame written to %s", path)


def _print_hits(hits: list[SceneHit], as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "video": hit.video,
                        "scene": hit.scene.index,
                        "start_s": hit.scene.start_s,
                        "end_s": hit.scene.end_s,
                        "best_frame_s": hit.best_frame_s,
                        "score": hit.max_score,
                        "mean_score": hit.mean_score,
                    }
                    for hit in hits
                ],
                indent=2,
            )
        )
        return
    for hit in hits:
        click.echo(
            f"{hit.max_score:6.3f}  {Path(hit.video).name}  scene {hit.scene.index:<4} "
            f"{_span(hit.scene)}  best frame {format_clock(hit.best_frame_s)}"
        )
