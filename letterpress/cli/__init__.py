"""The ``letterpress`` command. Click lives in this package and nowhere else.

Each command turns its options into :class:`letterpress.config.Settings`, calls
one library function and turns what comes back (or the error raised) into
messages and an exit status. Commands are grouped by what they work on.
"""
from letterpress.cli import (  # noqa: F401  (registers the commands)
    batch,
    ledger,
    serve,
    staff,
    volunteers,
)
from letterpress.cli.common import main, settings_from

__all__ = ["main", "settings_from"]

