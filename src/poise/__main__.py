"""``python -m poise`` runs the ``poise`` command."""

from poise.cli import main

main()
