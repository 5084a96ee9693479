"""``python -m videoqa`` runs the command line."""

from videoqa.cli import main

main()
