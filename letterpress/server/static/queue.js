/* letterpress: outcomes recorded without a connection, kept in IndexedDB until they are sent.
   Shared by the pages (round.js) and the service worker (sw.js). One entry per nonce, so the
   same record saved twice is kept (and sent) once. */
(function (scope) {
  "use strict";
  var DB = "letterpress", STORE = "outbox";

  function open() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, {keyPath: "nonce"}); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function run(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode), out;
        var req = work(tx.objectStore(STORE));
        if (req) { req.onsuccess = function () { out = req.result; }; }
        tx.oncomplete = function () { db.close(); resolve(out); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }

  scope.LPQueue = {
    add: function (item) { return run("readwrite", function (s) { return s.put(item); }); },
    all: function () {
      return run("readonly", function (s) { return s.getAll(); }).then(function (items) {
        return (items || []).sort(function (a, b) { return a.queued_at - b.queued_at; });
      });
    },
    remove: function (nonces) {
      return run("readwrite", function (s) { nonces.forEach(function (n) { s.delete(n); }); });
    },
    clear: function () { return run("readwrite", function (s) { return s.clear(); }); },
    count: function () { return run("readonly", function (s) { return s.count(); }); }
  };
})(self);
