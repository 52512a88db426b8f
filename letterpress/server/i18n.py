"""Every string the web pages show, in Chinese and English, in one table.

The page language comes from ``?lang=zh|en`` (remembered in the ``lang``
cookie), else from ``Accept-Language``, else Chinese. Templates call
``t("key", name=...)``; missing keys fall back to English, then to the key.
"""
from __future__ import annotations

from typing import Dict, Optional

from letterpress.choices import DEFAULT_LANG, LANGS

#: Name of the cookie that remembers the language switch.
LANG_COOKIE = "lang"

TEXT: Dict[str, Dict[str, str]] = {
    # --- frame ---------------------------------------------------------------------------------
    "app_name": {"zh": "送达登记", "en": "Delivery record"},
    "switch_to": {"zh": "English", "en": "中文"},
    "home": {"zh": "我的首页", "en": "My page"},
    "log_out": {"zh": "退出登录", "en": "Log out"},
    "logged_out": {"zh": "已退出登录。", "en": "You are logged out."},
    # --- anonymous -----------------------------------------------------------------------------
    "index_title": {"zh": "扫码登记送达", "en": "Scan to record deliveries"},
    "index_body": {
        "zh": "志愿者请先用手机相机扫描任务单上方的“志愿者登录”二维码，再扫描包裹上的取件单二维码。",
        "en": "Volunteers: first scan the volunteer login QR code at the top of your run sheet "
              "with the phone camera, then scan the QR code on each package's slip."},
    "how_to_log_in": {"zh": "如何登录", "en": "How to log in"},
    "login_steps": {
        "zh": "用手机相机扫描任务单上方的“志愿者登录”二维码，登录后再扫描本取件单。",
        "en": "Scan the volunteer login QR code at the top of your run sheet with the phone "
              "camera, then scan this slip again."},
    "masked_title": {"zh": "物资取件单", "en": "Package slip"},
    "masked_intro": {
        "zh": "这是一份慰问物资的取件单。登录的志愿者可在此登记送达。",
        "en": "This is the slip of a care package. A logged-in volunteer records its delivery "
              "here."},
    "recipient": {"zh": "收件人", "en": "Recipient"},
    "where": {"zh": "位置", "en": "Where"},
    "other_batch": {
        "zh": "这张取件单属于另一轮派送（{title}），您的登录不适用。",
        "en": "This slip belongs to another round ({title}); your login does not cover it."},
    # --- volunteer home ------------------------------------------------------------------------
    "logged_in_as": {"zh": "已登录：{name}", "en": "Logged in as {name}"},
    "unassigned": {"zh": "未分配", "en": "unassigned"},
    "scan_hint": {
        "zh": "用手机相机扫描包裹上的取件单二维码，即可登记送达情况。",
        "en": "Scan the QR code on a package's slip with the phone camera to record the "
              "delivery."},
    "your_round": {"zh": "我的派送", "en": "My round"},
    "type_code": {"zh": "二维码扫不出？手动输入取件单上的编码：",
                  "en": "QR code will not scan? Type the code printed on the slip:"},
    "open": {"zh": "打开", "en": "Open"},
    # --- household page ------------------------------------------------------------------------
    "household_no": {"zh": "第 {seq} 户", "en": "No. {seq}"},
    "address": {"zh": "地址", "en": "Address"},
    "phone": {"zh": "电话", "en": "Phone"},
    "call": {"zh": "拨打 {phone}", "en": "Call {phone}"},
    "category": {"zh": "类别", "en": "Category"},
    "list_notes": {"zh": "备注", "en": "Notes"},
    "package": {"zh": "物资", "en": "Package"},
    "assigned_to": {"zh": "派送人", "en": "Volunteer"},
    "record_again": {"zh": "已签收。如需再次登记，请点此展开", "en": "Already delivered. Tap here to "
                                                                "record anyway"},
    "record_outcome": {"zh": "登记结果", "en": "Record the outcome"},
    "note": {"zh": "备注（代收人姓名、其他情况）", "en": "Note (who received it, what happened)"},
    "note_needed_hint": {"zh": "“邻居/亲属代收”和“其他”须填写备注。",
                         "en": "“Neighbour/relative took it” and “Other” need a note."},
    "history": {"zh": "已登记", "en": "Recorded so far"},
    "nothing_yet": {"zh": "尚无登记。", "en": "Nothing recorded yet."},
    "undone": {"zh": "已撤销", "en": "undone"},
    "duplicate": {"zh": "重复，待核查", "en": "duplicate, for review"},
    "by": {"zh": "{what} {time} by {name}", "en": "{what} {time} by {name}"},
    "withdrawn_notice": {"zh": "该户已从本轮名单中撤出，无需派送。请联系工作人员。",
                         "en": "This household was taken off this round's list: no delivery. "
                               "Ask staff."},
    "delivered_notice": {"zh": "已签收 {time} by {name}", "en": "Delivered {time} by {name}"},
    # --- outcomes ------------------------------------------------------------------------------
    "outcome.delivered": {"zh": "已送达", "en": "Delivered"},
    "outcome.proxy": {"zh": "邻居/亲属代收", "en": "Neighbour/relative took it"},
    "outcome.not-home": {"zh": "不在家", "en": "Not home"},
    "outcome.refused": {"zh": "拒收", "en": "Refused"},
    "outcome.hospital": {"zh": "住院", "en": "In hospital"},
    "outcome.other": {"zh": "其他", "en": "Other"},
    "history.delivered": {"zh": "已签收", "en": "Delivered"},
    "history.proxy": {"zh": "代收", "en": "Received by neighbour/relative"},
    "history.not-home": {"zh": "不在家", "en": "Not home"},
    "history.refused": {"zh": "拒收", "en": "Refused"},
    "history.hospital": {"zh": "住院", "en": "In hospital"},
    "history.other": {"zh": "其他", "en": "Other"},
    "state.outstanding": {"zh": "待派送", "en": "Outstanding"},
    "state.delivered": {"zh": "已送达", "en": "Delivered"},
    "state.failed": {"zh": "未送达，需再访", "en": "Not delivered, visit again"},
    "state.withdrawn": {"zh": "已撤出", "en": "Withdrawn"},
    # --- banners after a POST ------------------------------------------------------------------
    "saved": {"zh": "已登记：{what}。", "en": "Recorded: {what}."},
    "saved_repeated": {"zh": "已登记：{what}（重复提交，只记一次）。",
                       "en": "Recorded: {what} (sent twice, recorded once)."},
    "already_delivered": {
        "zh": "该户已于 {time} 由 {name} 签收。本次登记已保存，待工作人员核查。",
        "en": "Already delivered at {time} by {name}. This record was kept for staff review."},
    "note_required": {"zh": "请在备注中写明{what}。", "en": "Please write {what} in the note."},
    "note_required.proxy": {"zh": "代收人姓名", "en": "who received the package"},
    "note_required.other": {"zh": "具体情况", "en": "what happened"},
    "bad_outcome": {"zh": "请选择一个登记结果。", "en": "Please choose an outcome."},
    "form_expired": {"zh": "页面已过期，请重新点击。", "en": "This page expired; please tap again."},
    # --- error pages ---------------------------------------------------------------------------
    "err.unknown_code.title": {"zh": "无法识别的编码", "en": "Unknown code"},
    "err.unknown_code": {
        "zh": "找不到这个取件单编码。请核对取件单上二维码下方印的编码。",
        "en": "No slip has this code. Check the code printed under the slip's QR code."},
    "err.revoked_code.title": {"zh": "取件单已重印", "en": "Slip reprinted"},
    "err.revoked_code": {
        "zh": "这张取件单已作废：该户的取件单已重新打印。请使用新的取件单。",
        "en": "This slip is no longer valid: the household's slip was reprinted. Use the new "
              "slip."},
    "err.bad_badge.title": {"zh": "登录链接无效", "en": "Login link not valid"},
    "err.bad_badge": {
        "zh": "这个志愿者登录链接无效或已被撤销。请向工作人员索取新的任务单。",
        "en": "This volunteer login link is not valid or was revoked. Ask staff for a new run "
              "sheet."},
    "err.bad_staff.title": {"zh": "工作人员链接无效", "en": "Staff link not valid"},
    "err.bad_staff": {
        "zh": "这个工作人员登录链接已用过、已过期或无效。请重新启动服务获取新链接。",
        "en": "This staff login link was already used, has expired or is not valid. Start the "
              "server again for a new link."},
    "err.staff_only.title": {"zh": "仅限工作人员", "en": "Staff only"},
    "err.staff_only": {
        "zh": "请用启动服务时显示的工作人员登录链接打开此页。",
        "en": "Open this page with the staff login link shown when the server started."},
    "err.not_logged_in.title": {"zh": "请先登录", "en": "Please log in first"},
    "err.not_logged_in": {
        "zh": "只有已登录的志愿者才能登记。用手机相机扫描任务单上方的“志愿者登录”二维码。",
        "en": "Only a logged-in volunteer can record. Scan the volunteer login QR code at the "
              "top of your run sheet with the phone camera."},
    "err.csrf.title": {"zh": "页面已过期", "en": "Page expired"},
    "err.csrf": {"zh": "请返回，刷新页面后再试一次。",
                 "en": "Go back, reload the page and try again."},
    "err.too_many.title": {"zh": "尝试次数过多", "en": "Too many attempts"},
    "err.too_many": {"zh": "错误次数过多，请 {minutes} 分钟后再试。",
                     "en": "Too many failed attempts. Try again in {minutes} minutes."},
    "err.not_found.title": {"zh": "页面不存在", "en": "Page not found"},
    "err.not_found": {"zh": "没有这个页面。", "en": "There is no such page."},
    "err.bad_request.title": {"zh": "请求无效", "en": "Bad request"},
    "err.bad_request": {"zh": "请求无法处理。", "en": "The request could not be handled."},
    "err.server.title": {"zh": "出错了", "en": "Something went wrong"},
    "err.server": {
        "zh": "服务器出现问题，登记可能未保存。请稍后再试，或告知工作人员。",
        "en": "The server had a problem; the record may not be saved. Try again in a moment, or "
              "tell staff."},
    "err.busy.title": {"zh": "请稍候", "en": "Please wait"},
    "err.busy": {"zh": "台账正忙，请几秒后再试。", "en": "The ledger is busy; try again in a few "
                                                    "seconds."},
    "back_home": {"zh": "返回首页", "en": "Back to the start"},
    # --- dashboard -----------------------------------------------------------------------------
    "dashboard": {"zh": "派送进度", "en": "Delivery progress"},
    "refreshes": {"zh": "本页每 30 秒自动刷新。", "en": "This page refreshes every 30 seconds."},
    "pause_refresh": {"zh": "暂停刷新（撤销登记时）", "en": "Pause refreshing (to undo a record)"},
    "refresh_paused": {"zh": "自动刷新已暂停。", "en": "Refreshing is paused."},
    "resume_refresh": {"zh": "恢复自动刷新", "en": "Refresh every 30 seconds again"},
    "no_batches": {"zh": "台账中还没有批次。", "en": "The ledger holds no batch yet."},
    "count.delivered": {"zh": "已送达", "en": "delivered"},
    "count.failed": {"zh": "未送达", "en": "failed"},
    "count.outstanding": {"zh": "待派送", "en": "outstanding"},
    "summary": {"zh": "共 {households} 户：已送达 {delivered}，未送达 {failed}，待派送 "
                      "{outstanding}，已撤出 {withdrawn}",
                "en": "{households} households: {delivered} delivered, {failed} failed, "
                      "{outstanding} outstanding, {withdrawn} withdrawn"},
    "my_summary": {"zh": "共 {households} 户：已送达 {delivered}，未送达 {failed}，待派送 {outstanding}",
                   "en": "{households} households: {delivered} delivered, {failed} failed, "
                         "{outstanding} outstanding"},
    "by_volunteer": {"zh": "按志愿者", "en": "By volunteer"},
    "by_compound": {"zh": "按小区", "en": "By compound"},
    "no_compound": {"zh": "（无小区）", "en": "(no compound)"},
    "failed_list": {"zh": "未送达，需再访", "en": "Failed: visit again"},
    "outstanding_list": {"zh": "待派送", "en": "Outstanding"},
    "duplicates": {"zh": "重复登记，待核查", "en": "Duplicates for review"},
    "recent_events": {"zh": "最近登记（可撤销）", "en": "Recent records (undo)"},
    "none": {"zh": "无。", "en": "None."},
    "col.seq": {"zh": "序号", "en": "No."},
    "col.name": {"zh": "姓名", "en": "Name"},
    "col.address": {"zh": "地址", "en": "Address"},
    "col.volunteer": {"zh": "志愿者", "en": "Volunteer"},
    "col.last": {"zh": "最近结果", "en": "Last outcome"},
    "col.when": {"zh": "时间", "en": "When"},
    "col.outcome": {"zh": "结果", "en": "Outcome"},
    "col.note": {"zh": "备注", "en": "Note"},
    "undo": {"zh": "撤销", "en": "Undo"},
    "undo_reason": {"zh": "撤销原因", "en": "Reason for the undo"},
    "undo_done": {"zh": "已撤销第 {id} 条登记。", "en": "Record {id} was undone."},
    "undo_failed": {"zh": "无法撤销：{message}", "en": "Cannot undo: {message}"},
    "reason_required": {"zh": "撤销须填写原因。", "en": "An undo needs a reason."},
    "api_token": {"zh": "接口令牌（12 小时有效）", "en": "API token (valid 12 hours)"},
    "api_token_hint": {
        "zh": "用于 GET /api/batches/{id}/status，请求头 Authorization: Bearer 令牌。",
        "en": "For GET /api/batches/{id}/status with the header Authorization: Bearer TOKEN."},
    "batch_id": {"zh": "批次编号 {id}", "en": "Batch number {id}"},
    "more_rows": {"zh": "另有 {n} 条未显示。", "en": "{n} more not shown."},
    # --- the round on the phone (round list, offline) -------------------------------------------
    "round_next": {"zh": "下一户：第 {seq} 户 {name}", "en": "Next: No. {seq} {name}"},
    "round_todo": {"zh": "待上门（{n}）", "en": "To visit ({n})"},
    "round_done": {"zh": "已送达（{n}）", "en": "Delivered ({n})"},
    "round_empty": {"zh": "您的名单上没有住户。", "en": "There are no households on your list."},
    "round_all_done": {"zh": "全部送达，辛苦了！", "en": "All delivered. Thank you!"},
    "round_lost_slip": {
        "zh": "取件单丢了或扫不出？点名单中的一户，或输入编码，即可登记。",
        "en": "Slip lost or unreadable? Tap the household in the list, or type its code, to "
              "record."},
    "round_door_notes": {"zh": "上门提示：{notes}", "en": "At the door: {notes}"},
    "round_no_code": {"zh": "无有效编码，请联系工作人员", "en": "no valid code; ask staff"},
    "from_list": {"zh": "从名单登记（取件单丢失或扫不出）。",
                  "en": "Recording from your list (slip lost or unreadable)."},
    "back_to_round": {"zh": "返回我的派送名单", "en": "Back to my round"},
    "offline_title": {"zh": "没有网络", "en": "No connection"},
    "offline_body": {
        "zh": "这一页没有保存在本机。本机保存了您的派送名单和名单上各户的页面；联网后再试。",
        "en": "This page is not saved on this phone. The phone keeps your round list and the "
              "page of each household on it; try again when the connection returns."},
    "phone.waiting": {"zh": "已保存在本机，{n} 条待发送。", "en": "Saved on this phone, {n} "
                                                           "waiting to send."},
    "phone.sent": {"zh": "已发送。", "en": "Sent."},
    "phone.sending": {"zh": "正在发送…", "en": "Sending…"},
    "phone.saved_copy": {"zh": "没有网络：这是保存在本机的页面。登记会先存在本机，联网后自动发送。",
                         "en": "No connection: this is the copy kept on this phone. Records are "
                               "saved on the phone and sent when the connection returns."},
    "phone.offline_now": {"zh": "没有网络。登记会先存在本机，联网后自动发送。",
                          "en": "No connection. Records are saved on this phone and sent when "
                                "the connection returns."},
    "phone.revoked": {"zh": "您的登录已失效，本机保存的派送名单已删除。请向工作人员索取新的任务单。",
                      "en": "Your login is no longer valid; the round kept on this phone was "
                            "removed. Ask staff for a new run sheet."},
    "phone.logout_waiting": {"zh": "还有 {n} 条登记未发送，退出会丢失它们。仍要退出吗？",
                             "en": "{n} records are not sent yet and would be lost. Log out "
                                   "anyway?"},
    "sync_saved": {"zh": "第 {seq} 户：{what}，已发送。", "en": "No. {seq}: {what}, sent."},
    "sync_conflict": {
        "zh": "第 {seq} 户已于 {time} 由 {name} 签收。您的登记（{what}）已保存，待工作人员核查。",
        "en": "No. {seq} was already delivered at {time} by {name}. Your record ({what}) was "
              "kept for staff review."},
    "sync_failed": {"zh": "一条登记无法发送（{what}）。", "en": "A record could not be sent "
                                                          "({what})."},
    "sync_refused": {"zh": "编码 {code} 的登记未被接受，请告知工作人员。",
                     "en": "The record for code {code} was not accepted; tell staff."},
    "sync_refused.revoked_code": {
        "zh": "编码 {code} 的取件单已重印，登记未保存。请从名单或新取件单再登记一次。",
        "en": "The slip with code {code} was reprinted; the record was not saved. Record it "
              "again from your list or the new slip."},
    "sync_refused.withdrawn": {"zh": "编码 {code} 的住户已从名单撤出，无需派送。",
                               "en": "The household of code {code} was taken off the list: no "
                                     "delivery."},
    "sync_refused.not_authorised": {"zh": "编码 {code} 不属于您这一轮派送，登记未保存。",
                                    "en": "Code {code} is not in your round; the record was not "
                                          "saved."},
    "sync_refused.note_required": {"zh": "编码 {code} 的登记须填写备注，请再登记一次。",
                                   "en": "The record for code {code} needs a note; record it "
                                         "again."},
}


def pick_lang(arg: Optional[str], cookie: Optional[str], accept) -> str:
    """The page language: the ``?lang=`` switch, the cookie, ``Accept-Language``, Chinese."""
    for value in (arg, cookie):
        if value in LANGS:
            return value
    if accept is not None:
        best = accept.best_match(LANGS)   # werkzeug matches zh-CN to zh, en-GB to en
        if best:
            return best
    return DEFAULT_LANG


def has(key: str) -> bool:
    """True when the table has ``key``."""
    return key in TEXT


def translate(lang: str, key: str, **values) -> str:
    """The text for ``key`` in ``lang`` with ``{name}`` fields filled in."""
    entry = TEXT.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry.get("en") or key
    return text.format(**values) if values else text
