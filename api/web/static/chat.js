// The console's conversation view: actions (If-Match), the reply box (Idempotency-Key, Retry) with
// quick replies, and live updates from the queue's view stream (/app/queue/stream). Every /v1 write carries the session's CSRF
// token in X-CSRF-Token (api/auth.py). The header and transcript are rendered by the server: on a
// change of this conversation the page fetches …/live and swaps them in (one rendering of a message).
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("chat-config").textContent);
  var T = cfg.t;
  var base = "/v1/conversations/" + encodeURIComponent(cfg.id);
  var version = cfg.version;
  var notice = document.getElementById("chat-notice");
  var pendingList = document.getElementById("pending");
  var box = document.getElementById("reply-text");
  var suggestions = document.getElementById("quick-replies");
  var composeKey = null;  // the Idempotency-Key of the message being composed (one per message)

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return values[k] != null ? values[k] : m; });
  }

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h";
  }

  function say(text, kind) {
    notice.textContent = text;
    notice.dataset.kind = kind || "info";
    notice.hidden = !text;
  }

  function newKey() {
    return (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  function post(path, body, headers) {
    var h = { "Content-Type": "application/json", "X-CSRF-Token": cfg.csrf };
    Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
    return fetch(path, { method: "POST", credentials: "same-origin", headers: h, body: JSON.stringify(body) })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (d) { return { status: r.status, body: d }; }); });
  }

  // ----------------------------------------------------------------------------- live region
  var refreshing = null, again = false;
  function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = fetch("/app/console/conversations/" + encodeURIComponent(cfg.id) + "/live", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("#chat-live");
        var old = document.getElementById("chat-live");
        if (!fresh || !old) return;
        old.replaceWith(fresh);
        version = parseInt(fresh.dataset.version, 10);
        settlePending();
      })
      .catch(function () {})
      .then(function () {
        refreshing = null;
        if (again) { again = false; refresh(); }
      });
    return refreshing;
  }

  // A sent message leaves the local list once the server's transcript has it (then its tick follows acks).
  function settlePending() {
    Array.prototype.forEach.call(pendingList.querySelectorAll("li[data-message-id]"), function (li) {
      var id = li.dataset.messageId;
      if (document.querySelector("#transcript li[data-message-id='" + CSS.escape(id) + "']")) li.remove();
    });
  }

  // ----------------------------------------------------------------------------- actions
  function conflictText(current) {
    if (!current || !current.action || !current.at) return T.conflict_generic;
    var who = current.actor_name || (cfg.names || {})[current.actor_id] || T.someone;
    return fill(T.conflict, { who: who, did: T["did_" + current.action] || current.action, ago: ago(current.at) });
  }

  function act(kind) {
    var person = document.getElementById("act-person");
    var team = document.getElementById("act-team");
    var action = kind, body = {};
    if (cfg.me) body.actor_id = cfg.me;
    if (kind === "take") { action = "assign"; body.attendant_id = cfg.me; }
    else if (kind === "assign") { body.attendant_id = person && person.value; }
    else if (kind === "transfer-person") { action = "transfer"; body.attendant_id = person && person.value; }
    else if (kind === "transfer-team") { action = "transfer"; body.team_id = team && team.value; }
    say("");
    return post(base + "/" + action, body, { "If-Match": String(version) }).then(function (r) {
      if (r.status === 200) { version = r.body.version; say(T.done, "ok"); return refresh(); }
      if (r.status === 409) { say(conflictText(r.body.current), "conflict"); return refresh(); }
      say(fill(T.action_failed, { reason: r.body.error || r.status }), "error");
    });
  }

  document.querySelector(".chat-actions").addEventListener("click", function (e) {
    var button = e.target.closest("button[data-action]");
    if (button) act(button.dataset.action);
  });

  // ----------------------------------------------------------------------------- reply box
  function bubble(text, key) {
    var li = document.createElement("li");
    li.className = "bubble out local";
    li.dataset.key = key;
    var p = document.createElement("p");
    p.className = "text";
    p.textContent = text;
    var meta = document.createElement("span");
    meta.className = "meta";
    var tick = document.createElement("span");
    tick.className = "tick";
    tick.dataset.tick = "pending";
    tick.title = T.tick_pending;
    meta.appendChild(tick);
    li.appendChild(p);
    li.appendChild(meta);
    pendingList.appendChild(li);
    return li;
  }

  function deliver(li, text, key) {
    var tick = li.querySelector(".tick");
    tick.dataset.tick = "pending";
    var old = li.querySelector(".failure");
    if (old) old.remove();
    return post(base + "/messages", { text: text }, { "Idempotency-Key": key }).then(function (r) {
      if (r.status === 201 || r.status === 200) {
        li.dataset.messageId = r.body.message_id;
        return refresh();
      }
      tick.dataset.tick = "failed";
      tick.title = T.tick_failed;
      var failure = document.createElement("p");
      failure.className = "failure";
      failure.setAttribute("role", "alert");
      failure.textContent = fill(T.failed, { reason: r.body.error || r.status }) + " ";
      var retry = document.createElement("button");
      retry.type = "button";
      retry.className = "retry";
      retry.textContent = T.retry;
      retry.addEventListener("click", function () { deliver(li, text, key); });  // the SAME key: never sent twice
      failure.appendChild(retry);
      li.appendChild(failure);
    }, function () {
      tick.dataset.tick = "failed";
    });
  }

  function send() {
    var text = box.value.trim();
    if (!text) return;
    var key = composeKey || newKey();
    composeKey = null;
    box.value = "";
    closeSuggestions();
    deliver(bubble(text, key), text, key);
  }

  document.getElementById("reply").addEventListener("submit", function (e) { e.preventDefault(); send(); });

  // ----------------------------------------------------------------------------- quick replies
  var options = [], chosen = 0, lookup = 0;
  function token() {
    var m = /(?:^|\s)\/([a-z0-9_-]*)$/i.exec(box.value);
    return m ? m[1].toLowerCase() : null;
  }
  function closeSuggestions() { options = []; suggestions.hidden = true; suggestions.innerHTML = ""; }
  function show() {
    suggestions.innerHTML = "";
    options.forEach(function (q, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = "qr-" + i;
      li.setAttribute("aria-selected", i === chosen ? "true" : "false");
      li.textContent = "/" + q.shortcut + " — " + q.title;
      li.addEventListener("mousedown", function (e) { e.preventDefault(); insert(i); });
      suggestions.appendChild(li);
    });
    suggestions.hidden = options.length === 0;
  }
  function insert(i) {
    var q = options[i];
    if (!q) return;
    box.value = box.value.replace(/\/[a-z0-9_-]*$/i, q.body);
    closeSuggestions();
    box.focus();
  }
  box.addEventListener("input", function () {
    if (!composeKey && box.value.trim()) composeKey = newKey();
    var word = token();
    if (word === null) { closeSuggestions(); return; }
    var mine = ++lookup;
    fetch("/v1/quick-replies?prefix=" + encodeURIComponent("/" + word), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) {
        if (mine !== lookup || token() === null) return;
        options = (Array.isArray(list) ? list : list.items || []).slice(0, 8);
        chosen = 0;
        show();
      });
  });
  box.addEventListener("keydown", function (e) {
    if (options.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        chosen = (chosen + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
        show();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); insert(chosen); return; }
      if (e.key === "Escape") { closeSuggestions(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
  });

  // ----------------------------------------------------------------------------- live stream
  // EventSource reconnects by itself and sends Last-Event-ID; the stream replays what was missed.
  // The queue's view stream: the caller's view of the instance (an attendant's own and unassigned
  // conversations; one that leaves the view still arrives once, as "gone"), contacts as the role may see them.
  var stream = new EventSource("/app/queue/stream?instance_id=" + encodeURIComponent(cfg.instance));
  stream.addEventListener("conversation", function (e) {
    var data = JSON.parse(e.data);
    if (data.conversation && data.conversation.id === cfg.id) refresh();
  });
  stream.addEventListener("reset", function () { refresh(); });
  stream.addEventListener("open", function () { document.body.dataset.live = "on"; refresh(); });
  window.addEventListener("beforeunload", function () { stream.close(); });
})();
