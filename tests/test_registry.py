"""The model registry is data, every entry complete, and each list of names is defined once.

Defaults, device lists, quantizations and video suffixes live in ``videoqa.store`` and ``videoqa.media``;
the options of every stage and the command line read them, and no other module writes them again.
"""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest

from videoqa.store import devices, models, registry
from videoqa.store.registry import MODELS, ModelSpec

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "videoqa"


def _python_files() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])


# -- the entries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", MODELS.values(), ids=lambda spec: spec.name)
def test_every_entry_is_complete(spec: ModelSpec) -> None:
    assert spec.kind in registry.KINDS and spec.format and spec.summary and spec.source.label
    source = spec.source
    if isinstance(source, registry.Wheels):
        assert spec.license and spec.size_bytes > 0 and spec.files
        assert all("==" in requirement for requirement in source.requirements)
        assert all(len(file.sha256) == 64 and file.size_bytes > 0 for file in source.files)
    elif isinstance(source, registry.Hub):  # a hub download is unpinned: licence and size are its card's
        assert source.hub_id.count("/") == 1 and all(source.hub_id.split("/")) and source.architecture
        assert spec.size_bytes == 0 and not spec.requirements
    elif isinstance(source, registry.Package):
        assert spec.license and "==" in source.requirement and source.requirement in source.install
        assert source.module.isidentifier()
    elif isinstance(source, registry.Program):
        assert spec.license and source.program and source.install
    else:
        assert isinstance(source, registry.BuiltIn) and spec.license and spec.size_bytes == 0


def test_every_kind_has_models_and_the_json_name_of_the_kind_is_task() -> None:
    assert {spec.kind for spec in MODELS.values()} == set(registry.KINDS)
    assert all(spec.task == spec.kind for spec in MODELS.values())


def test_a_malformed_entry_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        ModelSpec("x", "translation", "gguf", registry.BuiltIn(), "MIT", "a model of no known kind")
    with pytest.raises(ValueError, match="only a hub model may leave its licence"):
        ModelSpec("x", registry.OCR, "onnx", registry.Program("x", "apt-get install x"), None, "no licence")
    with pytest.raises(ValueError, match="must not be empty"):
        ModelSpec("x", registry.OCR, "onnx", registry.BuiltIn(), "MIT", "")


def test_the_store_installs_exactly_the_wheel_shipped_entries() -> None:
    assert {name: spec for name, spec in MODELS.items() if spec.stored} == models.REGISTRY
    assert all(isinstance(spec.source, registry.Wheels) for spec in models.REGISTRY.values())
    hub_model = MODELS["clip-vit-b32"]
    assert not models.is_installed(hub_model, ROOT)  # nothing of a hub model is the store's
    with pytest.raises(models.ModelError, match="unknown model 'clip-vit-b32'"):
        models.spec_for("clip-vit-b32")


def test_the_defaults_are_entries_of_their_kind_and_the_offline_ones_come_from_the_store() -> None:
    for name, kind in registry.DEFAULTS:
        assert MODELS[name].kind == kind, name
    for name in (registry.DEFAULT_LLM, registry.DEFAULT_SPEECH_MODEL, registry.DEFAULT_TEXT_EMBEDDER):
        assert name in models.REGISTRY  # fetched by `ask` on first use, with no hub
    assert registry.FAST_LLM in models.REGISTRY and registry.FAST_SPEECH_MODEL in models.REGISTRY


def test_the_override_variables_still_choose_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOQA_MODEL", "my.gguf")
    monkeypatch.setenv("VIDEOQA_SPEECH_MODEL", "")
    assert registry.default_llm() == "my.gguf"
    assert registry.default_speech_model() == registry.DEFAULT_SPEECH_MODEL


# -- each stage reads the registry ---------------------------------------------------------------------


