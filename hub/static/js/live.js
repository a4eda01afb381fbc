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
    var open = alertsBox ? alertsBox.querySelectorAll(".alert-card").length : 0;
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
    head.appendChild(el("small", null, "(" + a.unit + ", " + a.received_local + ")"));
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
    card.appendChild(head); card.appendChild(body); card.appendChild(button);
    alertsBox.prepend(card);
    wireAck(card);
    updateAlarm();
  }

  function removeAlert(a) {
    if (!alertsBox) return;
    var card = alertsBox.querySelector('[data-alert-id="' + CSS.escape(a.id) + '"]');
    if (card) { card.remove(); toast("Peringatan dari " + a.unit + " diterima oleh " + a.officer + "."); }
    updateAlarm();
  }

  function addReport(r) {
    toast("Laporan baru " + r.ticket + ": " + r.category_label + " — " + r.location);
    var rows = document.getElementById("report-rows");
    if (!rows || rows.dataset.live !== "1") return;
    if (rows.querySelector('[data-report-id="' + CSS.escape(r.id) + '"]')) return;
    var empty = rows.querySelector("tr.empty");
    if (empty) empty.remove();
    var tr = el("tr", "fresh");
    tr.dataset.reportId = r.id;
    var link = el("a", null, r.ticket);
    link.href = "/laporan/" + encodeURIComponent(r.id);
    var tdTicket = el("td", "mono"); tdTicket.appendChild(link);
    tr.appendChild(tdTicket);
    tr.appendChild(el("td", null, r.received_local));
    tr.appendChild(el("td", null, r.category_label));
    tr.appendChild(el("td", "desc", r.description));
    tr.appendChild(el("td", null, r.location));
    tr.appendChild(el("td", null, r.unit));
    var tdState = el("td"); tdState.appendChild(el("span", "state state-" + r.state, r.state_label));
    tr.appendChild(tdState);
    rows.prepend(tr);
    var count = document.getElementById("report-count");
    if (count) count.textContent = String(Number(count.textContent) + 1);
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
  source.addEventListener("unit", function () { refreshFleet(); });
})();
