"""Synthetic videos whose content is known exactly: scenes with cuts or cross-fades, text cards, speech.

Tests, benchmarks and the needle-in-a-haystack builder describe a video as a ``SynthSpec`` and get back a
file plus its ground truth: where every cut is, when each text card is on screen, when each sentence is
spoken. Pictures come from ffmpeg's generated patterns or from real footage; speech from espeak-ng or from
Piper's neural voice (``voices.py``), which gets quiet pink noise under it as a real recording would.
``ffmpeg`` and ``espeak-ng`` are called with argument lists (never a shell); Piper through its Python API.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from videoqa.errors import OptionsError, VideoqaError
from videoqa.testmedia import voices

if TYPE_CHECKING:
    from piper import PiperVoice

# ffmpeg's generated sources, chosen to look unlike each other so every cut is a real visual change.
PATTERNS: tuple[str, ...] = (
    "testsrc2",
    "smptebars",
    "color=c=0x1f4e79",
    "cellauto=rule=110:seed=1",  # seeded: the same spec renders the same video
    "rgbtestsrc",
    "color=c=0xc55a11",
    "life=mold=10:ratio=0.2:seed=1:death_color=#0a3d12:life_color=#e2f0d9",
    "gradients=c0=0x7030a0:c1=0xffd966:speed=0.02:seed=1",
    "color=c=0x404040",
    "smptehdbars",
)
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
_SUBPROCESS_TIMEOUT_S = 3600.0
_SAMPLE_RATE = 22050  # of the audio track; both voices speak at this rate
# Whether a voice gets noise under its narration unless the spec says: the neural voice does (a clean
# studio voice over digital silence is easier than any real recording); espeak-ng does not, so the tests
# that measure silence around its lines keep measuring exactly that.
_NOISE_BY_DEFAULT = {voices.ESPEAK: False, voices.PIPER: True}
# Pink noise, quiet: RMS about 0.004, some 20-25 dB under Piper's speech (whose peaks Piper normalises to
# full scale); seeded so a spec renders the same.
_NOISE_SOURCE = f"anoisesrc=color=pink:amplitude=0.02:seed=1:sample_rate={_SAMPLE_RATE}"
_SILENCE_SOURCE = f"anullsrc=channel_layout=mono:sample_rate={_SAMPLE_RATE}"


class SynthError(VideoqaError):
    """A synthetic video could not be made (a missing program, or ffmpeg failed)."""


@dataclass(frozen=True)
class SynthScene:
    """One shot. ``source`` is an ffmpeg pattern (``"lavfi:testsrc2"``) or a video file path.

    ``duration_s`` counts every second the shot is on screen, its cross-fades included.
    """

    duration_s: float
    source: str
    offset_s: float = 0.0  # where to start reading a file source; it loops when it runs out
    fade_s: float = 0.0  # cross-fade from this scene into the next over this long; 0 is a hard cut

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"scene duration must be positive, got {self.duration_s}")
        if self.offset_s < 0:
            raise ValueError(f"scene offset must be >= 0, got {self.offset_s}")
        if not 0 <= self.fade_s < self.duration_s:
            raise ValueError(
                f"fade must be >= 0 and shorter than its scene ({self.duration_s} s), got {self.fade_s}"
            )


@dataclass(frozen=True)
class TextCard:
    """Text drawn in a box over the picture from ``start_s`` for ``duration_s`` seconds."""

    start_s: float
    duration_s: float
    text: str


@dataclass(frozen=True)
class SpokenLine:
    """A sentence spoken by the spec's voice, starting at ``start_s``."""

    start_s: float
    text: str


