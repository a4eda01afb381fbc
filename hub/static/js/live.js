// Live dashboard: server-sent events for new reports, alerts, acknowledgements and units.
// Text from the server is always inserted with textContent, never as HTML.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var alertsBox = document.getElementById("alerts");
  var soundButton = document.getElementById("sound-toggle");
  var audio = null;
  var ringTimer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function toast(text) {
    var box = document.getElementById("toasts");
    var t = el("div", "toast", text);
    box.appendChild(t);
    setTimeout(function () { t.remove(); }, 8000);
  }

  // --- alert sound: two tones made with WebAudio (no sound file to fetch) ---------------
  function beep() {
    document.body.dataset.alarmBeeps = String(Number(document.body.dataset.alarmBeeps || 0) + 1);
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") {
        audio.resume();
        if (soundButton) soundButton.hidden = false;  // browsers need one click first
      }
      [880, 660].forEach(function (freq, i) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        var start = audio.currentTime + i * 0.25;
        osc.frequency.value = freq;
        osc.type = "square";
        gain.gain.setValueAtTime(0.15, start);
        gain.gain.exponentialRampToValueAtTime(0.001, start + 0.22);
        osc.connect(gain).connect(audio.destination);
        osc.start(start);
        osc.stop(start + 0.23);
      });
    } catch (e) { /* no audio device: the red banner still shows */ }
  }

  function updateAlarm() {
    // A card its phone member called off stays until an officer takes it, but no longer rings.
    var open = alertsBox ? alertsBox.querySelectorAll(".alert-card:not([data-cancelled])").length : 0;
    document.body.dataset.alarm = open ? "on" : "off";
    if (open && !ringTimer) { beep(); ringTimer = setInterval(beep, 2000); }
    if (!open && ringTimer) { clearInterval(ringTimer); ringTimer = null; }
  }

  if (soundButton) {
    soundButton.addEventListener("click", function () {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      audio.resume();
      soundButton.hidden = true;
    });
  }

  function wireAck(card) {
    var button = card.querySelector("button.ack");
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(button.dataset.ackUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"X-CSRFToken": csrf, "Accept": "application/json"}
      }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        card.remove();
        updateAlarm();
      }).catch(function () { button.disabled = false; toast("Gagal menerima peringatan; coba lagi."); });
    });
  }

  function addAlert(a) {
    if (!alertsBox || alertsBox.querySelector('[data-alert-id="' + CSS.escape(a.id) + '"]')) return;
    var card = el("div", "alert-card");
    card.dataset.alertId = a.id;
    var head = el("div", "alert-head");
    head.appendChild(el("span", "badge", "DARURAT"));
    head.appendChild(document.createTextNode(" " + (a.posko || a.unit) + " "));
    head.appendChild(el("small", null, "(" + a.unit + ", " + a.received_local + " " + (document.body.dataset.tz || "") + ")"));
    var body = el("div", "alert-body");
    body.appendChild(el("span", "alert-source", a.source_label));
    if (a.text) {
      body.appendChild(document.createTextNode(": “"));
      body.appendChild(el("span", "alert-text", a.text));
      body.appendChild(document.createTextNode("”"));
    }
    var button = el("button", "ack", "Terima");
    button.type = "button";
    button.dataset.ackUrl = "/peringatan/" + encodeURIComponent(a.id) + "/terima";
    card.dataset.source = a.source;
    card.appendChild(head); card.appendChild(body);
    if (a.source === "phone_emergency") {
      // A phone's emergency: the member's group and where the phone was (or why not).
      var phone = el("div", "alert-phone");
      if (a.group) {
        phone.appendChild(document.createTextNode("Grup "));
        phone.appendChild(el("b", "alert-group mono", a.group));
        phone.appendChild(document.createTextNode(" · "));
      }
      var where = el("span", "alert-location", a.location);
      where.dataset.located = a.map_url ? "1" : "0";
      phone.appendChild(where);
      if (a.map_url) {
        var link = el("a", "alert-map", "Lihat di peta");
        link.href = a.map_url;
        phone.appendChild(document.createTextNode(" "));
        phone.appendChild(link);
      }
      card.appendChild(phone);
    }
    card.appendChild(button);
    alertsBox.prepend(card);
    wireAck(card);
    updateAlarm();
  }

  // A phone's emergency moved: the card shows the newest position (the map its trail).
  function moveAlert(a) {
    if (!alertsBox) return;
    var card = alertsBox.querySelector('[data-alert-id="' + CSS.escape(a.id) + '"]');
    var where = card && card.querySelector(".alert-location");
    if (!where) return;
    where.textContent = a.location;
    where.dataset.located = "1";
    card.dataset.points = String(a.points || 0);
    if (a.map_url && !card.querySelector("a.alert-map")) {
      var link = el("a", "alert-map", "Lihat di peta");
      link.href = a.map_url;
      where.after(document.createTextNode(" "), link);
    }
  }

  // A phone member called their emergency off: the card says so and stops ringing.
  function cancelAlert(a) {
    if (!alertsBox) return;
    var card = alertsBox.querySelector('[data-alert-id="' + CSS.escape(a.id) + '"]');
    if (!card || card.dataset.cancelled) return;
    card.dataset.cancelled = "1";
    card.querySelector("button.ack").before(el("p", "alert-cancelled",
      "Dibatalkan pengirim pukul " + a.cancelled_local + " — pastikan keadaannya, lalu Terima."));
    toast("Darurat dari " + a.unit + " dibatalkan pengirimnya.");
    updateAlarm();
  }

  function removeAlert(a) {
    if (!alertsBox) return;
    var card = alertsBox.querySelector('[data-alert-id="' + CSS.escape(a.id) + '"]');
    if (card) { card.remove(); toast("Peringatan dari " + a.unit + " diterima oleh " + a.officer + "."); }
    updateAlarm();
  }

  // --- new reports: a count in the tab title and a short chime on every page -------------
  var baseTitle = document.title;
  var unseen = 0;
  function showUnseen() {
    document.title = unseen ? "(" + unseen + ") " + baseTitle : baseTitle;
    document.body.dataset.unseen = String(unseen);
  }
  // Seen once the officer comes back to the tab (or presses "Tandai terbaca").
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && unseen) { unseen = 0; showUnseen(); }
  });
  window.poskoMarkSeen = function () { unseen = 0; showUnseen(); };

  function chime() {
    document.body.dataset.reportBeeps = String(Number(document.body.dataset.reportBeeps || 0) + 1);
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") { audio.resume(); if (soundButton) soundButton.hidden = false; }
      var osc = audio.createOscillator(), gain = audio.createGain(), start = audio.currentTime;
      osc.frequency.value = 990;
      osc.type = "sine";
      gain.gain.setValueAtTime(0.12, start);
      gain.gain.exponentialRampToValueAtTime(0.001, start + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start(start);
      osc.stop(start + 0.36);
    } catch (e) { /* no audio device: the title count and the toast still show */ }
  }

  function addReport(r) {
    unseen += 1;
    showUnseen();
    chime();
    toast("Laporan baru " + r.ticket + ": " + r.category_label + " — " + r.location);
    var rows = document.getElementById("report-rows");
    if (!rows) return;
    if (rows.dataset.live !== "1") {
      var note = document.getElementById("new-reports");
      if (note) note.hidden = false;
      return;
    }
    if (rows.querySelector('[data-report-id="' + CSS.escape(r.id) + '"]')) return;
    // The row comes from the server (escaped there), so it shows severity, duplicates and
    // age exactly as a reload would.
    fetch("/laporan/" + encodeURIComponent(r.id) + "/baris", {credentials: "same-origin"})
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) {
        if (!html || rows.querySelector('[data-report-id="' + CSS.escape(r.id) + '"]')) return;
        var holder = document.createElement("tbody");
        holder.innerHTML = html.trim();
        var tr = holder.querySelector("tr");
        if (!tr) return;
        tr.classList.add("fresh");
        var empty = rows.querySelector("tr.empty");
        if (empty) empty.remove();
        // Keep the default order: severity first, then newest.
        var rank = {high: 3, medium: 2, normal: 1};
        var mine = rank[tr.dataset.severity] || 1;
        var before = null;
        rows.querySelectorAll("tr[data-report-id]").forEach(function (other) {
          if (!before && (rank[other.dataset.severity] || 1) <= mine) before = other;
        });
        rows.insertBefore(tr, before);
        var count = document.getElementById("report-count");
        if (count) count.textContent = String(Number(count.textContent) + 1);
        document.dispatchEvent(new CustomEvent("posko:row-added", {detail: tr}));
      });
  }

  // Another officer (or this one, in another tab) moved a report: show it where it is shown.
  function stateChanged(s) {
    var row = document.querySelector('#report-rows tr[data-report-id="' + CSS.escape(s.id) + '"]');
    if (row) {
      var badge = row.querySelector(".state");
      badge.className = "state state-" + s.state;
      badge.textContent = s.state_label;
      row.dataset.state = s.state;
      if (s.state !== "baru" && s.state !== "diverifikasi") {
        var mark = row.querySelector(".overdue-mark");
        if (mark) { mark.hidden = true; delete row.dataset.overdueAt; row.classList.remove("overdue"); }
      }
    }
    var here = document.getElementById("report-state");
    if (here && here.dataset.reportId === s.id && here.dataset.state !== s.state) {
      var notice = document.getElementById("state-changed");
      if (notice) {
        notice.querySelector(".who").textContent = s.by;
        notice.querySelector(".what").textContent = s.state_label;
        notice.hidden = false;
      }
    }
  }

  var fleetTimer = null;
  function refreshFleet() {
    var box = document.getElementById("fleet-box");
    if (!box) return;
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      // Our own server-rendered (escaped) partial.
      if (html) box.innerHTML = html;
    });
  }
  if (document.getElementById("fleet-box")) fleetTimer = setInterval(refreshFleet, 10000);

  alertsBox && alertsBox.querySelectorAll(".alert-card").forEach(wireAck);
  updateAlarm();

  var source = new EventSource("/live/stream");
  source.addEventListener("open", function () { document.body.dataset.live = "connected"; });
  source.addEventListener("error", function () { document.body.dataset.live = "reconnecting"; });
  source.addEventListener("report", function (e) { addReport(JSON.parse(e.data)); });
  source.addEventListener("alert", function (e) { addAlert(JSON.parse(e.data)); });
  source.addEventListener("alert_ack", function (e) { removeAlert(JSON.parse(e.data)); });
  source.addEventListener("alert_location", function (e) { moveAlert(JSON.parse(e.data)); });
  source.addEventListener("alert_cancel", function (e) { cancelAlert(JSON.parse(e.data)); });
  source.addEventListener("unit", function () { refreshFleet(); });
  source.addEventListener("report_state", function (e) { stateChanged(JSON.parse(e.data)); });
  // This browser's session ended (logged out in another tab, password reset, account disabled).
  source.addEventListener("logout", function () {
    source.close();
    if (window.poskoLeaving) return;  // another stream of this page said it first
    window.poskoLeaving = true;
    window.location.href = "/masuk?berakhir=1&next=" + encodeURIComponent(location.pathname + location.search);
  });
})();
