// The queue on a night shift: ages and overdue marks that keep moving, and the keys
// j/k (next/previous report), Enter (open it), v (mark it verified), / (search).
(function () {
  "use strict";
  var table = document.getElementById("report-table");
  var rows = document.getElementById("report-rows");
  if (!table || !rows) return;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var words = JSON.parse(table.dataset.words || "{}");
  // The hub's clock, not the browser's: ages are counted from the server's "now".
  var skew = Number(table.dataset.now || 0) ? Number(table.dataset.now) - Date.now() / 1000 : 0;
  function now() { return Date.now() / 1000 + skew; }

  function ageText(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return words.now;
    if (s < 3600) return Math.floor(s / 60) + " " + words.min;
    if (s < 86400) {
      var m = Math.floor(s % 3600 / 60);
      return Math.floor(s / 3600) + " " + words.hour + " " + (m < 10 ? "0" : "") + m + " " + words.min;
    }
    return Math.floor(s / 86400) + " " + words.day + " " + Math.floor(s % 86400 / 3600) + " " + words.hour;
  }

  function tick() {
    var t = now();
    rows.querySelectorAll("tr[data-report-id]").forEach(function (tr) {
      var text = tr.querySelector(".age-text");
      if (text) text.textContent = ageText(t - Number(tr.dataset.received));
      var mark = tr.querySelector(".overdue-mark");
      if (mark && tr.dataset.overdueAt) {
        var late = t >= Number(tr.dataset.overdueAt);
        mark.hidden = !late;
        tr.classList.toggle("overdue", late);
      }
    });
  }
  setInterval(tick, 5000);

  // --- keyboard -------------------------------------------------------------------------
  function all() { return Array.prototype.slice.call(rows.querySelectorAll("tr[data-report-id]")); }
  function current() { return rows.querySelector("tr.selected"); }
  function select(tr) {
    var old = current();
    if (old) { old.classList.remove("selected"); old.removeAttribute("aria-selected"); }
    if (!tr) return;
    tr.classList.add("selected");
    tr.setAttribute("aria-selected", "true");
    tr.scrollIntoView({block: "nearest"});
    document.body.dataset.selected = tr.dataset.reportId;
  }
  function move(step) {
    var list = all();
    if (!list.length) return;
    var i = list.indexOf(current());
    select(list[i < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + step))]);
  }
  function say(text) {
    var box = document.getElementById("toasts");
    var t = document.createElement("div");
    t.className = "toast";
    t.textContent = text;
    box.appendChild(t);
    setTimeout(function () { t.remove(); }, 6000);
  }
  function verify(tr) {
    if (!tr) { say("Pilih laporan dulu dengan j atau k."); return; }
    var body = new URLSearchParams({state: "diverifikasi"});
    fetch(tr.dataset.verifyUrl, {
      method: "POST", credentials: "same-origin", body: body,
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"}
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (!answer.ok) { say(answer.message); return; }
      var badge = tr.querySelector(".state");
      badge.className = "state state-" + answer.state;
      badge.textContent = answer.state_label;
      tr.dataset.state = answer.state;
      say(tr.querySelector("td.mono a").textContent + ": " + answer.message);
    }).catch(function () { say("Gagal mengubah status; coba lagi."); });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.target.isContentEditable) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "Enter" && (tag === "a" || tag === "button")) return;  // the focused link wins
    if (e.key === "j") { move(1); e.preventDefault(); }
    else if (e.key === "k") { move(-1); e.preventDefault(); }
    else if (e.key === "Enter" && current()) { current().querySelector("td.mono a").click(); e.preventDefault(); }
    else if (e.key === "v") { verify(current()); e.preventDefault(); }
    else if (e.key === "/") { document.getElementById("search").focus(); e.preventDefault(); }
  });
  rows.addEventListener("click", function (e) {
    var tr = e.target.closest("tr[data-report-id]");
    if (tr && e.target.tagName !== "A") select(tr);
  });
})();
