"""The pages' language: chosen per request, text from the gettext catalogues.

The language comes from ``?lang=zh|en`` (remembered in the ``lang`` cookie), else from the
browser's ``Accept-Language`` (zh for zh-*, English for anything else), else Chinese. Templates
use Jinja's i18n extension: ``{{ _("Logged in as %(name)s", name=vol.name) }}``,
``{{ pgettext("outcome", "Delivered") }}``; Python code uses :mod:`letterpress.i18n` directly.
Library errors raised while answering a request speak the request's language too.
"""
from __future__ import annotations

from typing import Tuple

from flask import Flask, g, request

from letterpress import i18n
from letterpress.i18n import LANGS, N_, _, pgettext

#: Name of the cookie that remembers the language switch.
LANG_COOKIE = "lang"


def install(app: Flask) -> None:
    """Choose each request's language and give the templates gettext and the labels below."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(          # type: ignore[attr-defined]
        gettext=i18n.raw_gettext, ngettext=i18n.raw_ngettext, pgettext=i18n.raw_pgettext,
        npgettext=i18n.raw_npgettext, newstyle=True)
    app.jinja_env.globals.update(outcome_label=outcome_label, state_label=state_label,
                                 label=label, stage_label=i18n.stage_label)

    @app.before_request
    def _language() -> None:
        api = request.path.startswith("/api/")
        g.lang = i18n.lang_for_request(request.args.get("lang"),
                                       request.cookies.get(LANG_COOKIE),
                                       request.accept_languages, "en" if api else "zh")
        g.lang_token = i18n.set_lang(g.lang)

    @app.teardown_request
    def _language_done(_exc=None) -> None:
        token = g.pop("lang_token", None)
        if token is not None:
            try:
                i18n.reset_lang(token)
            except ValueError:   # set in another context (cannot happen in one thread)
                pass

    @app.after_request
    def _remember(response):
        chosen = request.args.get("lang")
        if chosen in LANGS and request.cookies.get(LANG_COOKIE) != chosen:
            response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 24 * 3600,
                                httponly=True, samesite="Lax",
                                secure=app.session_interface.get_cookie_secure(app))
        return response


def page_lang() -> str:
    """The language of the page being answered."""
    return getattr(g, "lang", None) or i18n.current_lang()


def outcome_label(outcome: str) -> str:
    """The button a volunteer taps for an outcome (and the word in "Recorded: ...")."""
    labels = {
        "delivered": pgettext("outcome", "Delivered"),
        "proxy": pgettext("outcome", "Neighbour/relative took it"),
        "not-home": pgettext("outcome", "Not home"),
        "refused": pgettext("outcome", "Refused"),
        "hospital": pgettext("outcome", "In hospital"),
        "other": pgettext("outcome", "Other"),
    }
    return labels.get(outcome, outcome)


def history_label(outcome: str) -> str:
    """An outcome as a line of a household's history or the dashboard shows it."""
    labels = {
        "delivered": pgettext("history", "Delivered"),
        "proxy": pgettext("history", "Received by neighbour/relative"),
        "not-home": pgettext("history", "Not home"),
        "refused": pgettext("history", "Refused"),
        "hospital": pgettext("history", "In hospital"),
        "other": pgettext("history", "Other"),
    }
    return labels.get(outcome, outcome)


def state_label(state: str) -> str:
    labels = {
        "outstanding": pgettext("state", "Outstanding"),
        "delivered": pgettext("state", "Delivered"),
        "failed": pgettext("state", "Not delivered, visit again"),
        "withdrawn": pgettext("state", "Withdrawn"),
    }
    return labels.get(state, state)


def note_needed(outcome: str) -> str:
    """What the note must say for an outcome that needs one."""
    if outcome == "proxy":
        return _("Please write who received the package in the note.")
    return _("Please write what happened in the note.")


def message_text(key: str, **values) -> Tuple[str, str]:
    """Title and sentence of a plain message page (errors, notices)."""
    pages = {
        "unknown_code": (_("Unknown code"),
                         _("No slip has this code. Check the code printed under the slip's QR "
                           "code.")),
        "revoked_code": (_("Slip reprinted"),
                         _("This slip is no longer valid: the household's slip was reprinted. "
                           "Use the new slip.")),
        "bad_badge": (_("Login link not valid"),
                      _("This volunteer login link is not valid or was revoked. Ask staff for a "
                        "new run sheet.")),
        "bad_staff": (_("Staff link not valid"),
                      _("This staff login link was already used, has expired or is not valid. "
                        "Start the server again for a new link.")),
        "staff_only": (_("Staff only"),
                       _("Open this page with the staff login link shown when the server "
                         "started.")),
        "not_logged_in": (_("Please log in first"),
                          _("Only a logged-in volunteer can record. Scan the volunteer login QR "
                            "code at the top of your run sheet with the phone camera.")),
        "csrf": (_("Page expired"), _("Go back, reload the page and try again.")),
        "too_many": (_("Too many attempts"),
                     _("Too many failed attempts. Try again in %(minutes)s minutes.",
                       minutes=values.get("minutes", 1))),
        "not_found": (_("Page not found"), _("There is no such page.")),
        "bad_request": (_("Bad request"), _("The request could not be handled.")),
        "server": (_("Something went wrong"),
                   _("The server had a problem; the record may not be saved. Try again in a "
                     "moment, or tell staff.")),
        "busy": (_("Please wait"), _("The ledger is busy; try again in a few seconds.")),
        "bad_invite": (_("Link not valid"),
                       _("This link was used, has expired or is not valid. Ask a colleague for "
                         "a new invite link.")),
    }
    return pages.get(key, pages["bad_request"])


