"""Data passed between pipeline stages: frozen dataclasses with units in their field names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class AudioInfo:
    """The first audio track of a video file."""

    codec: str  # decoder name, e.g. "aac"
    sample_rate_hz: int
    channels: int
    decodable: bool  # a few packets were decoded successfully while probing
    problem: str | None = None  # why it could not be decoded, when it could not


@dataclass(frozen=True)
class VideoInfo:
    """What a user needs to know about a video before asking about it (see ``video.probe``)."""

    path: str
    size_bytes: int
    container: str  # container format, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    video_codec: str
    duration_s: float  # length of the video track
    start_s: float  # presentation time of the first frame in the file; timestamps we report start at 0
    fps: float  # average frame rate
    variable_fps: bool  # frame intervals differ (phones, screen recordings)
    frame_count: int
    frame_count_exact: bool  # False when the container does not store it and it was estimated
    coded_width: int  # as stored, before rotation
    coded_height: int
    rotation_deg: int  # counter-clockwise turn that shows the frame upright: 0, 90, 180 or 270
    pixel_format: str
    bit_rate_bps: int | None
    audio: AudioInfo | None
    readable_until_s: float | None = None  # set when the file is cut short: frames end about here

    @property
    def width(self) -> int:
        """Width of the upright frame, as a player shows it."""
        return self.coded_height if self.rotation_deg in (90, 270) else self.coded_width

    @property
    def height(self) -> int:
        """Height of the upright frame, as a player shows it."""
        return self.coded_width if self.rotation_deg in (90, 270) else self.coded_height


@dataclass(frozen=True, eq=False)
class FrameBatch:
    """Consecutive sampled frames, upright, in presentation order.

    ``timestamps_s`` has shape (n,) float64: each frame's real presentation time in seconds, measured
    from the first frame of the video. ``pixels`` has shape (n, height, width, 3), uint8 RGB.
    """

    timestamps_s: npt.NDArray[np.float64]
    pixels: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.timestamps_s.shape[0])


@dataclass(frozen=True)
class Scene:
    """A stretch of video between two cuts, as found by SceneTilling (``scenes.py``).

    Frame indices point into the sampled frames the scenes were cut from: the scene holds frames
    ``first_frame`` up to (not including) ``stop_frame``.
    """

    index: int  # position in the video, from 0
    start_s: float
    end_s: float
    first_frame: int
    stop_frame: int
    keyframe: int  # the sampled frame closest to the scene's mean embedding
    keyframe_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, eq=False)
class VideoIndex:
    """Everything indexing learned about one video (see ``index.py``).

    ``timestamps_s`` (n,) float64 and ``frame_embeddings`` (n, d) float16 describe the sampled frames;
    ``scene_embeddings`` (len(scenes), d) float32 are the L2-normalised mean of each scene's frames.
    """

    info: VideoInfo
    embedder_id: str
    timestamps_s: npt.NDArray[np.float64]
    frame_embeddings: npt.NDArray[np.float16]
    scenes: tuple[Scene, ...]
    scene_embeddings: npt.NDArray[np.float32]
    cache_key: str  # the entry in the index cache that holds all this
    cached: bool  # loaded from the cache rather than built now


@dataclass(frozen=True)
class SceneHit:
    """A scene scored against a query (see ``retrieve.py``)."""

    video: str  # path of the video the scene belongs to
    scene: Scene
    max_score: float  # cosine similarity of the best-matching sampled frame
    mean_score: float  # cosine similarity of the scene's pooled embedding
    best_frame_s: float  # time of that best-matching frame


@dataclass(frozen=True)
class Passage:
    """A stretch of text the video holds: a transcribed utterance or the text on screen for a while."""

    channel: str  # "speech" or "screen"
    start_s: float
    end_s: float
    text: str
