"""The serve command: pages for volunteers' phones and the staff dashboard."""
from __future__ import annotations

import click

from letterpress.cli.common import (
    _echo_err,
    db_option,
    main,
    settings_from,
)
from letterpress.i18n import N_, _


@main.command(help=N_("Serve the pages volunteers' phones open when they scan a slip, the staff "
                       "dashboard and the staff console (/staff). Makes the ledger when there is "
                       "none yet."))
@db_option
@click.option("--host", default=None, help=N_("Address to listen on (default 127.0.0.1: this "
                                              "computer only)."))
@click.option("--port", type=click.IntRange(1, 65535), default=8470, show_default=True,
              help=N_("Port to listen on."))
@click.option("--lan", is_flag=True, help=N_("Listen on this computer's LAN address, the one "
                                             "`build` prints into the codes, so phones can "
                                             "connect."))
@click.option("--behind-proxy", is_flag=True,
              help=N_("Trust X-Forwarded-For/-Proto from a reverse proxy (nginx, Caddy), only "
                      "on connections from the proxy's address (--proxy)."))
@click.option("--proxy", "proxies", multiple=True, metavar="ADDR",
              help=N_("With --behind-proxy: the reverse proxy's address or network "
                      "(repeatable; default 127.0.0.1 and ::1, this computer)."))
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help=N_("Requests answered at the same time."))
@click.option("--rounds-dir", type=click.Path(file_okay=False), default=None,
              help=N_("Folder of the rounds made in the staff console (default: rounds/ beside "
                      "the ledger file)."))
@click.option("--upload-limit", type=click.IntRange(1, 2048), default=20, show_default=True,
              help=N_("Largest upload to the staff console, in MB."))
def serve(db, host, port, lan, behind_proxy, proxies, threads, rounds_dir, upload_limit):
    from letterpress import network
    from letterpress.server import (
        close_app,
        create_app,
        ledger_of,
        setup_link,
        staff_link,
        warm_up,
    )
    from letterpress.server.run import serve as run_server
    from letterpress.slips import qr

    settings = settings_from(None, db=db)
    if lan and host:
        raise click.UsageError(_("give --lan or --host, not both"))
    if lan:
        host = network.lan_address()
        if host is None:
            raise click.UsageError(_("this computer has no LAN address: connect it to the "
                                     "volunteers' Wi-Fi, or use --host"))
    host = host or "127.0.0.1"
    if proxies and not behind_proxy:
        raise click.UsageError(_("--proxy goes with --behind-proxy"))
    from letterpress.server import DEFAULT_PROXIES

    app = create_app(settings.db, behind_proxy=behind_proxy, create=True, rounds_dir=rounds_dir,
                     upload_limit=upload_limit * 1024 * 1024,
                     proxies=proxies or DEFAULT_PROXIES)
    try:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base = f"http://{shown}:{port}"
        click.echo(_("Ledger: %(ledger)s", ledger=ledger_of(app).describe()))
        click.echo(_("Serving on %(url)s/ (Ctrl-C to stop)", url=base))
        if lan:
            click.echo(_("Phones on the same network open this address (scan it):"))
            click.echo(qr.terminal(base.upper()))
        elif network.is_loopback_url(base):
            click.echo(_("Only this computer can open these pages; add --lan so phones can."))
        for b in ledger_of(app).batches():
            if b.base_url and b.base_url.lower().rstrip("/") != base.lower():
                _echo_err(click.style(_("warning"), fg="yellow") + " " + _(
                    "the slips of \"%(title)s\" point at %(url)s, not at %(base)s: phones "
                    "scanning them will not reach this server. Serve at that address, or build "
                    "again with --base-url %(base)s", title=b.title, url=b.base_url, base=base))
        click.echo(_("Staff dashboard (one-time link, 12 hours): %(link)s",
                     link=staff_link(app, base)))
        first = setup_link(app, base)
        if first:
            click.echo(_("Staff console: no staff account yet; make the first one here "
                         "(one-time link): %(link)s", link=first))
        else:
            click.echo(_("Staff console: %(url)s/staff", url=base))
        warm_up(app)
        run_server(app, host, port, threads=threads)
    finally:
        close_app(app)
