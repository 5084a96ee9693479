"""Prompt templates: the ``.txt`` files beside this one, installed as ``videoqa.respond.prompts``.

They are plain text so they can be read and changed without touching code; ``videoqa/respond/prompt.py`` loads
them. This file only makes the folder a package that the wheel ships.
"""
