"""``python -m ase_au20`` runs the ``au20-workflow`` command."""

from ase_au20.cli import main

main()
