/* letterpress service worker: the volunteer's round kept on the phone, outcomes queued offline.

   - After the badge login the page asks for the round ("keep"): the list and the page of each
     of this volunteer's households (nothing else) go into one cache named after the badge.
   - A page that cannot be fetched (no connection, or no answer within a few seconds) comes
     from that cache, with a fresh nonce, so every record made from it counts once.
   - An outcome posted without a connection is queued (IndexedDB, by nonce) and sent to
     /home/sync when the connection returns; the server's nonce rule makes resends harmless.
   - Logging out, or the server answering 401 (badge revoked), drops the cache and the queue. */
importScripts("/static/queue.js");

var STATIC = "lp-static-v1";
var ROUND = "lp-round-";
var FILES = ["/static/app.css", "/static/queue.js", "/static/round.js", "/static/icon.svg"];
var TIMEOUT_MS = 6000;
/* Background requests say so: the server then never sets the session cookie in its answer
   (an answer arriving after a logout must not log the phone in again). */
var BACKGROUND = {"X-Letterpress-Background": "1"};
var BATCH = 50;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(STATIC).then(function (c) { return c.addAll(FILES); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(self.clients.claim());
});

function notify(message) {
  return self.clients.matchAll({type: "window"}).then(function (clients) {
    clients.forEach(function (c) { c.postMessage(message); });
  });
}

function nonce() {
  if (self.crypto && self.crypto.randomUUID) { return self.crypto.randomUUID(); }
  var bytes = new Uint8Array(16);
  self.crypto.getRandomValues(bytes);
  return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
}

function timed(promise) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, TIMEOUT_MS);
    promise.then(function (v) { clearTimeout(timer); resolve(v); },
                 function (e) { clearTimeout(timer); reject(e); });
  });
}

/* The code of a slip path, as the server spells it: upper case, no dashes, I/L -> 1, O -> 0. */
function slipCode(pathname) {
  var m = /^\/[hH]\/([^/]+)$/.exec(pathname);
  if (!m) { return null; }
  return decodeURIComponent(m[1]).toUpperCase().replace(/[\s-]/g, "")
    .replace(/[IL]/g, "1").replace(/O/g, "0");
}

function cacheKey(url) {
  var code = slipCode(url.pathname);
  return self.location.origin + (code ? "/H/" + code : url.pathname);
}

/* The key of the round kept now (the badge's digest), or "". */
function roundKey() {
  return caches.keys().then(function (names) {
    var name = names.filter(function (n) { return n.indexOf(ROUND) === 0; })[0];
    return name ? name.slice(ROUND.length) : "";
  });
}

function roundCache() {
  return caches.keys().then(function (names) {
    var name = names.filter(function (n) { return n.indexOf(ROUND) === 0; })[0];
    return name ? caches.open(name) : null;
  });
}

function forget() {
  return caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf(ROUND) === 0; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return LPQueue.clear(); });
}

/* Keep this volunteer's round: fetch the list of pages, store them, drop anything else. */
function keep() {
  return fetch("/home/round.json", {credentials: "same-origin", cache: "no-store",
                                    headers: BACKGROUND})
    .then(function (resp) {
      if (resp.status === 401) { return forget().then(function () { return notify({type: "revoked"}); }); }
      if (!resp.ok) { throw new Error("round " + resp.status); }
      return resp.json().then(function (round) {
        var name = ROUND + round.key;
        return caches.keys().then(function (names) {
          return Promise.all(names.filter(function (n) { return n.indexOf(ROUND) === 0 && n !== name; })
            .map(function (n) { return caches.delete(n); }));
        }).then(function () { return caches.open(name); }).then(function (cache) {
          var wanted = round.urls.map(function (u) { return cacheKey(new URL(u, self.location.origin)); });
          return Promise.all(wanted.map(function (key) {
            return fetch(key, {credentials: "same-origin", cache: "no-store", redirect: "manual",
                               headers: BACKGROUND})
              .then(function (page) { if (page.status === 200) { return cache.put(key, page); } });
          })).then(function () { return cache.keys(); }).then(function (requests) {
            return Promise.all(requests.filter(function (r) { return wanted.indexOf(r.url) < 0; })
              .map(function (r) { return cache.delete(r); }));
          }).then(function () { return notify({type: "kept", pages: wanted.length}); });
        });
      });
    });
}

