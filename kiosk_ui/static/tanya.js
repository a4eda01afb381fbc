/* Tanya: typed questions go to the kiosk's brain; the mic asks the unit's voice assistant.
   Answers are built as DOM nodes from the reply's data (text nodes only): a reply that
   arrives over MQTT can carry no markup or script onto this screen. */
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("tanya-texts").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var lang = window.PoskoKiosk.lang;
  var session = null;
  var voiceEscalatedAt = 0;
  var lastUnitAlert = null;  /* {alert, at}: the unit's own escalation alert, seen on the broker */

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  /* one line of KB markup: plain text with **bold** parts, as text nodes and <strong> */
  function inline(parent, line) {
    String(line).split(/\*\*(.+?)\*\*/).forEach(function (part, i) {
      if (!part) return;
      parent.appendChild(i % 2 ? el("strong", "", part) : document.createTextNode(part));
    });
    return parent;
  }

  /* KB markup (as kiosk_ui.assistant.render_markup): paragraphs, "- " bullets, "1. " steps */
  function markup(text) {
    var frag = document.createDocumentFragment();
    var list = null;
    String(text || "").split("\n").forEach(function (raw) {
      var line = raw.trim();
      if (!line) { list = null; return; }
      var kind = /^- /.test(line) ? "UL" : (/^\d+\.\s+/.test(line) ? "OL" : null);
      if (kind) {
        if (!list || list.tagName !== kind) { list = el(kind.toLowerCase()); frag.appendChild(list); }
        list.appendChild(inline(el("li"), kind === "UL" ? line.slice(2) : line.replace(/^\d+\.\s+/, "")));
      } else {
        list = null;
        frag.appendChild(inline(el("p"), line));
      }
    });
    return frag;
  }

  function showNodes(nodes, busy) {
    var box = $("answer");
    /* the emergency parts live in the page: park them before the box is emptied */
    var keep = $("emergency-parts");
    [$("alert-state"), $("tanya-numbers")].forEach(function (n) {
      if (nodes.indexOf(n) < 0 && box.contains(n)) { n.hidden = true; keep.appendChild(n); }
    });
    box.textContent = "";
    nodes.forEach(function (n) { if (n) box.appendChild(n); });
    box.hidden = false;
    box.setAttribute("aria-busy", busy ? "true" : "false");  /* "thinking" is not the answer */
    var sug = $("suggested");
    if (sug) sug.hidden = true;
    $("intro").hidden = true;
  }
  function showText(text, cls, busy) { showNodes([el("p", cls || "", text)], busy); }

  /* tappable suggestions: tapping one asks it */
  function suggestions(reply) {
    var list = (reply.suggestions || []).filter(function (s) { return s && s.title; });
    if (!list.length || reply.action === "escalate") return null;
    var wrap = el("div", "suggest-box");
    wrap.dataset.test = "suggestions";
    wrap.appendChild(el("h2", "", reply.action === "fallback" ? T.related : T.see_also));
    var row = el("div", "suggest-list");
    list.forEach(function (s) {
      var b = el("button", "btn suggest", s.title);
      b.type = "button";
      b.dataset.test = "suggestion";
      b.addEventListener("click", function () { $("question").value = s.title; ask(s.title); });
      row.appendChild(b);
    });
    wrap.appendChild(row);
    return wrap;
  }

  /* an emergency reply: the alert's true state first, the numbers, then the advice */
  function emergencyNodes(alert) {
    var state = $("alert-state");
    var numbers = $("tanya-numbers");
    state.hidden = false;
    numbers.hidden = false;
    if (alert) window.PoskoAlert.follow(state, alert);
    else { state.dataset.state = "not_sent"; window.PoskoKiosk.emergencyOpen = true; }
    return [state, numbers];
  }

  function renderReply(reply, alert) {
    reply = reply || {};
    var nodes = [];
    if (reply.action === "escalate") nodes = emergencyNodes(alert);
    var body = el("div", "answer-text");
    body.appendChild(markup(reply.text));
    nodes.push(body);
    nodes.push(suggestions(reply));
    if (reply.sources && reply.sources.length) {
      nodes.push(el("p", "sources", T.sources + ": " + reply.sources.join("; ")));
    }
    /* an emergency not yet acknowledged stays on top of every later answer */
    if (reply.action !== "escalate" && window.PoskoKiosk.emergencyOpen) {
      $("alert-state").hidden = false;
      nodes.unshift($("alert-state"));
    }
    showNodes(nodes);
  }

  function showTranscript(text) {
    var tr = $("transcript");
    tr.textContent = T.you_said + " " + text;
    tr.hidden = !text;
  }

  function ask(q) {
    q = (q || "").trim();
    if (!q) { showText(T.empty); return; }
    window.PoskoKiosk.closeKeyboard();
    showTranscript(q);
    showText(T.thinking, "", true);
    fetch("/api/tanya", { method: "POST", headers: { "Content-Type": "application/json" },
                          body: JSON.stringify({ q: q, lang: lang }) })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.reply) renderReply(d.reply, d.alert);
        else showText(d.message || T.error, "notice");
      })
      .catch(function () { showText(T.error, "notice"); });
  }

  $("ask").addEventListener("click", function () { ask($("question").value); });
  $("question").addEventListener("keydown", function (e) { if (e.key === "Enter") ask($("question").value); });
  document.querySelectorAll(".suggest").forEach(function (b) {
    b.addEventListener("click", function () { $("question").value = b.dataset.q; ask(b.dataset.q); });
  });

  /* voice: publish `listen`, then follow this session's assistant events */
  var mic = $("mic");
  function micState(on) {
    mic.setAttribute("aria-pressed", on ? "true" : "false");
    mic.querySelector("span").textContent = on ? T.mic_stop : T.mic;
  }
  function newSession() {
    var hex = "";
    for (var i = 0; i < 32; i++) hex += Math.floor(Math.random() * 16).toString(16);
    return hex;
  }
  mic.addEventListener("click", function () {
    var stopping = mic.getAttribute("aria-pressed") === "true";
    /* the session id is made here, before the command goes out, so no early event of
       this question can arrive before the page knows it is its own */
    if (!stopping) {
      session = newSession();
      /* cleared now, not when the answer to this request arrives: the unit's first words
         may reach the page before that answer does */
      micState(true);
      showTranscript("");
      showText(T.listening, "", true);
    }
    fetch("/api/listen", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify({ lang: lang, stop: stopping, session: session }) })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (!d.ok) { micState(false); session = null; showText(d.message || T.voice_unavailable, "notice"); return; }
        if (stopping) { micState(false); session = null; }
      })
      .catch(function () { micState(false); });
  });

  /* opened from Beranda by the physical Tanya button: follow the question the unit is hearing */
  var follow = new URLSearchParams(window.location.search).get("follow");
  if (follow && /^[A-Za-z0-9_-]{1,64}$/.test(follow)) {
    session = follow;
    micState(true);
    showText(T.listening, "", true);
  }

  if (window.EventSource) {
    var es = new EventSource("/events");
    es.addEventListener("assistant", function (e) {
      var ev = JSON.parse(e.data);
      /* the physical Tanya button starts a session on the unit: follow it on screen too */
      if (ev.type === "listening" && ev.text === "button" && ev.session !== session) {
        session = ev.session;
        micState(true);
        showTranscript("");
      }
      if (!session || ev.session !== session) return;
      if (ev.type === "listening") showText(T.listening, "", true);
      else if (ev.type === "partial" || ev.type === "transcript") showTranscript(ev.text);
      else if (ev.type === "answer") {
        var reply = ev.reply || {};
        /* the unit raised this alert itself: its state follows when the kiosk sees it
           on the broker (alert_new); until then it is not known to be sent */
        var known = lastUnitAlert && Date.now() - lastUnitAlert.at < 60000 ? lastUnitAlert.alert : null;
        if (reply.action === "escalate" && !known) voiceEscalatedAt = Date.now();
        renderReply(reply, reply.action === "escalate" ? known : null);
      }
      else if (ev.type === "error") { micState(false); showText(ev.text || T.error, "notice"); }
      if (ev.type === "done" || ev.type === "error" || ev.type === "answer") micState(false);
    });
    es.addEventListener("alert_new", function (e) {
      var a = JSON.parse(e.data);
      if (a.source === "assistant") lastUnitAlert = { alert: a, at: Date.now() };
      if (a.source === "assistant" && voiceEscalatedAt && Date.now() - voiceEscalatedAt < 60000) {
        voiceEscalatedAt = 0;
        window.PoskoAlert.follow($("alert-state"), a);
      }
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }
})();