def test_the_stages_take_their_defaults_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from videoqa.assistant import AssistantOptions
    from videoqa.channels.ocr import OcrOptions
    from videoqa.channels.speech import SpeechOptions
    from videoqa.llm import DEFAULT_LLM

    monkeypatch.delenv("VIDEOQA_MODEL", raising=False)
    monkeypatch.delenv("VIDEOQA_SPEECH_MODEL", raising=False)
    options = AssistantOptions()
    assert (options.llm, options.embedder, options.text_embedder) == (
        registry.DEFAULT_LLM,
        registry.DEFAULT_IMAGE_EMBEDDER,
        registry.DEFAULT_TEXT_EMBEDDER,
    )
    assert SpeechOptions().model == registry.DEFAULT_SPEECH_MODEL
    assert OcrOptions().engine == registry.DEFAULT_OCR_ENGINE and DEFAULT_LLM == registry.DEFAULT_LLM


def test_the_backends_registries_are_views_of_the_model_registry() -> None:
    from videoqa.channels.ocr import ENGINES
    from videoqa.llm.transformers_vlm import VLM_REGISTRY
    from videoqa.visual.embed import REGISTRY as EMBEDDERS

    images = registry.of_kind(registry.IMAGE_EMBEDDING)
    assert list(EMBEDDERS) == list(images)
    for name, embedder in EMBEDDERS.items():
        source = images[name].source
        assert embedder.summary == images[name].summary
        assert embedder.hub_id == (source.hub_id if isinstance(source, registry.Hub) else None)
    assert list(ENGINES) == list(registry.of_kind(registry.OCR))
    for name, engine in ENGINES.items():
        source = MODELS[name].source
        assert isinstance(source, registry.Package | registry.Program) and engine.install == source.install
    vlms = registry.of_kind(registry.VISION)
    assert list(VLM_REGISTRY) == list(vlms)
    for name, vlm in VLM_REGISTRY.items():
        assert vlms[name].source == registry.Hub(vlm.hub_id, vlm.family) and vlm.summary == vlms[name].summary


def test_each_backend_accepts_the_devices_the_registry_gives_its_kind() -> None:
    from videoqa.assistant import AssistantOptions
    from videoqa.channels.speech import SPEECH_DEVICES
    from videoqa.channels.text_embedder import TEXT_DEVICES
    from videoqa.llm import LLM_DEVICES, QUANTIZATIONS
    from videoqa.visual.embed import DEVICES as EMBED_DEVICES

    assert all(AssistantOptions(device=device).device == device for device in devices.DEVICES)
    assert LLM_DEVICES == devices.devices_for(registry.ANSWER) == devices.devices_for(registry.VISION)
    assert devices.devices_for(registry.SPEECH) == SPEECH_DEVICES
    assert devices.devices_for(registry.TEXT_EMBEDDING) == TEXT_DEVICES
    assert devices.devices_for(registry.IMAGE_EMBEDDING) == EMBED_DEVICES
    assert QUANTIZATIONS == devices.QUANTIZATIONS
    assert all(set(accepted) <= set(devices.DEVICES) for accepted in devices.DEVICES_BY_KIND.values())
    assert set(devices.ALWAYS_AVAILABLE) <= set(devices.DEVICES)


def test_devices_are_refused_with_the_same_words_as_before() -> None:
    from videoqa.channels.speech import SpeechOptions
    from videoqa.errors import OptionsError
    from videoqa.llm import LlmOptions
    from videoqa.visual.embed import EmbedOptions

    with pytest.raises(OptionsError, match=r"^device must be one of auto, cpu, cuda, got 'mps'$"):
        LlmOptions(device="mps")
    with pytest.raises(OptionsError, match=r"^device must be one of auto, cpu, cuda, got 'mps'$"):
        SpeechOptions(model="whisper-tiny.en", device="mps")
    with pytest.raises(OptionsError, match=r"^device must be one of auto, cpu, cuda, mps, got 'gpu'$"):
        EmbedOptions(device="gpu")
    with pytest.raises(OptionsError, match=r"^quantize must be one of none, 4bit, 8bit, got '2bit'$"):
        LlmOptions(quantize="2bit")
    assert EmbedOptions(device="mps").device == "mps" and LlmOptions(quantize="8bit").quantize == "8bit"