/* A kept page, made ready to use again: a fresh nonce, marked as the phone's copy. */
function fromCache(url) {
  return roundCache().then(function (cache) {
    return cache ? cache.match(cacheKey(url)) : undefined;
  }).then(function (page) {
    if (!page) {
      return roundCache().then(function (cache) {
        return cache ? cache.match(self.location.origin + "/offline") : undefined;
      }).then(function (off) {
        return off || new Response("offline", {status: 503, headers: {"Content-Type": "text/plain"}});
      });
    }
    return page.text().then(function (html) {
      var via = url.searchParams.get("via") === "list" ? "list" : "";
      html = html.replace(/(name="nonce" value=")[^"]*"/g, "$1" + nonce() + '"')
        .replace(/(name="via" value=")[^"]*"/g, "$1" + via + '"')
        .replace("<body>", '<body data-copy="saved">');
      var headers = new Headers(page.headers);
      headers.delete("Content-Length");
      return new Response(html, {status: 200, headers: headers});
    });
  });
}

function navigate(request, url) {
  return timed(fetch(request)).then(function (resp) {
    if (resp.status === 200 && resp.type === "basic") {
      var copy = resp.clone();   // keep the copy of a kept page fresh
      roundCache().then(function (cache) {
        if (!cache) { return; }
        var key = cacheKey(url);
        return cache.match(key).then(function (old) { if (old) { return cache.put(key, copy); } });
      });
    }
    return resp;
  }, function () { return fromCache(url); });
}

/* An outcome form: sent at once when possible, else queued and answered from the phone. */
function postOutcome(request, url) {
  var copy = request.clone();
  return timed(fetch(request)).catch(function () {
    return Promise.all([copy.formData(), roundKey()]).then(function (got) {
      var form = got[0];
      var code = slipCode(url.pathname);
      var item = {nonce: String(form.get("nonce") || nonce()), code: code,
                  outcome: String(form.get("outcome") || ""), note: String(form.get("note") || ""),
                  via: String(form.get("via") || ""), csrf: String(form.get("csrf") || ""),
                  at: new Date().toISOString(), queued_at: Date.now(), key: got[1]};
      return LPQueue.add(item).then(function () {
        if (self.registration.sync) { self.registration.sync.register("lp-sync").catch(function () {}); }
        var back = item.via === "list" ? "/home" : "/H/" + code;
        return Response.redirect(self.location.origin + back, 303);
      });
    });
  });
}

var sending = null;
/* The last sync's answers, for pages opened just after it (the page that started it may
   have gone: the volunteer walks on). */
var lastSync = null;
var NEWS_MS = 120000;

/* Send the queue (in batches); 401 drops the round and the queue. */
function sync(csrf) {
  if (sending) { return sending; }
  sending = LPQueue.all().then(function (items) {
    if (!items.length) { return null; }
    var batch = items.slice(0, BATCH);
    var token = csrf || batch[batch.length - 1].csrf;
    notify({type: "sending", waiting: items.length});
    return fetch("/home/sync", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": token,
                "X-Letterpress-Background": "1"},
      body: JSON.stringify({events: batch.map(function (i) {
        return {code: i.code, outcome: i.outcome, nonce: i.nonce, note: i.note, at: i.at,
                via: i.via, key: i.key || ""};
      })})
    }).then(function (resp) {
      if (resp.status === 401) {
        return forget().then(function () { return notify({type: "revoked"}); });
      }
      if (!resp.ok) { throw new Error("sync " + resp.status); }
      return resp.json().then(function (data) {
        var done = data.results.map(function (r) { return r.nonce; });
        return LPQueue.remove(done).then(function () { return LPQueue.count(); })
          .then(function (left) {
            var fresh = lastSync && Date.now() - lastSync.at < NEWS_MS;
            lastSync = {at: Date.now(), results: (fresh ? lastSync.results : []).concat(data.results)};
            return notify({type: "synced", results: data.results, waiting: left})
              .then(function () { return left; });
          });
      });
    });
  }).then(function (left) {
    sending = null;
    if (left) { return sync(csrf); }
    if (left === 0) { return keep().catch(function () {}); }
  }, function (err) {
    sending = null;
    return LPQueue.count().then(function (n) { return notify({type: "unsent", waiting: n}); })
      .then(function () { throw err; });
  });
  return sending;
}

function logout(request) {
  return sync().catch(function () {}).then(forget).then(function () { return fetch(request); });
}

self.addEventListener("fetch", function (event) {
  var request = event.request, url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method === "POST") {
    if (request.mode === "navigate" && slipCode(url.pathname)) {
      event.respondWith(postOutcome(request, url));
    } else if (url.pathname === "/logout") {
      event.respondWith(logout(request));
    }
    return;
  }
  if (request.method !== "GET") { return; }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.open(STATIC).then(function (cache) {
      return fetch(request).then(function (resp) {
        if (resp.ok) { cache.put(request, resp.clone()); }
        return resp;
      }, function () {
        return cache.match(request, {ignoreSearch: true}).then(function (hit) {
          return hit || Response.error();
        });
      });
    }));
    return;
  }
  if (request.mode === "navigate") { event.respondWith(navigate(request, url)); }
});

self.addEventListener("message", function (event) {
  var data = event.data || {};
  var work = null;
  if (data.type === "keep") { work = keep(); }
  else if (data.type === "sync") { work = sync(data.csrf); }
  else if (data.type === "forget") { work = forget(); }
  else if (data.type === "hello" && lastSync && Date.now() - lastSync.at < NEWS_MS && event.source) {
    var page = event.source;
    work = LPQueue.count().then(function (n) {
      page.postMessage({type: "synced", results: lastSync.results, waiting: n});
    });
  }
  if (work) { event.waitUntil(work.catch(function () {})); }
});

self.addEventListener("sync", function (event) {
  if (event.tag === "lp-sync") { event.waitUntil(sync()); }
});
