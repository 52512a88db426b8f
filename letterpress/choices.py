"""The choices a user makes, in one place: the CLI's options, letterpress.toml, the server
and the tests all read them from here.

In :class:`letterpress.config.Settings` a choice left out is ``None`` ("not given"), never
its default: a rebuild can then tell "not given" (keep what the batch was built with)
from a choice that happens to equal the default.
"""
from __future__ import annotations

from typing import FrozenSet, Tuple

#: Slip layouts (their geometry: letterpress.slips.layouts.LAYOUTS, same names and order).
LAYOUTS: Tuple[str, ...] = ("a4-8", "a4-4", "label-100x150")
DEFAULT_LAYOUT = "a4-8"

#: Languages of letters, slips, CLI messages and pages.
LANGS: Tuple[str, ...] = ("zh", "en")
DEFAULT_LANG = "zh"

#: Outcomes a volunteer (or staff) can record for a household.
OUTCOMES: Tuple[str, ...] = ("delivered", "not-home", "refused", "proxy", "hospital", "other")
#: Outcomes that count as the package having reached the household.
DELIVERED_OUTCOMES: FrozenSet[str] = frozenset({"delivered", "proxy"})
#: Outcomes that mean the household still needs a visit.
FAILED_OUTCOMES: FrozenSet[str] = frozenset(set(OUTCOMES) - DELIVERED_OUTCOMES)
#: Outcomes that need a note.
NOTE_REQUIRED: FrozenSet[str] = frozenset({"proxy", "other"})
