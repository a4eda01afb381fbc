/* Posko kiosk: clock, link status, idle reset and the on-screen keyboard (no libraries). */
(function () {
  "use strict";
  var body = document.body;
  var lang = body.dataset.lang || "id";

  /* clock: the kiosk's display zone (a setting, WIB by default), labelled, minutes resolution */
  var clock = document.getElementById("clock");
  function tick() {
    if (!clock) return;
    var now = new Date();
    var locale = lang === "en" ? "en-GB" : "id-ID";
    var zone = { timeZone: body.dataset.tz };
    var date, time;
    try {
      date = now.toLocaleDateString(locale, Object.assign({ weekday: window.innerWidth < 1000 ? "short" : "long", day: "numeric", month: "long" }, zone));
      time = now.toLocaleTimeString(locale, Object.assign({ hour: "2-digit", minute: "2-digit" }, zone));
    } catch (e) {  /* a zone this browser does not know: the machine's, still labelled */
      date = now.toLocaleDateString(locale, { weekday: "long", day: "numeric", month: "long" });
      time = now.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    }
    clock.textContent = date + " · " + time + " " + (body.dataset.tzLabel || "");
  }
  tick();
  setInterval(tick, 1000);

  /* online / offline indicator */
  var status = document.getElementById("link-status");
  function showStatus(online) {
    if (!status) return;
    status.dataset.state = online ? "online" : "offline";
    status.querySelector(".label").textContent = online ? body.dataset.online : body.dataset.offline;
  }
  function poll() {
    fetch("/api/status", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (s) { showStatus(!!s.online); })
      .catch(function () { /* the kiosk's own server restarting: keep the last state */ });
  }
  poll();
  setInterval(poll, 10000);
  window.PoskoKiosk = { showStatus: showStatus, lang: lang, emergencyOpen: false };

  /* forms never submit by themselves (no inline handlers: the page's CSP forbids them) */
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function (e) { e.preventDefault(); });
  });

  /* idle reset: after the configured time without a touch, ask "Masih di sini?" with a
     countdown, then back to Beranda with every field gone. Never while an emergency of this
     screen is not acknowledged (window.PoskoKiosk.emergencyOpen, set by alertstate.js). */
  var idleMs = (parseFloat(body.dataset.idleS) || 90) * 1000;
  var warnS = parseInt(body.dataset.idleWarnS, 10) || 20;
  var idleTimer = null, countTimer = null;
  var warnBox = document.getElementById("idle-warn");
  function clearAndReset() {
    document.querySelectorAll("input, textarea").forEach(function (el) {
      if (el.type === "checkbox") el.checked = false; else el.value = "";
    });
    window.location.replace("/reset");
  }
  function hideWarn() {
    if (countTimer) { clearInterval(countTimer); countTimer = null; }
    if (warnBox) warnBox.hidden = true;
  }
  function idleReset() {
    var pristine = body.dataset.screen === "home" && lang === body.dataset.defaultLang;
    if (pristine || window.PoskoKiosk.emergencyOpen) { armIdle(); return; }
    if (!warnBox) { clearAndReset(); return; }
    var left = warnS;
    var count = document.getElementById("idle-count");
    count.textContent = warnBox.dataset.body.replace("{n}", left);
    warnBox.hidden = false;
    countTimer = setInterval(function () {
      if (window.PoskoKiosk.emergencyOpen) { hideWarn(); armIdle(); return; }
      left -= 1;
      count.textContent = warnBox.dataset.body.replace("{n}", Math.max(left, 0));
      if (left <= 0) { hideWarn(); clearAndReset(); }
    }, 1000);
  }
  function armIdle() {
    hideWarn();
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(idleReset, idleMs);
  }
  ["pointerdown", "keydown", "input", "touchstart"].forEach(function (name) {
    document.addEventListener(name, armIdle, { passive: true, capture: true });
  });
  armIdle();

  /* presence: while a screen other than Beranda is open, the kiosk app hears which one (at
     load, at a touch at most every 5 s, and every 15 s), so the unit never restarts for an
     update under a resident's hands (a report half typed). Beranda says it is free again. */
  var lastPresence = 0;
  function reportPresence(force) {
    var now = Date.now();
    if (!force && now - lastPresence < 5000) return;
    lastPresence = now;
    fetch("/api/presence", { method: "POST", headers: { "Content-Type": "application/json" },
                             body: JSON.stringify({ screen: body.dataset.screen || "home" }) })
      .then(function (r) { return r.text(); })  /* read the answer, so the request ends */
      .catch(function () {});
  }
  reportPresence(true);
  if (body.dataset.screen && body.dataset.screen !== "home") {
    setInterval(function () { reportPresence(true); }, 15000);
    ["pointerdown", "keydown", "input"].forEach(function (name) {
      document.addEventListener(name, function () { reportPresence(false); }, { passive: true, capture: true });
    });
  }
  /* Darurat in the top bar (every screen but Beranda and Darurat): its confirmation opens
     over the screen, so Batal leaves a report being typed as it was; Ya raises the alert
     and opens Darurat following it (or its "not sent: call 110" when the kiosk could not
     keep it). */
  var sos = document.querySelector('[data-test="topbar-darurat"]');
  var sosBox = document.getElementById("sos-confirm");
  if (sos && sosBox) {
    var sosYes = document.getElementById("sos-yes");
    sos.addEventListener("click", function (ev) {
      ev.preventDefault();
      sosBox.hidden = false;
      sosYes.focus();
    });
    document.getElementById("sos-no").addEventListener("click", function () { sosBox.hidden = true; });
    sosYes.addEventListener("click", function () {
      sosYes.disabled = true;
      window.PoskoKiosk.emergencyOpen = true;
      fetch("/api/darurat", { method: "POST" })
        .then(function (r) { return r.json(); })
        .then(function (d) {
          if (d.ok && d.alert_id) window.location.assign("/darurat?alert=" + encodeURIComponent(d.alert_id));
          else window.location.assign("/darurat?gagal=1");
        })
        .catch(function () { window.location.assign("/darurat?gagal=1"); });
    });
  }

  /* a page restored from the back/forward cache must not show the previous person's input */
  window.addEventListener("pageshow", function (e) { if (e.persisted) window.location.replace("/reset"); });

  /* Every screen: the unit's panic button was held: show that alert's state at once.
     Beranda also follows the physical Tanya button (only Beranda: a resident halfway
     through Lapor must never lose the form to a question). */
  if (window.EventSource && !(body.dataset.screen === "darurat" && /[?&]alert=/.test(window.location.search))) {
    var pageEvents = new EventSource("/events");
    var seen = {};
    try { seen = JSON.parse(sessionStorage.getItem("posko_alerts_seen") || "{}"); } catch (e) { seen = {}; }
    pageEvents.addEventListener("alert_new", function (e) {
      var a = JSON.parse(e.data);
      if (a.source !== "panic_button" || seen[a.alert_id]) return;
      if (Date.now() / 1000 - a.created > 120) return;  /* an old replayed event */
      seen[a.alert_id] = 1;
      try { sessionStorage.setItem("posko_alerts_seen", JSON.stringify(seen)); } catch (e2) { /* private mode */ }
      pageEvents.close();
      window.location.assign("/darurat?alert=" + encodeURIComponent(a.alert_id));
    });
    if (body.dataset.screen === "home") {
      pageEvents.addEventListener("assistant", function (e) {
        var ev = JSON.parse(e.data);
        if (ev.type === "listening" && ev.text === "button" && ev.session) {
          pageEvents.close();
          window.location.assign("/tanya?follow=" + encodeURIComponent(ev.session));
        }
      });
    }
    window.addEventListener("pagehide", function () { pageEvents.close(); });
  }

  /* on-screen keyboard */
  var osk = document.getElementById("osk");
  var target = null;
  var page = "letters";
  var shift = false;
  var LAYOUTS = {
    letters: ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"],
    symbols: ["1234567890", "-/:;()+&@\"", ".,?!'#%*_=", "[]{}<>|~"],
    ticket: ["23456789", "ABCDEFGHJK", "MNPQRSTUV", "WXYZ"],
    digits: ["123", "456", "789", "0"]
  };

  function key(label, cls, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "osk-key" + (cls ? " " + cls : "");
    b.textContent = label;
    b.dataset.key = action;
    return b;
  }

  function render() {
    if (!osk || !target) return;
    var mode = target.dataset.osk;
    osk.innerHTML = "";
    var layout;
    if (mode === "pin" || mode === "tel") layout = LAYOUTS.digits;
    else if (mode === "ticket") layout = LAYOUTS.ticket;
    else layout = LAYOUTS[page];
    layout.forEach(function (row, i) {
      var r = document.createElement("div");
      r.className = "osk-row";
      if (mode === "text" && i === 3 && page === "letters") {
        r.appendChild(key("⇧", "wide" + (shift ? " on" : ""), "shift"));
      }
      row.split("").forEach(function (ch) {
        var shown = (mode === "text" && shift) ? ch.toUpperCase() : ch;
        r.appendChild(key(shown, "", "char:" + shown));
      });
      if (i === layout.length - 1) {
        if (mode === "tel") r.appendChild(key("+", "", "char:+"));
        r.appendChild(key("⌫ " + osk.dataset.backspace, "wide", "backspace"));
      }
      osk.appendChild(r);
    });
    var last = document.createElement("div");
    last.className = "osk-row";
    if (mode === "text") {
      last.appendChild(key(page === "letters" ? osk.dataset.numbers : osk.dataset.letters, "wide", "page"));
      last.appendChild(key(",", "", "char:,"));
      last.appendChild(key(osk.dataset.space, "space", "char: "));
      last.appendChild(key(".", "", "char:."));
    } else if (mode === "ticket") {
      last.appendChild(key("-", "", "char:-"));
    }
    last.appendChild(key(osk.dataset.done, "done wide", "done"));
    osk.appendChild(last);
  }

  function insert(text) {
    if (!target) return;
    var max = target.maxLength > 0 ? target.maxLength : Infinity;
    var start = target.selectionStart, end = target.selectionEnd;
    if (start === null || start === undefined) { start = end = target.value.length; }
    if (target.value.length - (end - start) + text.length > max) return;
    target.setRangeText(text, start, end, "end");
    target.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function backspace() {
    if (!target) return;
    var start = target.selectionStart, end = target.selectionEnd;
    if (start === null || start === undefined) { start = end = target.value.length; }
    if (start === end && start > 0) start -= 1;
    target.setRangeText("", start, end, "end");
    target.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function open(el) {
    target = el;
    page = "letters";
    shift = false;
    render();
    osk.hidden = false;
    body.classList.add("osk-open");
    body.style.setProperty("--osk-h", osk.offsetHeight + "px");
    setTimeout(keepVisible, 0);
  }

  /* The focused field stays between the top bar and the keyboard: scrollIntoView alone
     knows neither the sticky top bar nor the fixed keyboard. */
  function keepVisible() {
    if (!target || osk.hidden) return;
    var r = target.getBoundingClientRect();
    var bar = document.querySelector(".topbar");
    var top = (bar ? bar.getBoundingClientRect().bottom : 0) + 6;
    var bottom = osk.getBoundingClientRect().top - 6;
    if (r.bottom > bottom) window.scrollBy(0, Math.min(r.bottom - bottom, r.top - top));
    else if (r.top < top) window.scrollBy(0, r.top - top);
  }
  window.addEventListener("resize", keepVisible);

  function close() {
    if (!osk) return;
    osk.hidden = true;
    body.classList.remove("osk-open");
    body.style.setProperty("--osk-h", "0px");
    if (target) target.blur();
    target = null;
  }
  window.PoskoKiosk.closeKeyboard = close;

  if (osk) {
    /* keep the focus (and the caret) in the field while keys are pressed */
    osk.addEventListener("mousedown", function (e) { e.preventDefault(); });
    osk.addEventListener("click", function (e) {
      var b = e.target.closest(".osk-key");
      if (!b || !target) return;
      var action = b.dataset.key;
      if (action.indexOf("char:") === 0) {
        insert(action.slice(5));
        if (shift) { shift = false; render(); }
      } else if (action === "backspace") backspace();
      else if (action === "shift") { shift = !shift; render(); }
      else if (action === "page") { page = page === "letters" ? "symbols" : "letters"; render(); }
      else if (action === "done") { close(); return; }
      target.focus();
    });
    document.addEventListener("focusin", function (e) {
      var el = e.target;
      if (el.dataset && el.dataset.osk && el !== target) open(el);
    });
    /* A tap elsewhere closes the keyboard, but only after that tap's own click has run:
       closing on focus would shift the layout under the finger and lose the click. */
    document.addEventListener("click", function (e) {
      if (!target || osk.contains(e.target) || (e.target.dataset && e.target.dataset.osk)) return;
      setTimeout(function () {
        if (target && document.activeElement !== target) close();
      }, 0);
    });
  }
})();
