"""The package list in pyproject.toml matches the tree, and the prompts ship inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from setuptools import find_packages  # type: ignore[import-untyped]

from videoqa.prompt import load_prompt

tomllib: Any = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_and_the_prompts_map_to_videoqa_prompts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=["videoqa*"]))
    assert set(config["packages"]) == found | {"videoqa.prompts"}
    assert config["package-dir"] == {"videoqa.prompts": "prompts"}
    shipped = {path.name for path in (ROOT / "prompts").glob("*.txt")}
    assert shipped >= {"answer.txt", "abstain.txt"}


def test_prompts_load_from_the_installed_package() -> None:
    answer = load_prompt("answer")
    assert "$evidence" in answer.section("user") and "$question" in answer.section("user")
    assert answer.section("system")
    assert load_prompt("abstain").section("answer")
