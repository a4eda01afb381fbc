/* Darurat: confirm, publish the alert, then a calm screen that shows the officer's ack. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var alertId = null;
  var acked = false;

  function markAcked() {
    acked = true;
    var ack = $("ack");
    ack.textContent = ack.dataset.acked;
    ack.classList.add("acked");
  }

  if (window.EventSource) {
    var es = new EventSource("/events");
    es.addEventListener("ack", function (e) {
      var d = JSON.parse(e.data);
      if (alertId && d.alert_id === alertId && !acked) markAcked();
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }

  $("call").addEventListener("click", function () {
    var btn = $("call");
    btn.disabled = true;
    fetch("/api/darurat", { method: "POST" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (!d.ok) { $("darurat-error").textContent = d.message; $("darurat-error").hidden = false; btn.disabled = false; return; }
        alertId = d.alert_id;
        $("sent-note").textContent = d.message;
        $("confirm").hidden = true;
        $("sent").hidden = false;
      })
      .catch(function () { btn.disabled = false; });
  });
})();