def _choices(command: click.Command, option: str) -> tuple[str, ...] | None:
    for param in command.params:
        if isinstance(param, click.Option) and option in param.opts:
            assert isinstance(param.type, click.Choice)
            return tuple(param.type.choices)
    return None


def test_the_command_line_offers_the_registry_choices() -> None:
    from videoqa.cli.main import cli

    assert isinstance(cli, click.Group)
    offered = {name: _choices(command, "--device") for name, command in cli.commands.items()}
    every_model = devices.DEVICES  # ask, caption and chat: the assistant's models
    image_model = devices.devices_for(registry.IMAGE_EMBEDDING)  # index, scenes, search
    expected: dict[str, tuple[str, ...]] = {"ask": every_model, "caption": every_model, "chat": every_model}
    expected |= {"serve": every_model}
    expected |= {"index": image_model, "scenes": image_model, "search": image_model}
    assert {name: choices for name, choices in offered.items() if choices is not None} == expected
    for name in ("ask", "caption", "chat", "serve"):
        assert _choices(cli.commands[name], "--quantize") == devices.QUANTIZATIONS


def test_the_command_line_shows_the_registry_defaults() -> None:
    from videoqa.cli.main import cli

    shown = {
        (name, opt): param.show_default
        for name, command in cli.commands.items()
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt in ("--model", "--speech-model", "--embedder")
    }
    assert shown[("ask", "--model")] == f"{registry.DEFAULT_LLM}, or $VIDEOQA_MODEL"
    assert shown[("index", "--speech-model")] == f"{registry.DEFAULT_SPEECH_MODEL}, or $VIDEOQA_SPEECH_MODEL"
    assert shown[("scenes", "--embedder")] == f"{registry.DEFAULT_IMAGE_EMBEDDER}, or $VIDEOQA_EMBEDDER"


# -- nothing is written twice ----------------------------------------------------------------------------


def _literal_lists(path: Path) -> list[tuple[int, frozenset[str]]]:
    """Every tuple, list or set of two or more string literals in a file, as a set, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) > 1:
            strings = [i.value for i in node.elts if isinstance(i, ast.Constant) and isinstance(i.value, str)]
            if len(strings) == len(node.elts):
                found.append((node.lineno, frozenset(strings)))
    return found


def test_device_quantization_and_suffix_lists_are_written_once() -> None:
    from videoqa.media.formats import VIDEO_SUFFIXES

    owners = {
        "videoqa/store/devices.py": {frozenset(devices.DEVICES), frozenset(devices.QUANTIZATIONS)},
        "videoqa/media/formats.py": {frozenset(VIDEO_SUFFIXES)},
    }
    defined = {frozenset(accepted) for accepted in devices.DEVICES_BY_KIND.values()}
    defined.add(frozenset(devices.QUANTIZATIONS))
    written = []
    for path in _python_files():
        here = path.relative_to(ROOT).as_posix()
        for line, names in _literal_lists(path):
            again = names in defined or names <= set(VIDEO_SUFFIXES)
            if again and names not in owners.get(here, set()):
                written.append(f"{here}:{line}: {sorted(names)}")
    assert not written, "written again instead of imported:\n" + "\n".join(written)


def _string_defaults(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals a file gives as a value or default: assignments, parameter and field defaults,
    ``default=`` arguments."""
    values: list[ast.expr | None] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            values.append(node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            values += [*node.args.defaults, *node.args.kw_defaults]
        elif isinstance(node, ast.keyword) and node.arg == "default":
            values.append(node.value)
    return [
        (value.lineno, value.value)
        for value in values
        if isinstance(value, ast.Constant) and isinstance(value.value, str)
    ]


def test_no_default_model_name_is_written_outside_the_registry() -> None:
    defaults = {name for name, _ in registry.DEFAULTS}
    written = [
        f"{path.relative_to(ROOT).as_posix()}:{line}: {name!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "store" / "registry.py"
        for line, name in _string_defaults(ast.parse(path.read_text(encoding="utf-8")))
        if name in defaults
    ]
    assert not written, "default model names written again instead of imported:\n" + "\n".join(written)
