// Talk-group page: who holds each group's floor, live. Server-sent `floor` events from
// /grup-bicara/stream carry every group's floor at connect and whenever one changes; the
// seconds talking are counted here between events, with the hub's clock (`now`).
// Text from the server is always inserted with textContent, never as HTML.
(function () {
  "use strict";
  var table = document.getElementById("groups");
  if (!table || !window.EventSource) return;
  var words = JSON.parse(table.dataset.words);
  var status = document.getElementById("floor-live");
  var offset = Date.now() / 1000 - Number(table.dataset.now);  // browser clock minus hub clock
  var reconnectTimer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function elapsed(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " " + words.sec;
    if (s < 3600) return Math.floor(s / 60) + " " + words.min + " " + pad(s % 60) + " " + words.sec;
    return Math.floor(s / 3600) + " " + words.hour + " " + pad(Math.floor(s % 3600 / 60)) + " " + words.min;
  }

  function hubNow() { return Date.now() / 1000 - offset; }

  function showAction(row, holder) {
    // The command center holds the floor: offer to let it go, else to take it over.
    var ours = holder !== "" && holder === table.dataset.command;
    var release = row.querySelector("form[data-floor=release]");
    var take = row.querySelector("form[data-floor=take]");
    if (release) release.hidden = !ours;
    if (take) take.hidden = ours;
  }

  function showHolder(row, floor) {
    var cell = row.querySelector("td.holder");
    var holder = (floor && floor.holder) || "";
    showAction(row, holder);
    var since = holder ? String(floor.since) : "";
    var priority = holder ? floor.priority : "";
    if (cell.dataset.holder === holder && (cell.dataset.since || "") === since &&
        (cell.dataset.priority || "") === priority) return;  // unchanged: no flicker
    cell.textContent = "";
    cell.dataset.holder = holder;
    row.classList.toggle("talking", !!holder);
    if (!holder) {
      delete cell.dataset.since;
      delete cell.dataset.priority;
      cell.appendChild(el("span", "muted", words.free));
      return;
    }
    cell.dataset.since = since;
    cell.dataset.priority = priority;
    cell.appendChild(el("span", "on-air", words.talking));
    cell.appendChild(document.createTextNode(" "));
    cell.appendChild(el("b", "mono", holder));
    var label = words.priority[priority];
    if (label) {
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(el("span", "muted prio", "(" + label + ")"));
    }
    if (floor.since > 0) {
      var when = el("span", "when", "· ");
      when.appendChild(el("span", "elapsed", elapsed(hubNow() - floor.since)));
      cell.appendChild(document.createTextNode(" "));
      cell.appendChild(when);
    }
  }

  function tick() {
    table.querySelectorAll("td.holder[data-since]").forEach(function (cell) {
      var span = cell.querySelector(".elapsed");
      if (span) span.textContent = elapsed(hubNow() - Number(cell.dataset.since));
    });
  }

  function setStatus(state) {
    if (!status || status.dataset.state === state) return;
    status.dataset.state = state;
    status.textContent = words[state];
    status.hidden = false;
  }

  var source = new EventSource(table.dataset.stream);
  source.addEventListener("open", function () {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
  });
  source.addEventListener("error", function () {
    // A refused stream (e.g. the login expired) is not retried by the browser.
    if (source.readyState === EventSource.CLOSED) {
      clearTimeout(reconnectTimer);
      setStatus("closed");
      return;
    }
    // The stream ends every few minutes and reconnects at once: say so only if it lasts.
    if (!reconnectTimer) reconnectTimer = setTimeout(function () { setStatus("reconnecting"); }, 3000);
  });
  source.addEventListener("logout", function () {
    source.close();
    if (window.poskoLeaving) return;  // another stream of this page said it first
    window.poskoLeaving = true;
    window.location.href = "/masuk?berakhir=1&next=" + encodeURIComponent(location.pathname + location.search);
  });
  source.addEventListener("floor", function (e) {
    var data = JSON.parse(e.data);
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    offset = Date.now() / 1000 - data.now;
    table.querySelectorAll("tr[data-group]").forEach(function (row) {
      showHolder(row, data.groups[row.dataset.group]);
    });
    setStatus(data.online ? "live" : "offline");
  });
  setInterval(tick, 1000);
})();
