"""The one place Jinja environments are made: sandboxed, so a template is data, never code.

Every environment letterpress renders a template with comes from :func:`environment`
(the fast renderer's, document properties', and docxtpl's own when it renders a
template the fast path cannot): an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`,
which refuses access to private attributes and to methods that change lists or dicts.
"""
from __future__ import annotations

from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


def environment(**options: Any) -> jinja2.Environment:
    """A sandboxed Jinja environment with ``options`` (as :class:`jinja2.Environment` takes)."""
    return ImmutableSandboxedEnvironment(**options)
