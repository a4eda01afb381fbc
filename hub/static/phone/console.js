// The dispatcher's console: the browser talk-group client with command priority in every group.
(function () {
  "use strict";
  const table = document.getElementById("console");
  if (!table) return;
  const W = JSON.parse(table.dataset.words);
  const rows = Array.from(table.querySelectorAll("tbody tr[data-group]"));
  const groups = rows.map((r) => r.dataset.group);
  const conn = document.getElementById("console-conn");
  if (!groups.length) return;
  const d = table.dataset;
  const client = new PoskoPtt.PttClient({ url: d.broker, username: d.unit, password: d.password || undefined,
                                          unit: d.unit, groups: groups, root: d.root, priority: "command",
                                          workletUrl: d.worklet });
  window.poskoPtt = client;
  const row = (g) => rows.find((r) => r.dataset.group === g);
  client.on("state", (s) => { conn.dataset.state = s; conn.textContent = W[s] || s; });
  client.on("floor", (g, st) => {
    const r = row(g);
    if (!r) return;
    const cell = r.querySelector(".talker");
    const p = W.priority[st.priority];
    if (st.holder) {
      cell.textContent = `${st.holder === d.unit ? W.you : `${W.talking} ${st.holder}`}${p ? ` (${p})` : ""}`;
      cell.dataset.talking = "1";
    } else { cell.textContent = W.free; cell.dataset.talking = "0"; }
    r.dataset.priority = st.holder ? st.priority : "";
    // Emergency calls first: a group with an emergency talker moves to the top.
    const body = r.parentNode;
    const order = rows.slice().sort((a, b) => (b.dataset.priority === "emergency") - (a.dataset.priority === "emergency"));
    order.forEach((x) => body.appendChild(x));
  });
  let talkButton = null;
  client.on("tx", (s) => {
    if (!talkButton) return;
    talkButton.dataset.state = s;
    talkButton.textContent = s === "talking" ? W.you : (W[s] && s !== "idle" ? W[s] : W.hold);
  });
  client.on("replay", (g, list) => {
    const r = row(g);
    if (r) r.querySelector(".replay-info").textContent = `${list.length} · ${list[list.length - 1].unit}`;
  });
  for (const r of rows) {
    const g = r.dataset.group;
    const b = r.querySelector(".talk");
    b.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      if (client.tx) return;
      talkButton = b;
      client.group = g;
      client.press("command");
    });
    const up = (ev) => { ev.preventDefault(); if (talkButton === b) client.release(); };
    b.addEventListener("pointerup", up);
    b.addEventListener("pointercancel", up);
    r.querySelector(".mute").addEventListener("change", (ev) => {
      if (ev.target.checked) client.muted.add(g); else client.muted.delete(g);
    });
    r.querySelector(".solo").addEventListener("change", (ev) => {
      rows.forEach((x) => { if (x !== r) x.querySelector(".solo").checked = false; });
      client.solo = ev.target.checked ? g : null;
    });
    r.querySelector(".replay").addEventListener("click", () => client.playReplay(g, 0));
  }
  // The speaker opens with the app, not at the first spurt heard: opening the output device
  // took ~300 ms in Chromium here, which the first frames of a spurt joined in progress
  // would wait for. Without a user gesture a browser keeps it suspended: any touch resumes it.
  client.ensureAudio();
  document.addEventListener("pointerdown", () => client.ensureAudio(), { passive: true });
  client.connect();
})();
