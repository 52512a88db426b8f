"""The volunteers command: badge states, revoking a lost badge, reissuing one."""
from __future__ import annotations

import click

from letterpress.cli.common import _echo_err, batch_option, db_option, main, settings_from
from letterpress.i18n import N_, _

_STATE_WORDS = {"active": N_("active"), "revoked": N_("REVOKED"), "off_list": N_("off the list")}


@main.group(invoke_without_command=True, help=N_(
    """A batch's volunteers and their badges; revoke a lost badge, reissue one.

\b
letterpress volunteers                    list volunteers and badge states
letterpress volunteers revoke NAME        a lost badge stops working at once
letterpress volunteers reissue NAME       a new badge and run sheet
"""))
@batch_option
@db_option
@click.pass_context
def volunteers(ctx, title, db):
    ctx.ensure_object(dict)
    ctx.obj.update(title=title, db=db)
    if ctx.invoked_subcommand is not None:
        return
    from letterpress.ledger import Ledger

    settings = settings_from(None, db=db)
    with Ledger.open(settings.db, create=False) as ledger:
        _echo_err(_("Ledger: %(ledger)s", ledger=ledger.describe()))
        batch = ledger.find_batch(title)
        states = ledger.badge_states(batch.id)
    click.echo(_("%(title)s: %(count)s volunteers", title=batch.title,
                 count=len([s for s in states if s.index is not None])))
    for s in states:
        number = f"{s.index:02d}" if s.index is not None else "--"
        state = _(_STATE_WORDS[s.state])
        if s.state == "revoked" and s.revoked_at is not None:
            when = s.revoked_at.astimezone().strftime("%Y-%m-%d %H:%M")
            state = _("%(state)s since %(when)s", state=state, when=when)
        click.echo("  " + _("%(number)s  %(name)-12s %(households)4d households  badge %(state)s "
                            "(badge no. %(version)s)", number=number, name=s.name,
                            households=s.households, state=state, version=s.version))


def _options(ctx, title, db):
    return title or ctx.obj.get("title"), db or ctx.obj.get("db")


@volunteers.command(help=N_("Stop NAME's badge now: the next request with it is refused, phones "
                            "logged in with it are logged out. No badge of theirs works until "
                            "`volunteers reissue`."))
@click.argument("name")
@batch_option
@db_option
@click.pass_context
def revoke(ctx, name, title, db):
    from letterpress.ledger import Ledger

    title, db = _options(ctx, title, db)
    settings = settings_from(None, db=db)
    with Ledger.open(settings.db, create=False) as ledger:
        _echo_err(_("Ledger: %(ledger)s", ledger=ledger.describe()))
        batch = ledger.find_batch(title)
        ledger.revoke_badge(batch.id, name)
    click.echo(_("Revoked the badge of %(name)s in \"%(title)s\": it stops working now, and "
                 "phones logged in with it are logged out.", name=name, title=batch.title))
    click.echo(_("Give %(name)s a new badge with: letterpress volunteers reissue %(name)s",
                 name=name))


@volunteers.command(help=N_("Give NAME a new badge (every earlier one stops working) and a new "
                            "run sheet."))
@click.argument("name")
@batch_option
@db_option
@click.pass_context
def reissue(ctx, name, title, db):
    from letterpress.pipeline import rebuild

    title, db = _options(ctx, title, db)
    settings = settings_from(None, db=db)
    done = rebuild.reissue_badge(settings, title, name)
    _echo_err(_("Ledger: %(ledger)s", ledger=done.ledger))
    click.echo(_("New badge for %(name)s in \"%(title)s\"; earlier badges no longer work.",
                 name=name, title=done.title))
    click.echo("  " + _("Print the run sheet with the new badge: %(path)s", path=done.runsheet))
    for path in done.stale:
        _echo_err(click.style(_("warning"), fg="yellow") + " " + _(
            "%(path)s still holds the old badge; print the run sheet above instead, or run "
            "`letterpress pdf` to make the print packs again", path=path))
