"""The volunteers command: badge states, revoking a lost badge, reissuing one."""
from __future__ import annotations

import click

from letterpress.cli.common import _echo_err, batch_option, db_option, main, settings_from

_STATE_WORDS = {"active": "active", "revoked": "REVOKED", "off_list": "off the list"}


@main.group(invoke_without_command=True)
@batch_option
@db_option
@click.pass_context
def volunteers(ctx, title, db):
    """A batch's volunteers and their badges; revoke a lost badge, reissue one.

    \b
    letterpress volunteers                    list volunteers and badge states
    letterpress volunteers revoke 李明         a lost badge stops working at once
    letterpress volunteers reissue 李明        a new badge and run sheet
    """
    ctx.ensure_object(dict)
    ctx.obj.update(title=title, db=db)
    if ctx.invoked_subcommand is not None:
        return
    from letterpress.ledger import Ledger

    settings = settings_from(None, db=db)
    with Ledger.open(settings.db, create=False) as ledger:
        _echo_err(f"Ledger: {ledger.describe()}")
        batch = ledger.find_batch(title)
        states = ledger.badge_states(batch.id)
    click.echo(f"{batch.title}: {len([s for s in states if s.index is not None])} volunteers")
    for s in states:
        number = f"{s.index:02d}" if s.index is not None else "--"
        when = ""
        if s.state == "revoked" and s.revoked_at is not None:
            when = f" since {s.revoked_at.astimezone():%Y-%m-%d %H:%M}"
        click.echo(f"  {number}  {s.name:<12} {s.households:>4} households  badge "
                   f"{_STATE_WORDS[s.state]}{when} (badge no. {s.version})")


def _options(ctx, title, db):
    return title or ctx.obj.get("title"), db or ctx.obj.get("db")


@volunteers.command()
@click.argument("name")
@batch_option
@db_option
@click.pass_context
def revoke(ctx, name, title, db):
    """Stop NAME's badge now: the next request with it is refused, phones logged in with
    it are logged out. No badge of theirs works until `volunteers reissue`."""
    from letterpress.ledger import Ledger

    title, db = _options(ctx, title, db)
    settings = settings_from(None, db=db)
    with Ledger.open(settings.db, create=False) as ledger:
        _echo_err(f"Ledger: {ledger.describe()}")
        batch = ledger.find_batch(title)
        ledger.revoke_badge(batch.id, name)
    click.echo(f"Revoked the badge of {name} in \"{batch.title}\": it stops working now, and "
               "phones logged in with it are logged out.")
    click.echo(f"Give {name} a new badge with: letterpress volunteers reissue {name}")


@volunteers.command()
@click.argument("name")
@batch_option
@db_option
@click.pass_context
def reissue(ctx, name, title, db):
    """Give NAME a new badge (every earlier one stops working) and a new run sheet."""
    from letterpress.pipeline import rebuild

    title, db = _options(ctx, title, db)
    settings = settings_from(None, db=db)
    done = rebuild.reissue_badge(settings, title, name)
    _echo_err(f"Ledger: {done.ledger}")
    click.echo(f"New badge for {name} in \"{done.title}\"; earlier badges no longer work.")
    click.echo(f"  Print the run sheet with the new badge: {done.runsheet}")
    for path in done.stale:
        _echo_err(click.style("warning", fg="yellow") + f" {path} still holds the old badge; "
                  "print the run sheet above instead, or run `letterpress pdf` to make the "
                  "print packs again")