@dataclass(frozen=True)
class SynthSpec:
    """Everything needed to render a synthetic video.

    A cross-fade overlaps the end of one scene with the start of the next (ffmpeg's ``xfade``), so each
    fade makes the video ``fade_s`` shorter than the sum of its scenes. Its ground-truth cut is the middle
    of the fade.
    """

    scenes: tuple[SynthScene, ...]
    cards: tuple[TextCard, ...] = ()
    speech: tuple[SpokenLine, ...] = ()
    width: int = 640
    height: int = 360
    fps: float = 30.0
    keyframe_interval: int = 250  # frames between keyframes (x264's default GOP length)
    audio: bool = True  # write an audio track (silent where nothing is spoken, unless noise is on)
    voice: str = voices.ESPEAK  # what speaks the lines: "espeak" (espeak-ng) or "piper" (neural)
    espeak_voice: str = "en-us"  # espeak-ng's voice, for voice="espeak"
    piper_voice: str = voices.DEFAULT_PIPER_VOICE  # Piper's voice, for voice="piper"
    noise: bool | None = None  # pink noise under the whole track; None: on for piper, off for espeak

    def __post_init__(self) -> None:
        voices.check_voice(self.voice)
        if self.piper_voice not in voices.PIPER_VOICES:
            raise OptionsError(
                f"unknown Piper voice {self.piper_voice!r}; known: {', '.join(sorted(voices.PIPER_VOICES))}"
            )
        if self.noise and not self.audio:
            raise OptionsError("noise needs audio=True")
        if not self.scenes:
            raise ValueError("a synthetic video needs at least one scene")
        if self.width % 2 or self.height % 2 or self.width <= 0 or self.height <= 0:
            raise ValueError(f"size must be positive and even, got {self.width}x{self.height}")
        if self.fps <= 0 or self.keyframe_interval <= 0:
            raise ValueError("fps and keyframe_interval must be positive")
        if self.speech and not self.audio:
            raise ValueError("spoken lines need audio=True")
        self._check_fades()
        starts = [(card.text, card.start_s) for card in self.cards]
        starts += [(line.text, line.start_s) for line in self.speech]
        for text, start_s in starts:
            if not 0 <= start_s < self.duration_s:
                raise ValueError(
                    f"{text!r} at {start_s} s starts outside the video (0-{self.duration_s:.1f} s)"
                )

    @property
    def with_noise(self) -> bool:
        """Whether pink noise lies under the track: as asked, else the voice's default."""
        return self.audio and (_NOISE_BY_DEFAULT[self.voice] if self.noise is None else self.noise)

    def _check_fades(self) -> None:
        """Each scene must be seen alone for a moment: its fade in and fade out may not overlap."""
        if self.scenes[-1].fade_s:
            raise ValueError("the last scene has no next scene to cross-fade into")
        fades_in = [0.0, *(scene.fade_s for scene in self.scenes[:-1])]
        for index, (scene, fade_in) in enumerate(zip(self.scenes, fades_in, strict=True)):
            if fade_in + scene.fade_s >= scene.duration_s:
                raise ValueError(
                    f"scene {index} ({scene.duration_s} s) is shorter than its fades in "
                    f"and out ({fade_in} s + {scene.fade_s} s)"
                )

    @property
    def duration_s(self) -> float:
        """Length of the video: the scenes' lengths less the overlap of every cross-fade."""
        return sum(scene.duration_s for scene in self.scenes) - sum(scene.fade_s for scene in self.scenes)

    @property
    def start_times_s(self) -> list[float]:
        """When each scene appears: a cross-fade starts the next scene ``fade_s`` before this one ends."""
        times, elapsed = [], 0.0
        for scene in self.scenes:
            times.append(elapsed)
            elapsed += scene.duration_s - scene.fade_s
        return times

    @property
    def cut_times_s(self) -> list[float]:
        """Where each scene gives way to the next: the hard cut, or the middle of the cross-fade."""
        return [
            start_s + scene.duration_s - scene.fade_s / 2
            for start_s, scene in zip(self.start_times_s, self.scenes[:-1], strict=False)
        ]


