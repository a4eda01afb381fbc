/* Cek Laporan: ticket + PIN -> the hub's state, or offline the last known state. */
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("cek-texts").textContent);
  var $ = function (id) { return document.getElementById(id); };
  function setError(text) { $("cek-error").textContent = text || ""; $("cek-error").hidden = !text; }

  $("check").addEventListener("click", function () {
    window.PoskoKiosk.closeKeyboard();
    setError("");
    $("cek-result").hidden = true;
    var btn = $("check");
    btn.disabled = true;
    var label = btn.querySelector("span"), old = label.textContent;
    label.textContent = T.checking;
    fetch("/api/cek", { method: "POST", headers: { "Content-Type": "application/json" },
                        body: JSON.stringify({ ticket: $("ticket").value, pin: $("pin").value }) })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.offline) window.PoskoKiosk.showStatus(false);
        $("cek-offline").hidden = !d.offline;
        $("cek-offline").textContent = d.offline_message || "";
        if (!d.ok) { setError(d.message || T.error); return; }
        $("cek-last-known").hidden = !d.last_known;
        $("cek-last-known").textContent = d.last_known || "";
        $("cek-state").textContent = d.state_label || "";
        $("cek-state-note").textContent = d.state_note || "";
        $("cek-note").textContent = d.note || "–";
        $("cek-updated").textContent = d.updated || "–";
        $("cek-result").hidden = false;
      })
      .catch(function () { setError(T.error); })
      .then(function () { btn.disabled = false; label.textContent = old; });
  });
})();
