// BeaZap live queue (/app/queue): the server renders the rows once; this keeps them current from the
// live stream (EventSource: Last-Event-ID on reconnect, `reset` → reload the rows), counts the
// waiting time and the time to the next SLA breach down each second (the SLA state itself always
// comes from the server), shows the user's SLA notifications (bell + toast, ack) and, for an
// attendant, sends the presence heartbeat (online while active, away when idle).
(function () {
  "use strict";
  var root = document.getElementById("queue");
  if (!root) return;
  var names = JSON.parse(document.getElementById("queue-names").textContent);
  var labels = JSON.parse(document.getElementById("queue-labels").textContent);
  var csrf = root.dataset.csrf;
  var skew = Date.parse(root.dataset.renderedAt) - Date.now();  // server clock − this clock
  var bodies = {
    waiting: document.querySelector("#queue-waiting tbody"),
    assigned: document.querySelector("#queue-assigned tbody")
  };
  var rows = {};        // conversation id → {version, kind, opened, awaiting, deadline, sla, tr}
  var tombstones = {};  // conversation id → version at which it left the queue
  var touched = null;   // ids changed by the stream while a full reload is under way

  // Same units as api/web/fmt.py duration(): "45 s", "3 min 20 s", "2 h 05 min", "3 d 4 h".
  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    var total = Math.max(0, Math.round(seconds));
    if (total < 60) return total + " s";
    var minutes = Math.floor(total / 60), secs = total % 60;
    if (minutes < 60) return secs ? minutes + " min " + String(secs).padStart(2, "0") + " s" : minutes + " min";
    var hours = Math.floor(minutes / 60); minutes %= 60;
    if (hours < 24) return minutes ? hours + " h " + String(minutes).padStart(2, "0") + " min" : hours + " h";
    var days = Math.floor(hours / 24); hours %= 24;
    return hours ? days + " d " + hours + " h" : days + " d";
  }

  function when(iso) { return iso ? Date.parse(iso) : null; }
  function deadlineOf(sla) {
    return sla && sla.seconds_to_breach !== null && sla.seconds_to_breach !== undefined && sla.seconds_to_breach !== ""
      ? Date.now() + Number(sla.seconds_to_breach) * 1000 : null;
  }

  // --- rows -----------------------------------------------------------------------------------------------
  function adopt(tr, kind) {
    var d = tr.dataset;
    rows[d.id] = {
      version: Number(d.version), kind: kind, opened: Date.parse(d.opened), awaiting: when(d.awaiting),
      deadline: deadlineOf({ seconds_to_breach: d.breachIn }), sla: d.sla, tr: tr, asked: false
    };
  }
  Object.keys(bodies).forEach(function (kind) {
    Array.prototype.forEach.call(bodies[kind].rows, function (tr) { adopt(tr, kind); });
  });

  function cell(tr, cls, text) { tr.querySelector("." + cls).textContent = text; }

  function fill(tr, ev) {
    var c = ev.conversation, sla = ev.sla || {};
    tr.id = "q-" + c.id;
    tr.dataset.id = c.id;
    tr.dataset.version = c.version;
    tr.dataset.sla = sla.state || "";
    var link = tr.querySelector("th a");
    link.href = "/app/console/conversations/" + encodeURIComponent(c.id);
    link.textContent = c.contact !== undefined ? c.contact : c.contact_key;
    cell(tr, "assignee", c.assignee_id ? (names.attendants[c.assignee_id] || c.assignee_id) : "—");
    cell(tr, "team", c.team_id ? (names.teams[c.team_id] || c.team_id) : "—");
    var badge = tr.querySelector(".sla .badge");
    badge.className = "badge sla-" + (sla.state || "none");
    badge.textContent = labels["sla_" + (sla.state || "none")] || sla.state;
    cell(tr, "instance", c.instance_id);
  }

  function blankRow() {
    var tr = document.createElement("tr");
    tr.innerHTML = '<th scope="row"><a></a></th><td class="waited"></td><td class="assignee"></td>' +
      '<td class="team"></td><td class="sla"><span class="badge"></span></td><td class="breach"></td><td class="instance"></td>';
    return tr;
  }

  function before(a, b) { return a.opened < b.opened || (a.opened === b.opened && a.id < b.id); }

  function place(row, id) {
    var body = bodies[row.kind], key = { opened: row.opened, id: id };
    var last = body.lastElementChild, lastRow = last && rows[last.dataset.id];
    if (!last || !lastRow || before({ opened: lastRow.opened, id: last.dataset.id }, key)) {  // usually: the newest
      body.appendChild(row.tr);
      return;
    }
    for (var tr = body.firstElementChild; tr; tr = tr.nextElementSibling) {
      var other = rows[tr.dataset.id];
      if (tr !== row.tr && other && before(key, { opened: other.opened, id: tr.dataset.id })) {
        body.insertBefore(row.tr, tr);
        return;
      }
    }
    body.appendChild(row.tr);
  }

  function counts() {
    Object.keys(bodies).forEach(function (kind) {
      var table = bodies[kind].closest("section");
      var n = bodies[kind].rows.length;
      table.querySelector(".count").textContent = n;
      table.querySelector(".empty").hidden = n > 0;
    });
    root.dataset.rows = Object.keys(rows).length;
  }

  function remove(id, version) {
    var row = rows[id];
    tombstones[id] = Math.max(version || 0, tombstones[id] || 0);
    if (!row) return;
    row.tr.remove();
    delete rows[id];
  }

  // One conversation's new state, from the stream or from a reload (same shape).
  function apply(ev, fromStream) {
    var c = ev.conversation, id = c.id, cur = rows[id];
    if (cur && c.version < cur.version) return;
    if (!cur && tombstones[id] !== undefined && c.version <= tombstones[id]) return;
    if (fromStream && touched) touched[id] = true;
    if (ev.kind !== "waiting" && ev.kind !== "assigned") { remove(id, c.version); return; }
    var row = cur || { tr: blankRow() };
    row.version = c.version; row.opened = Date.parse(c.opened_at); row.awaiting = when(c.awaiting_since);
    row.deadline = deadlineOf(ev.sla); row.sla = (ev.sla || {}).state; row.asked = false;
    fill(row.tr, ev);
    var moved = !cur || cur.kind !== ev.kind;
    row.kind = ev.kind;
    rows[id] = row;
    if (moved) place(row, id);
    tickRow(row);
  }

  function tickRow(row) {
    cell(row.tr, "waited", row.awaiting ? duration((Date.now() + skew - row.awaiting) / 1000) : "—");
    if (row.deadline === null) { cell(row.tr, "breach", "—"); return; }
    var left = (row.deadline - Date.now()) / 1000;
    cell(row.tr, "breach", duration(left));
    if (left <= 0 && !row.asked) { row.asked = true; refresh(row.tr.dataset.id); }  // the server says what it is now
  }

  function tick() {
    Object.keys(rows).forEach(function (id) { tickRow(rows[id]); });
  }

  // --- reloads: some rows (a deadline passed, an alert arrived) or all of them (reset, new stream) -----------
  var rowsUrl = root.dataset.rows;
  var pending = {}, pendingTimer = null;
  function refresh(id) {
    pending[id] = rows[id] ? rows[id].version : 0;
    if (!pendingTimer) pendingTimer = setTimeout(refreshNow, 300);
  }
  function refreshNow() {
    var asked = pending; pending = {}; pendingTimer = null;
    var ids = Object.keys(asked);
    if (!ids.length) return;
    var url = rowsUrl + (rowsUrl.indexOf("?") < 0 ? "?" : "&") + ids.map(function (i) { return "id=" + encodeURIComponent(i); }).join("&");
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
      if (!body) return;
      var answered = {};
      body.items.forEach(function (ev) { answered[ev.id] = true; apply(ev, false); });
      ids.forEach(function (id) {  // no longer in this view, unless the stream changed it meanwhile
        if (!answered[id] && rows[id] && rows[id].version <= asked[id]) remove(id, rows[id].version);
      });
      counts();
    }).catch(function () {});
  }
  function reload() {
    touched = {};
    var mine = touched;
    return fetch(rowsUrl, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
      if (!body || touched !== mine) return;
      var seen = {};
      body.items.forEach(function (ev) { seen[ev.id] = true; apply(ev, false); });
      Object.keys(rows).forEach(function (id) { if (!seen[id] && !mine[id]) remove(id, rows[id].version); });
      touched = null;
      older.dataset.cursor = body.next_cursor || "";
      document.getElementById("queue-older-box").hidden = !body.next_cursor;
      root.dataset.reloads = Number(root.dataset.reloads || 0) + 1;
      counts();
    }).catch(function () { touched = null; });
  }

  // Older pages (the API's cursor), on demand; each row lands in its place, oldest first.
  var older = document.getElementById("queue-older");
  older.addEventListener("click", function () {
    var cursor = older.dataset.cursor;
    if (!cursor) return;
    older.disabled = true;
    fetch(rowsUrl + (rowsUrl.indexOf("?") < 0 ? "?" : "&") + "cursor=" + encodeURIComponent(cursor), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
        if (!body) return;
        body.items.forEach(function (ev) { apply(ev, false); });
        older.dataset.cursor = body.next_cursor || "";
        document.getElementById("queue-older-box").hidden = !body.next_cursor;
        counts();
      }).catch(function () {}).then(function () { older.disabled = false; });
  });

  // --- the stream --------------------------------------------------------------------------------------------
  var conn = document.getElementById("connection");
  function status(state) {
    conn.dataset.state = state;
    conn.textContent = conn.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)];
  }
  var streamUrl = root.dataset.stream, lastId = null;
  function connect() {
    // `after` (the change id the page was rendered at) makes the first connection replay what changed
    // since; the browser's own reconnects add Last-Event-ID, and a new EventSource starts after the
    // last event seen.
    var url = lastId === null ? streamUrl : streamUrl.replace(/([?&])after=[^&]*/, "$1after=" + lastId);
    var es = new EventSource(url);
    es.onopen = function () { status("connected"); };
    es.addEventListener("conversation", function (e) {
      lastId = e.lastEventId;
      apply(JSON.parse(e.data), true);
      counts();
      root.dataset.lastEventId = e.lastEventId;
      notesSoon();
    });
    es.addEventListener("reset", function (e) { lastId = e.lastEventId || lastId; reload(); });
    es.onerror = function () {
      status("reconnecting");
      if (es.readyState === EventSource.CLOSED) {  // the browser gave up (an error answer): start over
        setTimeout(connect, 2000);
      }
    };
  }

  // --- SLA notifications: the bell lists the unacknowledged ones, a toast announces each new one -------------
  var notes = {}, firstPoll = true, polling = false, noteTimer = null;
  var bell = document.getElementById("bell"), panel = document.getElementById("notifications");
  var list = document.getElementById("notification-list"), toasts = document.getElementById("toasts");
  bell.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    bell.setAttribute("aria-expanded", String(!panel.hidden));
  });
  function noteText(n) {
    return labels.alert + ": " + (labels["sla_" + n.state] || n.state) + " · " + (labels["clock_" + n.clock] || n.clock);
  }
  function noteLink(n) {
    var a = document.createElement("a");
    a.href = "/app/console/conversations/" + encodeURIComponent(n.conversation_id);
    var row = rows[n.conversation_id];
    a.textContent = row ? row.tr.querySelector("th a").textContent : labels.open;
    return a;
  }
  function bellCount() {
    var n = Object.keys(notes).length;
    document.getElementById("bell-count").textContent = n;
    document.getElementById("no-notifications").hidden = n > 0;
    bell.dataset.count = n;
  }
  function addNote(n) {
    var li = document.createElement("li");
    li.dataset.id = n.id;
    li.className = "note-item sla-" + n.state;
    li.appendChild(document.createTextNode(noteText(n) + " — "));
    li.appendChild(noteLink(n));
    var button = document.createElement("button");
    button.type = "button"; button.className = "ack"; button.textContent = labels.ack;
    button.addEventListener("click", function () { ack(n.id); });
    li.appendChild(button);
    list.appendChild(li);
    notes[n.id] = li;
    if (!firstPoll) {
      var toast = document.createElement("div");
      toast.className = "toast sla-" + n.state;
      toast.dataset.id = n.id;
      toast.appendChild(document.createTextNode(noteText(n) + " — "));
      toast.appendChild(noteLink(n));
      toasts.appendChild(toast);
      setTimeout(function () { toast.remove(); }, 8000);
      if (rows[n.conversation_id]) refresh(n.conversation_id);  // its SLA state changed: ask the server
    }
  }
  function pollNotes() {
    if (polling) return;
    polling = true;
    fetch("/app/queue/notifications", { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) return;
        var current = {};
        body.items.slice().reverse().forEach(function (n) { current[n.id] = true; if (!notes[n.id]) addNote(n); });
        Object.keys(notes).forEach(function (id) { if (!current[id]) { notes[id].remove(); delete notes[id]; } });
        firstPoll = false;
        bellCount();
      }).catch(function () {}).then(function () { polling = false; });
  }
  function notesSoon() { if (!noteTimer) noteTimer = setTimeout(function () { noteTimer = null; pollNotes(); }, 500); }
  function ack(id) {
    fetch("/app/queue/notifications/" + id + "/ack", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
      .then(function (r) {
        if (r.status === 204 || r.status === 404) {
          if (notes[id]) { notes[id].remove(); delete notes[id]; }
          bellCount();
        }
      }).catch(function () {});
  }

  // --- presence: the logged-in attendant is online while active on the page, away once idle ------------------
  function presence() {
    if (!root.dataset.attendant) return;
    var awayAfter = Number(root.dataset.awayAfter) * 1000, lastActive = Date.now(), sentAway = null;
    function beat() {
      var away = Date.now() - lastActive >= awayAfter;
      sentAway = away;
      fetch("/app/queue/heartbeat", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify({ away: away })
      }).then(function (r) { root.dataset.presence = away ? "away" : "online"; return r; }).catch(function () {});
    }
    ["mousemove", "keydown", "click", "scroll", "touchstart", "focus"].forEach(function (name) {
      window.addEventListener(name, function () { lastActive = Date.now(); if (sentAway) beat(); }, { passive: true });
    });
    beat();
    setInterval(beat, Math.min(60000, awayAfter / 2));
    setInterval(function () { if (sentAway === false && Date.now() - lastActive >= awayAfter) beat(); }, 1000);
  }

  counts();
  tick();
  setInterval(tick, 1000);
  connect();
  pollNotes();
  setInterval(pollNotes, 5000);
  presence();
  document.documentElement.dataset.queueReady = "true";
})();