@dataclass(frozen=True)
class SpokenSpan:
    """Where a spoken line actually sounds, once synthesised."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class SynthVideo:
    """A rendered synthetic video and its ground truth."""

    path: Path
    spec: SynthSpec
    spoken: tuple[SpokenSpan, ...] = field(default=())

    def manifest(self) -> dict[str, object]:
        """Ground truth as plain data (also written next to the video as ``.json``)."""
        return {
            "path": str(self.path),
            "duration_s": self.spec.duration_s,
            "cut_times_s": self.spec.cut_times_s,
            "cards": [asdict(card) for card in self.spec.cards],
            "spoken": [asdict(span) for span in self.spoken],
            "spec": asdict(self.spec),
        }


def render(spec: SynthSpec, path: Path) -> SynthVideo:
    """Render ``spec`` to ``path`` (an .mp4) and write its manifest to ``path.with_suffix('.json')``."""
    _require_programs(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="videoqa-synth-") as tmp:
        work = Path(tmp)
        spoken = tuple(_synthesise_speech(spec, work))
        command = _ffmpeg_command(spec, spoken, work, path)
        _run(command, "ffmpeg")
    video = SynthVideo(
        path=path,
        spec=spec,
        spoken=tuple(SpokenSpan(span.start_s, span.end_s, span.text) for span, _ in spoken),
    )
    path.with_suffix(".json").write_text(json.dumps(video.manifest(), indent=2))
    return video


def pattern_scenes(durations_s: Sequence[float]) -> tuple[SynthScene, ...]:
    """Scenes of the given lengths, cycling through visually distinct generated patterns."""
    return tuple(SynthScene(d, "lavfi:" + PATTERNS[i % len(PATTERNS)]) for i, d in enumerate(durations_s))


def loop_video(source: Path, repeats: int, path: Path) -> Path:
    """Write ``source`` played ``repeats`` times back to back into ``path`` without re-encoding."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    _run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-stream_loop",
            str(repeats - 1),
            "-i",
            str(source),
            "-c",
            "copy",
            str(path),
        ],
        "ffmpeg",
    )
    return path


def _require_programs(spec: SynthSpec) -> None:
    needed = ["ffmpeg"] + (["espeak-ng"] if spec.speech and spec.voice == voices.ESPEAK else [])
    if spec.speech and spec.voice == voices.PIPER:
        try:
            voices.require_piper()
        except voices.VoiceError as exc:
            raise SynthError(str(exc)) from None
    missing = [name for name in needed if shutil.which(name) is None]
    if missing:
        raise SynthError(
            f"{', '.join(missing)} not found; install it (Debian: apt-get install {' '.join(missing)})"
        )
    if spec.cards and _font_file() is None:
        raise SynthError("no font for text cards; install fonts-dejavu-core")


def _font_file() -> str | None:
    return next((font for font in _FONT_CANDIDATES if Path(font).is_file()), None)


def _synthesise_speech(spec: SynthSpec, work: Path) -> list[tuple[SpokenSpan, Path]]:
    """Each line spoken into a wav of its own; its span ends when its wav does."""
    spans = []
    piper = None
    if spec.speech and spec.voice == voices.PIPER:
        piper = _piper_voice(voices.piper_model(spec.piper_voice))
    for index, line in enumerate(spec.speech):
        wav = work / f"speech{index}.wav"
        if piper is None:
            _run(["espeak-ng", "-v", spec.espeak_voice, "-w", str(wav), line.text], "espeak-ng")
        else:
            _piper_say(piper, line.text, wav)
        with wave.open(str(wav)) as handle:
            length_s = handle.getnframes() / handle.getframerate()
        spans.append((SpokenSpan(line.start_s, line.start_s + length_s, line.text), wav))
    return spans


@lru_cache(maxsize=2)
def _piper_voice(model: Path) -> PiperVoice:
    """Piper's voice, loaded once a process (about a second): a story renders many chunks."""
    from piper import PiperVoice

    return PiperVoice.load(model)


def _piper_say(voice: PiperVoice, text: str, wav: Path) -> None:
    from piper import SynthesisConfig

    # Piper's network draws unseeded random noise for pitch and timing; with it off, the same line
    # always sounds the same, so tests are deterministic and a cached haystack can be rendered again.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    with wave.open(str(wav), "wb") as handle:
        voice.synthesize_wav(text, handle, syn_config=config)


