/* Darurat: confirm, store and send the alert, then show its one true state, live. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var box = $("alert-state");

  function failed(message) {
    $("confirm").hidden = true;
    $("sent").hidden = true;
    $("darurat-failed").hidden = false;
    $("darurat-error").textContent = message || "";
    $("darurat-error").hidden = !message;
    if (window.PoskoKiosk) window.PoskoKiosk.emergencyOpen = true;
  }

  /* The top bar's confirmation raised the alert but the kiosk could not keep it. */
  if (new URLSearchParams(window.location.search).get("gagal")) failed("");

  var already = JSON.parse($("darurat-follow").textContent);
  if (already) window.PoskoAlert.follow(box, already);  /* e.g. the panic button's alert */

  $("call").addEventListener("click", function () {
    var btn = $("call");
    btn.disabled = true;
    if (window.PoskoKiosk) window.PoskoKiosk.emergencyOpen = true;
    fetch("/api/darurat", { method: "POST" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (!d.ok || !d.alert) { failed(d.message); return; }
        $("confirm").hidden = true;
        $("sent").hidden = false;
        window.PoskoAlert.follow(box, d.alert);
      })
      .catch(function () { failed(""); });
  });
})();