def label(group: str, key: str, **values) -> str:
    """The word for ``key`` of a family of codes (``label("c.job", job.state)``), translated;
    an unknown key is shown as it is."""
    table = _label_table(group)
    text = table.get(key)
    if text is None:
        return key
    return _(text, **values)


def _labels_history() -> dict:
    return {
        'delivered': pgettext('history', "Delivered"),
        'proxy': pgettext('history', "Received by neighbour/relative"),
        'not-home': pgettext('history', "Not home"),
        'refused': pgettext('history', "Refused"),
        'hospital': pgettext('history', "In hospital"),
        'other': pgettext('history', "Other"),
    }


def _labels_state() -> dict:
    return {
        'outstanding': pgettext('state', "Outstanding"),
        'delivered': pgettext('state', "Delivered"),
        'failed': pgettext('state', "Not delivered, visit again"),
        'withdrawn': pgettext('state', "Withdrawn"),
    }


def _labels_outcome() -> dict:
    return {
        'delivered': pgettext('outcome', "Delivered"),
        'proxy': pgettext('outcome', "Neighbour/relative took it"),
        'not-home': pgettext('outcome', "Not home"),
        'refused': pgettext('outcome', "Refused"),
        'hospital': pgettext('outcome', "In hospital"),
        'other': pgettext('outcome', "Other"),
    }


def _labels_c_sev() -> dict:
    return {
        'error': N_("Error"),
        'warning': N_("Warning"),
    }


def _labels_c_tpl() -> dict:
    return {
        'zh': N_("Built-in Chinese letter"),
        'en': N_("Built-in English letter"),
        'large': N_("Built-in large-print letter"),
        'zh-large': N_("Built-in Chinese letter, large print"),
        'en-large': N_("Built-in English letter, large print"),
    }


def _labels_c_layout() -> dict:
    return {
        'a4-8': N_("A4, 8 per page"),
        'a4-4': N_("A4, 4 per page"),
        'label-100x150': N_("Label 100×150 mm"),
    }


def _labels_c_job() -> dict:
    return {
        'queued': N_("Queued"),
        'running': N_("Building"),
    }


def _labels_c_act() -> dict:
    return {
        'build': N_("build"),
        'reprint': N_("reprint"),
        'purge': N_("purge"),
        'undo': N_("undo"),
        'invite': N_("invite"),
        'remove_staff': N_("remove account"),
        'account_created': N_("account created"),
        'create_round': N_("new round"),
        'upload': N_("list uploaded"),
        'reissue_badge': N_("badge reissued"),
    }


def _labels_phone() -> dict:
    return {
        'waiting': N_("Saved on this phone, %(n)s waiting to send."),
        'sent': N_("Sent."),
        'sending': N_("Sending…"),
        'saved_copy': N_("No connection: this is the copy kept on this phone. Records are saved on the phone and sent when the connection returns."),
        'offline_now': N_("No connection. Records are saved on this phone and sent when the connection returns."),
        'revoked': N_("Your login is no longer valid; the round kept on this phone was removed. Ask staff for a new run sheet."),
        'logout_waiting': N_("%(n)s records are not sent yet and would be lost. Log out anyway?"),
        'queued_here': N_("Recorded on this phone for this household: %(what)s (waiting to send)."),
    }


def _labels_note_required() -> dict:
    return {
        'proxy': N_("who received the package"),
        'other': N_("what happened"),
    }


def _labels_sync_refused() -> dict:
    return {
        'revoked_code': N_("The slip with code %(code)s was reprinted; the record was not saved. Record it again from your list or the new slip."),
        'withdrawn': N_("The household of code %(code)s was taken off the list: no delivery."),
        'not_authorised': N_("Code %(code)s is not in your round; the record was not saved."),
        'note_required': N_("The record for code %(code)s needs a note; record it again."),
    }


def _labels_c_tab() -> dict:
    return {
        'round': N_("Round"),
        'check': N_("Check"),
        'volunteers': N_("Volunteers"),
    }


def _labels_count() -> dict:
    return {
        'delivered': N_("delivered"),
        'failed': N_("failed"),
        'outstanding': N_("outstanding"),
    }


def _labels_col() -> dict:
    return {
        'seq': N_("No."),
        'name': N_("Name"),
        'address': N_("Address"),
        'volunteer': N_("Volunteer"),
        'last': N_("Last outcome"),
        'when': N_("When"),
        'outcome': N_("Outcome"),
        'note': N_("Note"),
    }


def _labels_err() -> dict:
    return {
        "staff_exists": N_("This name has an account already."),
        "weak_password": N_("The password is too short."),
        "bad_staff_name": N_("A name needs 1 to 40 characters."),
    }


#: The family of each label group (made per call: the words depend on the language).
_LABEL_TABLES = {
    'err': _labels_err,
    'history': _labels_history,
    'state': _labels_state,
    'outcome': _labels_outcome,
    'c.sev': _labels_c_sev,
    'c.tpl': _labels_c_tpl,
    'c.layout': _labels_c_layout,
    'c.job': _labels_c_job,
    'c.act': _labels_c_act,
    'phone': _labels_phone,
    'note_required': _labels_note_required,
    'sync_refused': _labels_sync_refused,
    'c.tab': _labels_c_tab,
    'count': _labels_count,
    'col': _labels_col,
}


def _label_table(group: str) -> dict:
    make = _LABEL_TABLES.get(group)
    return make() if make is not None else {}
