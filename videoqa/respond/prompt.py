"""Prompt templates from the ``prompts/`` folder (installed as the ``videoqa.respond.prompts`` package).

A template is sections headed ``[name]``; ``#`` lines are comments; ``$name`` placeholders are filled
with ``string.Template``, so braces and other text in the evidence pass through untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

_SECTION = re.compile(r"^\[(?P<name>[a-z_]+)\]\s*$")


@dataclass(frozen=True)
class PromptTemplate:
    """A template's sections by name, in file order."""

    name: str
    sections: tuple[tuple[str, str], ...]

    def section(self, name: str) -> str:
        for section_name, text in self.sections:
            if section_name == name:
                return text
        raise KeyError(f"prompt {self.name} has no [{name}] section")

    def fill(self, name: str, **values: str) -> str:
        """One section with its ``$placeholders`` filled; a missing value is an error, not a blank."""
        return Template(self.section(name)).substitute(values)


@cache
def load_prompt(name: str) -> PromptTemplate:
    """The template ``prompts/NAME.txt``."""
    text = resources.files("videoqa.respond.prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return parse_prompt(name, text)


def parse_prompt(name: str, text: str) -> PromptTemplate:
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        header = _SECTION.match(line)
        if header:
            sections.append((header.group("name"), []))
        elif sections:
            sections[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"prompt {name}: text before the first [section]")
    return PromptTemplate(name, tuple((n, "\n".join(lines).strip()) for n, lines in sections))
