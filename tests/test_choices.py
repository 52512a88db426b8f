"""One source of truth for choices: the CLI, the config, the slips and the server agree."""
from __future__ import annotations

import click
import pytest

from letterpress import choices, config
from letterpress import i18n as core_i18n
from letterpress.cli import main
from letterpress.errors import ConfigError
from letterpress.server import i18n
from letterpress.server.views import BUTTONS
from letterpress.slips import layouts


def _option(command: str, name: str) -> click.Option:
    return next(p for p in main.commands[command].params if p.name == name)


def test_the_slip_layouts_have_geometry_in_the_same_order():
    assert tuple(layouts.LAYOUTS) == choices.LAYOUTS
    assert choices.DEFAULT_LAYOUT in choices.LAYOUTS


@pytest.mark.parametrize("command", ["build", "slips"])
def test_cli_layout_choices(command):
    assert tuple(_option(command, "layout").type.choices) == choices.LAYOUTS


@pytest.mark.parametrize("command", ["check", "build", "letters"])
def test_cli_language_choices(command):
    assert tuple(_option(command, "lang").type.choices) == choices.LANGS


def test_cli_outcome_choices():
    assert tuple(_option("confirm", "outcome").type.choices) == choices.OUTCOMES


def test_server_buttons_and_labels_cover_every_outcome():
    assert sorted(o for o, _ in BUTTONS) == sorted(choices.OUTCOMES)
    assert {o for o, style in BUTTONS if style == "ok"} == choices.DELIVERED_OUTCOMES
    from letterpress import i18n as core

    for outcome in choices.OUTCOMES:
        for group in ("outcome", "history"):
            with core.using("en"):
                english = i18n.label(group, outcome)
            with core.using("zh"):
                chinese = i18n.label(group, outcome)
            assert english and english != outcome and chinese and chinese != english
    assert core.LANGS == choices.LANGS


def test_the_console_names_every_layout():
    from letterpress.server.i18n import label

    for layout in choices.LAYOUTS:
        for lang in choices.LANGS:
            with core_i18n.using(lang):
                assert label("c.layout", layout) != layout


def test_outcome_sets_split_the_outcomes():
    assert choices.DELIVERED_OUTCOMES | choices.FAILED_OUTCOMES == set(choices.OUTCOMES)
    assert not choices.DELIVERED_OUTCOMES & choices.FAILED_OUTCOMES
    assert choices.NOTE_REQUIRED <= set(choices.OUTCOMES)


def test_a_layout_not_given_is_none_and_the_default_applies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = config.load(None)
    assert settings.layout is None and settings.slip_layout == choices.DEFAULT_LAYOUT
    given = config.load(None, layout=choices.DEFAULT_LAYOUT)
    assert given.layout == choices.DEFAULT_LAYOUT                # given, even when the default
    assert config.load(None, layout="a4-4").slip_layout == "a4-4"
    with pytest.raises(ConfigError, match="unknown slip layout 'a5'"):
        config.load(None, layout="a5")
