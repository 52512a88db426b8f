"""``python -m letterpress.cli``: the same as the ``letterpress`` command."""
from letterpress.cli import main

main()
