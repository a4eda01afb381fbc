// The session's end, seen from an open page: 15 minutes before it (12 hours after the login,
// `hub.session_hours`) a band asks for the password, and the officer carries on where they
// are, with the dashboard, its alerts and any typed text kept. The time left is counted from
// the hub's answer on this page's monotonic clock (a wrong clock in the browser does not
// matter) and re-read every minute (another tab may have extended it).
(function () {
  "use strict";
  var box = document.getElementById("session-ending");
  var left = parseInt(document.body.dataset.sessionLeft, 10);
  if (!box || isNaN(left)) return;
  var warn = parseInt(document.body.dataset.sessionWarn, 10) || 900;
  var deadline = performance.now() + left * 1000;
  var form = box.querySelector("form");
  var input = form.querySelector("input[name=password]");
  var problem = box.querySelector(".session-problem");
  var count = box.querySelector(".session-left");
  var button = form.querySelector("button");

  function csrf() { return document.querySelector('meta[name="csrf-token"]').content; }
  function remaining() { return Math.max(0, Math.round((deadline - performance.now()) / 1000)); }
  function setLeft(seconds) { deadline = performance.now() + seconds * 1000; show(); }

  function show() {
    var s = remaining();
    box.dataset.left = String(s);
    if (s <= warn) {
      if (box.hidden) { box.hidden = false; }
      count.textContent = s >= 60 ? Math.ceil(s / 60) + " menit" : s + " detik";
    } else if (!box.hidden) {
      box.hidden = true;
      problem.hidden = true;
    }
    if (s === 0 && !window.poskoLeaving) {
      window.poskoLeaving = true;
      window.location.href = "/masuk?berakhir=1&next=" + encodeURIComponent(location.pathname + location.search);
    }
  }

  function resync() {
    fetch("/sesi", {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        var json = (r.headers.get("Content-Type") || "").indexOf("json") >= 0;
        return r.ok && json ? r.json() : null;  // a login page instead: the stream says so
      })
      .then(function (d) { if (d && typeof d.left_s === "number") setLeft(d.left_s); })
      .catch(function () { /* hub out of reach: keep counting */ });
  }

  function say(text) { problem.textContent = text; problem.hidden = false; }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = new FormData();
    body.append("password", input.value);
    button.disabled = true;
    fetch("/sesi/perpanjang", {method: "POST", body: body, credentials: "same-origin",
                               headers: {"X-CSRFToken": csrf(), "Accept": "application/json"}})
      .then(function (r) {
        return r.json().then(function (d) { return {ok: r.ok, d: d}; },
                             function () { return {ok: false, d: {message: "Sesi sudah berakhir. Muat ulang halaman untuk masuk lagi."}}; });
      })
      .then(function (res) {
        if (res.ok && typeof res.d.left_s === "number") {
          input.value = "";
          problem.hidden = true;
          setLeft(res.d.left_s);
          box.dataset.extended = "1";
        } else {
          say(res.d.message || "Sesi tidak dapat diperpanjang.");
          input.select();
        }
      })
      .catch(function () { say("Hub tidak terjangkau. Coba lagi sebentar lagi."); })
      .then(function () { button.disabled = false; });
  });

  setInterval(show, 1000);
  setInterval(resync, 60000);
  // An officer coming back to this tab sees the time another tab may have given it.
  window.addEventListener("focus", resync);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) resync(); });
  show();
})();
