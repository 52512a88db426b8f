"""Click in the user's language: our --help texts, and Click's own words (Usage, Options...).

Help texts are written in English and marked with ``N_()``; :func:`translate_help` puts each
command's and option's text in the current language before Click reads it. Click marks its
own messages for gettext; :func:`translate_click` points them at our catalogue, which holds
the ones a user meets (listed below so that extraction finds them).
"""
from __future__ import annotations

import importlib
from typing import Any, List

import click

from letterpress import i18n
from letterpress.i18n import N_

#: Click's own messages that a user of letterpress can meet, exactly as Click writes them.
CLICK_MESSAGES = (
    N_("Usage:"), N_("Options"), N_("Commands"), N_("Positional arguments"),
    N_("Show this message and exit."), N_("Show the version and exit."),
    N_("%(prog)s, version %(version)s"), N_("Aborted!"), N_("Error: {message}"),
    N_("Try '{command} {option}' for help."), N_("Missing command."),
    N_("Missing argument"), N_("Missing option"), N_("Missing parameter"),
    N_("Missing {param_type}"), N_("Missing parameter: {param_name}"),
    N_("No such option {name!r}."), N_("No such command {name!r}."),
    N_("Invalid value: {message}"), N_("Invalid value for {param_hint}: {message}"),
    N_("Option {name!r} does not take a value."), N_("default: {default}"),
    N_("env var: {var}"), N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."), N_("Choose from:\n\t{choices}"),
    N_("file"), N_("directory"), N_("path"), N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a file."), N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is not readable."), N_("{name} {filename!r} is not writable."),
    N_("Error: invalid input"), N_("Do you want to continue?"), N_("Repeat for confirmation"),
    N_("Error: The two entered values do not match."),
)


def _click_plurals() -> None:  # pragma: no cover - never called; marks Click's plurals
    i18n.ngettext("Got unexpected extra argument ({args})",
                  "Got unexpected extra arguments ({args})", 2)
    i18n.ngettext("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)", 2)
    i18n.ngettext("{value!r} is not {choice}.", "{value!r} is not one of {choices}.", 2)
    i18n.ngettext("Option {name!r} requires an argument.",
                  "Option {name!r} requires {nargs} arguments.", 2)


_CLICK_MODULES = ("click.core", "click.exceptions", "click.formatting", "click.decorators",
                  "click.types", "click.termui", "click.parser", "click._optparse")


def translate_click() -> None:
    """Make Click look its messages up in letterpress's catalogue, in the current language."""
    for name in _CLICK_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "_"):
            vars(module)["_"] = i18n.raw_gettext
        if hasattr(module, "ngettext"):
            vars(module)["ngettext"] = i18n.raw_ngettext


def translate_help(command: click.Command) -> None:
    """Put the help texts of ``command``, its options and its subcommands in the current
    language (the English original is kept to translate again on the next run)."""
    objects: List[Any] = [command, *command.params]
    if getattr(command, "_help_option", None) is not None:
        command._help_option = None           # Click makes it again, in this language
    for obj in objects:
        original = obj.__dict__.setdefault("_letterpress_help", getattr(obj, "help", None))
        if original:
            obj.help = i18n.raw_gettext(original)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            translate_help(sub)
