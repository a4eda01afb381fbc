// The phone app: enrolment from the QR code's link, then one big push-to-talk button.
(function () {
  "use strict";
  const body = document.body;
  const W = JSON.parse(body.dataset.words);
  const KEY = "posko-hp";
  const $ = (id) => document.getElementById(id);

  function notice(text) {
    const n = $("notice");
    n.textContent = text || "";
    n.hidden = !text;
  }

  function setConn(state) {
    const c = $("conn");
    c.dataset.state = state;
    c.textContent = W[state] || state;
  }

  if (navigator.serviceWorker && body.dataset.sw) {
    navigator.serviceWorker.register(body.dataset.sw).catch(() => {});
  }

  async function enrol(token) {
    notice(W.enrolling);
    let res, data;
    try {
      res = await fetch(body.dataset.enrol, { method: "POST", headers: { "Content-Type": "application/json" },
                                               body: JSON.stringify({ token: token }) });
      data = await res.json();
    } catch (e) {
      notice(`${W.enrolfail} ${W.offline}`);
      return null;
    }
    if (!res.ok) { notice(`${W.enrolfail} ${data.error || res.status}`); return null; }
    localStorage.setItem(KEY, JSON.stringify(data));
    notice(`${W.enrolled} ${data.name} (${data.unit})`);
    return data;
  }

  async function main() {
    const m = /(?:^|[#&])daftar=([^&]+)/.exec(location.hash);
    let cfg = null;
    if (m) {
      history.replaceState(null, "", location.pathname); // the token leaves the address bar
      cfg = await enrol(decodeURIComponent(m[1]));
    }
    if (!cfg) {
      try { cfg = JSON.parse(localStorage.getItem(KEY) || "null"); } catch (e) { cfg = null; }
    }
    if (!cfg) { $("enrol").hidden = false; setConn("offline"); $("conn").textContent = "—"; return; }
    if (typeof AudioEncoder === "undefined" || typeof AudioDecoder === "undefined") {
      notice(W.unsupported);
    }
    start(cfg);
  }

  function start(cfg) {
    $("radio").hidden = false;
    $("me").textContent = `${cfg.name || ""} · ${cfg.unit}`;
    const sel = $("group");
    for (const g of cfg.groups) {
      const o = document.createElement("option");
      o.value = o.textContent = g;
      sel.appendChild(o);
    }
    const client = new PoskoPtt.PttClient({
      url: cfg.broker || body.dataset.broker, username: cfg.unit, password: cfg.password,
      unit: cfg.unit, groups: cfg.groups, root: cfg.root || body.dataset.root,
      workletUrl: body.dataset.worklet,
    });
    window.poskoPtt = client; // for the browser's console and the tests' probes
    const ptt = $("ptt");
    const talker = $("talker");
    const showTalker = () => {
      const st = client.floors[client.group];
      if (st && st.holder) {
        const who = st.holder === cfg.unit ? W.you : `${W.talking} ${st.holder}`;
        const p = W.priority[st.priority];
        talker.textContent = p ? `${who} (${p})` : who;
        talker.dataset.talking = "1";
      } else {
        talker.textContent = W.free;
        talker.dataset.talking = "0";
      }
    };
    client.on("state", (s) => {
      setConn(s === "online" ? "online" : "offline");
      ptt.disabled = s !== "online";
    });
    client.on("floor", showTalker);
    client.on("tx", (s, why) => {
      ptt.dataset.state = s;
      if (s === "talking") ptt.textContent = W.release;
      else if (s === "requesting") ptt.textContent = W.requesting;
      else if (W[s]) { ptt.textContent = W[s]; setTimeout(() => { if (!client.tx) { ptt.textContent = W.press; ptt.dataset.state = "idle"; } }, 1500); }
      else ptt.textContent = W.press;
      if (s === "nomic") notice(`${W.nomic}: ${why || ""}`);
    });
    client.on("replay", (g, list) => {
      if (g !== client.group) return;
      const last = list[list.length - 1];
      $("replay-info").textContent = `${last.unit} · ${new Date(last.start).toLocaleTimeString("id-ID")}`;
    });
    client.on("announce", (g, a) => {
      const el = $("announce");
      el.hidden = false;
      el.textContent = `${W.announce} [${g}] ${a.text}`;
    });
    sel.addEventListener("change", () => { client.group = sel.value; showTalker(); });
    // Hold to talk: pointer events cover touch and mouse; a pointer leaving the button or
    // being cancelled (a call comes in) releases.
    const down = (ev) => { ev.preventDefault(); ptt.setPointerCapture && ptt.setPointerCapture(ev.pointerId); client.press(); };
    const up = (ev) => { ev.preventDefault(); client.release(); };
    ptt.addEventListener("pointerdown", down);
    ptt.addEventListener("pointerup", up);
    ptt.addEventListener("pointercancel", up);
    ptt.addEventListener("contextmenu", (ev) => ev.preventDefault());
    $("replay").addEventListener("click", () => { client.playReplay(client.group, 0); });
    $("forget").addEventListener("click", () => { localStorage.removeItem(KEY); client.close(); location.reload(); });
    window.addEventListener("online", () => notice(""));
    window.addEventListener("offline", () => { setConn("offline"); ptt.disabled = true; });
    ptt.disabled = true; // until the broker accepts the login
    if (navigator.onLine === false) setConn("offline");
    client.connect();
  }

  main();
})();