def _ffmpeg_command(
    spec: SynthSpec, spoken: Sequence[tuple[SpokenSpan, Path]], work: Path, out: Path
) -> list[str]:
    inputs: list[str] = []
    filters: list[str] = []
    for index, scene in enumerate(spec.scenes):
        inputs += _scene_input(scene, spec)
        filters.append(
            f"[{index}:v]scale={spec.width}:{spec.height}:"
            f"force_original_aspect_ratio=decrease,pad={spec.width}:{spec.height}:"
            f"(ow-iw)/2:(oh-ih)/2,setsar=1,fps={spec.fps},format=yuv420p,"
            f"trim=duration={scene.duration_s},setpts=PTS-STARTPTS[s{index}]"
        )
    labels = [_cross_fade(run, spec, filters) for run in _fade_runs(spec)]
    filters.append(f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0{_card_filters(spec, work)}[vout]")
    maps = ["-map", "[vout]"]
    if spec.audio:
        first_audio = len(spec.scenes)
        base = _NOISE_SOURCE if spec.with_noise else _SILENCE_SOURCE
        inputs += ["-f", "lavfi", "-t", f"{spec.duration_s}", "-i", base]
        for _, wav in spoken:
            inputs += ["-i", str(wav)]
        filters.append(_audio_filter(spoken, first_audio))
        maps += ["-map", "[aout]", "-c:a", "aac", "-b:a", "64k"]
    return [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        *inputs,
        "-filter_complex",
        ";".join(filters),
        *maps,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-g",
        str(spec.keyframe_interval),
        "-pix_fmt",
        "yuv420p",
        "-r",
        f"{spec.fps}",
        "-t",
        f"{spec.duration_s}",
        "-movflags",
        "+faststart",
        str(out),
    ]


def _fade_runs(spec: SynthSpec) -> list[list[int]]:
    """Scene indices grouped into runs joined by cross-fades; hard cuts separate the runs."""
    runs = [[0]]
    for index in range(1, len(spec.scenes)):
        if spec.scenes[index - 1].fade_s:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _cross_fade(run: list[int], spec: SynthSpec, filters: list[str]) -> str:
    """Append the xfade filters that join the scenes of ``run``; return the label of the joined stream.

    A run of one scene adds nothing, so a video without fades gets the plain concat it always had.
    """
    label, length_s = f"[s{run[0]}]", spec.scenes[run[0]].duration_s
    for previous, index in itertools.pairwise(run):
        fade_s = spec.scenes[previous].fade_s
        # xfade's offset is measured on its first input: the run joined so far.
        offset_s = length_s - fade_s
        filters.append(
            f"{label}[s{index}]xfade=transition=fade:duration={fade_s}:offset={offset_s}[x{index}]"
        )
        label, length_s = f"[x{index}]", offset_s + spec.scenes[index].duration_s
    return label


def _scene_input(scene: SynthScene, spec: SynthSpec) -> list[str]:
    if scene.source.startswith("lavfi:"):
        pattern = scene.source.removeprefix("lavfi:")
        separator = ":" if "=" in pattern else "="
        return [
            "-f",
            "lavfi",
            "-t",
            f"{scene.duration_s}",
            "-i",
            f"{pattern}{separator}size={spec.width}x{spec.height}:rate={spec.fps}",
        ]
    return ["-stream_loop", "-1", "-ss", f"{scene.offset_s}", "-t", f"{scene.duration_s}", "-i", scene.source]


def _card_filters(spec: SynthSpec, work: Path) -> str:
    parts = []
    for index, card in enumerate(spec.cards):
        # The text goes through a file so no character needs escaping for the filter syntax.
        text_file = work / f"card{index}.txt"
        text_file.write_text(card.text)
        end_s = card.start_s + card.duration_s
        parts.append(
            f",drawtext=fontfile={_font_file()}:textfile={text_file}:expansion=none:fontcolor=white"
            f":fontsize={max(12, spec.height // 12)}:box=1:boxcolor=black@0.85:boxborderw=12"
            f":x=(w-text_w)/2:y=(h-text_h)/2:enable='between(t,{card.start_s},{end_s})'"
        )
    return "".join(parts)


def _audio_filter(spoken: Sequence[tuple[SpokenSpan, Path]], first_input: int) -> str:
    if not spoken:
        return f"[{first_input}:a]anull[aout]"
    chains, labels = [], [f"[{first_input}:a]"]
    for index, (span, _) in enumerate(spoken):
        delay_ms = round(span.start_s * 1000)
        chains.append(
            f"[{first_input + 1 + index}:a]aresample={_SAMPLE_RATE},aformat=channel_layouts=mono,"
            f"adelay={delay_ms}:all=1[sp{index}]"
        )
        labels.append(f"[sp{index}]")
    mix = f"{''.join(labels)}amix=inputs={len(labels)}:normalize=0:duration=first[aout]"
    return ";".join([*chains, mix])


def _run(command: list[str], program: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_SUBPROCESS_TIMEOUT_S)
    except OSError as exc:
        raise SynthError(f"{program} could not run: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SynthError(f"{program} did not finish in {_SUBPROCESS_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SynthError(f"{program} failed: {detail}")
