"""``videoqa doctor``: one line per part the commands need, ok or the problem and its fix."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

DOCTOR_EPILOG = """\b
Examples:
  videoqa doctor
  videoqa doctor --json
\b
Exits 0 when every part works, 1 when any does not. Nothing is downloaded: a missing model is
reported with the command that fetches it.
"""


@click.command(epilog=DOCTOR_EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def doctor(as_json: bool) -> None:
    """Check that decoding, the default models, llama.cpp, speech, OCR, torch and the cache work here."""
    from videoqa.cli.doctor_checks import run_checks

    results = run_checks()
    if as_json:
        click.echo(json.dumps([asdict(result) for result in results], indent=2))
    else:
        width = max(len(result.part) for result in results)
        for result in results:
            status = "ok" if result.ok else "PROBLEM"
            click.echo(f"{status:<8} {result.part:<{width}}  {result.detail}")
            if not result.ok and result.fix:
                click.echo(f"{'':<8} {'':<{width}}  fix: {result.fix}")
    failed = sum(not result.ok for result in results)
    if failed:
        click.echo(f"{failed} of {len(results)} checks found a problem", err=True)
        sys.exit(1)
