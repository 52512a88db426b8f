"""Staff accounts and API tokens from a terminal: ``letterpress staff add|remove|list|token|revoke``."""
from __future__ import annotations

import datetime as _dt
import re

import click

from letterpress.cli.common import _echo_err, db_option, main, settings_from
from letterpress.i18n import N_, _

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> _dt.timedelta:
    """``30m``, ``12h``, ``7d`` as a timedelta (click.BadParameter otherwise)."""
    m = _DURATION.match(text or "")
    if not m or int(m.group(1)) == 0:
        raise click.BadParameter(_("%(text)r is not a duration; write e.g. 30m, 12h or 7d",
                                   text=text))
    return _dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


def _open(db, create: bool):
    from letterpress.ledger import Ledger

    return Ledger.open(settings_from(None, db=db).db, create=create)


@main.group(help=N_("Staff accounts of the web console, and tokens for its JSON API."))
def staff():
    pass


@staff.command("add", help=N_("Make a staff account NAME that signs in at /staff/sign-in."))
@click.argument("name")
@click.password_option("--password", help=N_("The password (asked for when not given)."))
@db_option
def add(name, password, db):
    from letterpress.ledger import accounts

    with _open(db, create=True) as ledger:
        made = accounts.add_staff(ledger, name, password)
        accounts.log_action(ledger, "terminal", "account_created", detail=made)
    click.echo(_("Staff account %(name)s made.", name=made))


@staff.command("remove", help=N_("Remove the staff account NAME (its sessions end at once)."))
@click.argument("name")
@db_option
def remove(name, db):
    from letterpress.ledger import accounts

    with _open(db, create=False) as ledger:
        accounts.remove_staff(ledger, name)
        accounts.log_action(ledger, "terminal", "remove_staff", detail=name)
    click.echo(_("Staff account %(name)s removed.", name=name))


@staff.command("list", help=N_("The staff accounts, one a line."))
@db_option
def list_staff(db):
    from letterpress.ledger import accounts

    with _open(db, create=False) as ledger:
        for name in accounts.staff_names(ledger):
            click.echo(name)


@staff.command("token", help=N_("Print a bearer token for the JSON API (alone on stdout). "
                                 "Needs no staff account."))
@click.option("--name", default="", help=N_("Name the API's actions are recorded under "
                                            "(default: terminal)."))
@click.option("--expires", default="12h", show_default=True,
              help=N_("How long the token works: 30m, 12h, 7d..."))
@db_option
def token(name, expires, db):
    from letterpress.ledger import accounts

    ttl = parse_duration(expires)
    if name:
        name = accounts.clean_name(name)
    with _open(db, create=True) as ledger:
        made = accounts.new_api_token(ledger, name, ttl)
        _echo_err(_("Ledger: %(ledger)s; token valid for %(expires)s",
                    ledger=ledger.describe(), expires=expires.strip()))
    click.echo(made)


@staff.command("revoke", help=N_("Stop a token made by `staff token` from working, at once."))
@click.argument("token_text", metavar="TOKEN")
@db_option
def revoke(token_text, db):
    from letterpress.ledger import accounts

    with _open(db, create=False) as ledger:
        accounts.revoke_api_token(ledger, token_text.strip())
    click.echo(_("Token revoked."))
