"""The package list in pyproject.toml matches the tree, and the prompts ship inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from setuptools import find_packages  # type: ignore[import-untyped]

from videoqa.respond.prompt import load_prompt

tomllib: Any = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
ROOT = Path(__file__).resolve().parent.parent


def test_packages_are_found_and_the_prompts_ship_inside_the_package() -> None:
    setuptools_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools_config["packages"]["find"]["include"] == ["videoqa*"]
    found = set(find_packages(str(ROOT), include=["videoqa*"]))
    assert {"videoqa.respond.prompts", "videoqa.cli", "videoqa.visual.embed"} <= found
    assert setuptools_config["package-data"]["videoqa.respond.prompts"] == ["*.txt"]
    # the top-level prompts/ is where people look for the templates: it must be the packaged folder
    assert (ROOT / "prompts").resolve() == (ROOT / "videoqa" / "respond" / "prompts").resolve()
    shipped = {path.name for path in (ROOT / "prompts").glob("*.txt")}
    assert shipped >= {"answer.txt", "abstain.txt"}


def test_prompts_load_from_the_installed_package() -> None:
    answer = load_prompt("answer")
    assert "$evidence" in answer.section("user") and "$question" in answer.section("user")
    assert answer.section("system")
    assert load_prompt("abstain").section("answer")
