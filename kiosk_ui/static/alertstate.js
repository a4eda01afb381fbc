/* One emergency on screen in exactly one of three states, kept live:
   not_sent (call 110 now) -> sent (the hub, or the broker bridge, has it) -> acked.
   The kiosk's server says which (GET /api/alerts/<id>, events alert_state / ack); this page
   never guesses "sent". While an alert is not acknowledged the idle reset waits. */
(function () {
  "use strict";
  var RANK = { not_sent: 0, sent: 1, acked: 2 };
  var followed = {};  /* alert id -> last description shown */
  var es = null;

  function when(sec, box) {
    var lang = (window.PoskoKiosk && window.PoskoKiosk.lang) || "id";
    var locale = lang === "en" ? "en-GB" : "id-ID";
    var d = new Date(sec * 1000);
    var opts = { hour: "2-digit", minute: "2-digit", timeZone: box.dataset.tz };
    var text;
    try { text = d.toLocaleTimeString(locale, opts); }
    catch (e) { delete opts.timeZone; text = d.toLocaleTimeString(locale, opts); }
    return text + " " + box.dataset.tzLabel;
  }

  function render(box, a) {
    var prev = followed[a.alert_id];
    /* states only move forward; a late event must not take an ack back */
    if (prev && RANK[prev.state] > RANK[a.state]) return;
    followed[a.alert_id] = a;
    box.hidden = false;
    box.dataset.state = a.state;
    box.querySelector('[data-test="state-not-sent"]').hidden = a.state !== "not_sent";
    box.querySelector('[data-test="state-sent"]').hidden = a.state !== "sent";
    box.querySelector('[data-test="state-acked"]').hidden = a.state !== "acked";
    if (a.sent_at) {
      var tpl = a.sent_via === "bridge" ? box.dataset.sentBridge : box.dataset.sentHub;
      box.querySelector('[data-test="sent-when"]').textContent = tpl.replace("{time}", when(a.sent_at, box));
    }
    if (a.state === "acked") {
      box.querySelector('[data-test="acked-who"]').textContent = box.dataset.ackedBy
        .replace("{officer}", a.acked_by || "-").replace("{time}", a.acked_at ? when(a.acked_at, box) : "");
    }
    var open = Object.keys(followed).some(function (id) { return followed[id].state !== "acked"; });
    if (window.PoskoKiosk) window.PoskoKiosk.emergencyOpen = open;
  }

  function poll(box, id) {
    var a = followed[id];
    if (a && a.state === "acked") return;
    fetch("/api/alerts/" + encodeURIComponent(id), { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d && d.alert_id === id) render(box, d); })
      .catch(function () { /* the kiosk's own server restarting: the next poll tries again */ })
      .then(function () { setTimeout(function () { poll(box, id); }, 3000); });
  }

  function follow(box, a) {
    if (!a || !a.alert_id) return;
    render(box, a);
    if (!es && window.EventSource) {
      es = new EventSource("/events");
      es.addEventListener("alert_state", function (e) {
        var d = JSON.parse(e.data);
        if (followed[d.alert_id]) render(box, d);
      });
      es.addEventListener("ack", function (e) {
        var d = JSON.parse(e.data);
        var a = followed[d.alert_id];
        if (a) render(box, Object.assign({}, a, { state: "acked", acked_by: d.officer, acked_at: d.time }));
      });
      window.addEventListener("pagehide", function () { es.close(); });
    }
    setTimeout(function () { poll(box, a.alert_id); }, 3000);
  }

  window.PoskoAlert = { follow: follow };
})();
