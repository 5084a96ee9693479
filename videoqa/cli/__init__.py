"""The ``videoqa`` command: one module a command group, shared options and terminal pieces."""
