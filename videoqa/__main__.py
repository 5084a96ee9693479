"""``python -m videoqa`` runs the command line."""

from videoqa.cli.main import main

main()
