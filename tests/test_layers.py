"""The package reads as the pipeline: each stage imports only from the stages below it.

The order is the one ``docs/architecture.md`` draws. An import that runs upward (a lower stage reaching
for a higher one) fails here, with the module, the line and the two stages named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "videoqa"

# Bottom to top. A stage may import its own modules and any stage listed before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("types", "errors"),
    ("store",),
    ("host",),
    ("media",),
    ("visual",),
    ("channels",),
    ("knowledge",),
    ("retrieval",),
    ("library",),
    ("memory",),
    ("llm",),
    ("respond",),
    ("assistant", "__init__"),
    ("testmedia",),
    ("bench",),
    ("serve",),
    ("cli", "__main__"),
)
RANK = {stage: rank for rank, stages in enumerate(LAYERS) for stage in stages}


def stage_of(module: str) -> str:
    """``videoqa.retrieval.temporal`` -> ``retrieval``; ``videoqa`` itself is the public ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_modules(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """Every videoqa module ``path`` (the module named ``module``) imports, anywhere in the file:
    type-only imports count too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "videoqa":  # from videoqa import x: a stage or module, else a name from __init__
                found += [(node.lineno, _package_member(alias.name)) for alias in node.names]
            elif node.module is None:  # from . import x: x is a module of that package
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return [(line, name) for line, name in found if name == "videoqa" or name.startswith("videoqa.")]


def _package_member(name: str) -> str:
    is_module = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists()
    return f"videoqa.{name}" if is_module else "videoqa"


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_stage_is_ranked() -> None:
    stages = {stage_of(module_name(path)) for path in modules()}
    assert stages <= set(RANK), f"stages with no place in LAYERS: {sorted(stages - set(RANK))}"


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_stage_imports_from_a_stage_above_it(path: Path) -> None:
    own = stage_of(module_name(path))
    upward = [
        f"line {line}: {name} ({stage_of(name)} is above {own})"
        for line, name in imported_modules(path)
        if RANK[stage_of(name)] > RANK[own]
    ]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from videoqa.respond.answer import answer\nfrom . import cache\n")
    names = [name for _, name in imported_modules(probe, "videoqa.media.probe")]
    assert names == ["videoqa.respond.answer", "videoqa.media.cache"]
    assert RANK[stage_of(names[0])] > RANK[stage_of("videoqa.media.probe")]
