/* Posko kiosk: clock, link status, idle reset and the on-screen keyboard (no libraries). */
(function () {
  "use strict";
  var body = document.body;
  var lang = body.dataset.lang || "id";

  /* clock: the kiosk's own time, minutes resolution */
  var clock = document.getElementById("clock");
  function tick() {
    if (!clock) return;
    var now = new Date();
    var locale = lang === "en" ? "en-GB" : "id-ID";
    var date = now.toLocaleDateString(locale, { weekday: "long", day: "numeric", month: "long" });
    var time = now.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
    clock.textContent = date + " · " + time;
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
  window.PoskoKiosk = { showStatus: showStatus, lang: lang };

  /* idle reset: after the configured time without a touch, back to Beranda, all fields gone */
  var idleMs = (parseFloat(body.dataset.idleS) || 90) * 1000;
  var idleTimer = null;
  function idleReset() {
    var pristine = body.dataset.screen === "home" && lang === body.dataset.defaultLang;
    if (pristine) { armIdle(); return; }
    document.querySelectorAll("input, textarea").forEach(function (el) {
      if (el.type === "checkbox") el.checked = false; else el.value = "";
    });
    window.location.replace("/reset");
  }
  function armIdle() {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(idleReset, idleMs);
  }
  ["pointerdown", "keydown", "input", "touchstart"].forEach(function (name) {
    document.addEventListener(name, armIdle, { passive: true, capture: true });
  });
  armIdle();
  /* a page restored from the back/forward cache must not show the previous person's input */
  window.addEventListener("pageshow", function (e) { if (e.persisted) window.location.replace("/reset"); });

  /* Beranda: the physical Tanya button was pressed: open Tanya and follow that question.
     (Only from Beranda: a resident halfway through Lapor must never lose the form.) */
  if (body.dataset.screen === "home" && window.EventSource) {
    var homeEvents = new EventSource("/events");
    homeEvents.addEventListener("assistant", function (e) {
      var ev = JSON.parse(e.data);
      if (ev.type === "listening" && ev.text === "button" && ev.session) {
        homeEvents.close();
        window.location.assign("/tanya?follow=" + encodeURIComponent(ev.session));
      }
    });
    window.addEventListener("pagehide", function () { homeEvents.close(); });
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
    setTimeout(function () { el.scrollIntoView({ block: "nearest" }); }, 0);
  }

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
