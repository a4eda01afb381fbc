/* Tanya: typed questions go to the kiosk's brain; the mic asks the unit's voice assistant. */
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("tanya-texts").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var lang = window.PoskoKiosk.lang;
  var session = null;
  var alertId = null;

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  /* same markup as the KB (and kiosk_ui.assistant.render_markup): paragraphs, "- ", "1. ", **bold** */
  function markup(text) {
    var out = [], list = null, items = [];
    function flush() { if (list) out.push("<" + list + ">" + items.map(function (i) { return "<li>" + i + "</li>"; }).join("") + "</" + list + ">"); list = null; items = []; }
    String(text || "").split("\n").forEach(function (raw) {
      var line = raw.trim();
      if (!line) { flush(); return; }
      var kind = /^- /.test(line) ? "ul" : (/^\d+\.\s+/.test(line) ? "ol" : null);
      var body = kind === "ul" ? line.slice(2) : (kind === "ol" ? line.replace(/^\d+\.\s+/, "") : line);
      body = escapeHtml(body).replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>");
      if (kind) { if (list !== kind) { flush(); list = kind; } items.push(body); }
      else { flush(); out.push("<p>" + body + "</p>"); }
    });
    flush();
    return out.join("");
  }

  function showAnswer(html, extra, busy) {
    var box = $("answer");
    box.innerHTML = html + (extra || "");
    box.hidden = false;
    box.setAttribute("aria-busy", busy ? "true" : "false");  /* "thinking" is not the answer */
    var sug = $("suggested");
    if (sug) sug.hidden = true;
    $("intro").hidden = true;
  }

  function renderReply(reply, note, warn) {
    var html = reply.html || markup(reply.text);
    if (warn) html = "<p class='notice warn' data-test='warn'>" + escapeHtml(warn) + "</p>" + html;
    var extra = "";
    if (note) extra += "<p class='notice'>" + escapeHtml(note) + "</p>";
    if (reply.sources && reply.sources.length) {
      extra += "<p class='sources'>" + escapeHtml(T.sources) + ": " + reply.sources.map(escapeHtml).join("; ") + "</p>";
    }
    showAnswer(html, extra);
  }

  function showTranscript(text) {
    var tr = $("transcript");
    tr.textContent = T.you_said + " " + text;
    tr.hidden = !text;
  }

  function ask(q) {
    q = (q || "").trim();
    if (!q) { showAnswer("<p>" + escapeHtml(T.empty) + "</p>"); return; }
    window.PoskoKiosk.closeKeyboard();
    showTranscript(q);
    showAnswer("<p>" + escapeHtml(T.thinking) + "</p>", "", true);
    fetch("/api/tanya", { method: "POST", headers: { "Content-Type": "application/json" },
                          body: JSON.stringify({ q: q, lang: lang }) })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        alertId = d.alert_id || null;
        if (d.reply) renderReply(d.reply, d.note, d.warn);
        else showAnswer("<p class='notice'>" + escapeHtml(d.message || T.error) + "</p>");
      })
      .catch(function () { showAnswer("<p class='notice'>" + escapeHtml(T.error) + "</p>"); });
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
      showAnswer("<p>" + escapeHtml(T.listening) + "</p>", "", true);
    }
    fetch("/api/listen", { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify({ lang: lang, stop: stopping, session: session }) })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (!d.ok) { micState(false); session = null; showAnswer("<p class='notice'>" + escapeHtml(d.message || T.voice_unavailable) + "</p>"); return; }
        if (stopping) { micState(false); session = null; }
      })
      .catch(function () { micState(false); });
  });

  /* opened from Beranda by the physical Tanya button: follow the question the unit is hearing */
  var follow = new URLSearchParams(window.location.search).get("follow");
  if (follow && /^[A-Za-z0-9_-]{1,64}$/.test(follow)) {
    session = follow;
    micState(true);
    showAnswer("<p>" + escapeHtml(T.listening) + "</p>", "", true);
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
      if (ev.type === "listening") showAnswer("<p>" + escapeHtml(T.listening) + "</p>", "", true);
      else if (ev.type === "partial" || ev.type === "transcript") showTranscript(ev.text);
      else if (ev.type === "answer") renderReply(ev.reply || {}, ev.reply && ev.reply.action === "escalate" ? T.escalated : "");
      else if (ev.type === "error") { micState(false); showAnswer("<p class='notice'>" + escapeHtml(ev.text || T.error) + "</p>"); }
      if (ev.type === "done" || ev.type === "error" || ev.type === "answer") micState(false);
    });
    es.addEventListener("ack", function (e) {
      var d = JSON.parse(e.data);
      if (!alertId || d.alert_id !== alertId) return;
      alertId = null;
      var p = document.createElement("p");
      p.className = "notice acked";
      p.dataset.test = "acked";
      p.textContent = T.acked;
      $("answer").appendChild(p);
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }
})();
