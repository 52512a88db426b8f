/* letterpress on the phone: keeps the volunteer's round for offline use (https or localhost).
   Without JavaScript, or on plain-http LAN serving (no service worker there), the pages work
   as plain forms; this file only adds the offline copy and the queue of unsent records. */
(function () {
  "use strict";
  if (!("serviceWorker" in navigator) || !window.isSecureContext || !self.LPQueue) { return; }
  var root = document.documentElement;
  var box = document.getElementById("lp-phone");

  function worker() {
    return navigator.serviceWorker.ready.then(function (reg) {
      return navigator.serviceWorker.controller || reg.active;
    });
  }
  function post(message) { return worker().then(function (w) { if (w) { w.postMessage(message); } }); }

  if (!box) {
    // Not logged in as a volunteer (logged out, or the badge was revoked): nothing of a
    // round stays on this phone.
    navigator.serviceWorker.getRegistration().then(function (reg) {
      if (reg && reg.active) { reg.active.postMessage({type: "forget"}); }
    });
    return;
  }

  var csrf = box.getAttribute("data-csrf");
  var saved = document.body.getAttribute("data-copy") === "saved";
  var messages = [];
  var state = {waiting: 0, sent: false, revoked: false, sending: false, here: []};
  var slip = /^\/[hH]\/([^/]+)$/.exec(location.pathname);
  var code = slip ? decodeURIComponent(slip[1]).toUpperCase().replace(/[\s-]/g, "")
    .replace(/[IL]/g, "1").replace(/O/g, "0") : null;

  function outcomeLabel(value) {
    var button = document.querySelector('button[name=outcome][value="' + value + '"]');
    return button ? button.textContent.trim() : value;
  }

  function text(key, n) { return (box.getAttribute("data-" + key) || "").replace("{n}", n); }

  function render() {
    var lines = [];
    if (state.revoked) { lines.push(text("revoked")); }
    else {
      if (saved || !navigator.onLine) { lines.push(text(saved ? "saved-copy" : "offline-now")); }
      state.here.forEach(function (value) {
        lines.push(text("queued-here").replace("{what}", outcomeLabel(value)));
      });
      if (state.waiting) { lines.push(text(state.sending ? "sending" : "waiting", state.waiting)); }
      else if (state.sent) { lines.push(text("sent")); }
      lines = lines.concat(messages);
    }
    while (box.firstChild) { box.removeChild(box.firstChild); }
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      box.appendChild(p);
    });
    box.hidden = lines.length === 0;
    box.className = "phone-status" + (state.sent && !state.waiting && !state.revoked ? " sent" : "");
    root.setAttribute("data-lp-waiting", String(state.waiting));
  }

  function count() {
    return LPQueue.all().then(function (items) {
      state.waiting = items.length;
      state.here = items.filter(function (i) { return code && i.code === code; })
        .map(function (i) { return i.outcome; });
      render();
      return items.length;
    });
  }

  navigator.serviceWorker.addEventListener("message", function (event) {
    var data = event.data || {};
    if (data.type === "kept") { root.setAttribute("data-lp-kept", String(data.pages)); }
    else if (data.type === "sending") { state.sending = true; state.waiting = data.waiting; render(); }
    else if (data.type === "synced") {
      state.sending = false;
      state.sent = true;
      state.waiting = data.waiting;
      data.results.forEach(function (r) {
        if ((r.status === "already_delivered" || r.status === "error")
            && messages.indexOf(r.message) < 0) { messages.push(r.message); }
      });
      root.setAttribute("data-lp-synced", String(data.results.length));
      count();
    } else if (data.type === "unsent") { state.sending = false; state.waiting = data.waiting; render(); }
    else if (data.type === "revoked") { state.revoked = true; state.waiting = 0; render(); }
  });

  navigator.serviceWorker.register("/sw.js", {scope: "/"}).then(function () {
    return count();
  }).then(function (waiting) {
    post({type: "hello"});
    if (!navigator.onLine) { return; }
    if (waiting) { post({type: "sync", csrf: csrf}); }
    else if (!saved) { post({type: "keep"}); }
  }).catch(function () {});

  window.addEventListener("online", function () { render(); post({type: "sync", csrf: csrf}); });
  window.addEventListener("offline", render);

  // Outcomes that need a note say so before they are saved on the phone.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    if (form.action && /\/logout$/.test(form.action) && state.waiting) {
      if (!window.confirm(text("logout-waiting", state.waiting))) { event.preventDefault(); }
      return;
    }
    var note = form.querySelector("input[name=note]");
    if (button && note && (button.value === "proxy" || button.value === "other") && !note.value.trim()) {
      event.preventDefault();
      note.required = true;
      note.reportValidity();
    }
  });
  render();
})();
