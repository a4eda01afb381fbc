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
      workletUrl: body.dataset.worklet, subscribe: [`alert/${cfg.unit}/ack`],
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
      const emergency = client.tx && client.tx.priority === "emergency";
      ptt.dataset.state = s === "talking" && emergency ? "emergency" : s;
      ptt.dataset.mode = s === "talking" ? why || "arbiter" : "";
      if (s === "talking") ptt.textContent = emergency ? W.sos.talking : why === "lbt" ? W.lbttalk : W.release;
      else if (s === "requesting") ptt.textContent = W.requesting;
      else if (s === "listening") ptt.textContent = W.listening;
      else if (W[s]) {
        ptt.textContent = s === "busy" && why === "lbt" ? W.lbtbusy : W[s];
        setTimeout(() => { if (!client.tx) { ptt.textContent = W.press; ptt.dataset.state = "idle"; } }, 2500);
      } else ptt.textContent = W.press;
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
    // being cancelled (a call comes in) releases. An emergency call needs no holding: a tap
    // on the button ends it.
    const down = (ev) => {
      ev.preventDefault();
      if (client.tx && client.tx.priority === "emergency") { client.release(); return; }
      ptt.setPointerCapture && ptt.setPointerCapture(ev.pointerId);
      client.press();
    };
    const up = (ev) => { ev.preventDefault(); if (!(client.tx && client.tx.priority === "emergency")) client.release(); };
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
    emergency(cfg, client, sel);
    // The speaker opens with the app, not at the first spurt heard: opening the output device
    // took ~300 ms in Chromium here, which the first frames of a spurt joined in progress
    // would wait for. Without a user gesture a browser keeps it suspended: any touch resumes it.
    client.ensureAudio();
    document.addEventListener("pointerdown", () => client.ensureAudio(), { passive: true });
    client.connect();
  }

  // --- the emergency button -----------------------------------------------------------
  function emergency(cfg, client, sel) {
    const S = W.sos;
    const E = window.PoskoEmergency;
    const queue = new E.AlertQueue({ get: () => localStorage.getItem(`${KEY}-darurat`),
                                     set: (v) => localStorage.setItem(`${KEY}-darurat`, v) });
    window.poskoAlerts = queue; // for the tests' probes
    const box = $("sos-status");
    const confirmBox = $("sos-confirm");
    const clock = (ms) => new Date(ms).toLocaleTimeString("id-ID", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    let locating = false;

    function show() {
      const item = queue.latest();
      if (!item && !locating) { box.hidden = true; return; }
      box.hidden = false;
      let state = locating ? "locating" : item.state;
      if (state === "sending" && !client.online) state = "queued";
      if (!locating && item.cancel) state = item.cancel === "done" ? "cancelled" : "cancelling";
      const moved = box.dataset.state !== state;
      box.dataset.state = state;
      $("sos-text").textContent =
        state === "received" ? S.received.replace("{time}", clock(item.receivedAt))
        : state === "taken" ? S.taken.replace("{officer}", item.officer || "").replace("{time}", clock(item.takenAt))
        : state === "cancelled" ? S.cancelled.replace("{time}", clock(item.cancelledAt))
        : S[state];
      // Calling it off: once the hub has it, within the tracking's 2 hours, two taps.
      const off = $("sos-off");
      const canCancel = !locating && !item.cancel && (item.state === "received" || item.state === "taken") &&
        Date.now() - item.message.time * 1000 < E.TRACK_MAX_MS;
      off.hidden = !canCancel;
      if (!canCancel) disarm();
      const m = item && !locating ? item.message : null;
      $("sos-where").textContent = !m ? "" : item.tracked
        ? S.tracked.replace("{time}", clock(item.tracked.sentAt)).replace("{m}", Math.round(item.tracked.fix.accuracy_m))
        : m.location ? S.located.replace("{m}", Math.round(m.location.accuracy_m)) : S[m.no_location] || "";
      if (moved) box.scrollIntoView({ block: "nearest" });
    }

    function flush(online) {
      track();
      if (!client.online) { show(); return; }
      const now = Date.now();
      for (const item of queue.due(now, online)) {
        queue.sent(item, now);
        client.publish(`alert/${cfg.unit}`, JSON.stringify(item.message), 1).catch(() => {});
      }
      for (const item of queue.cancelsDue(now, online)) {
        queue.cancelSent(item, now);
        client.publish(`alert/${cfg.unit}/cancel`,
                       JSON.stringify({ alert_id: item.message.id, unit: cfg.unit, time: now / 1000 }), 1).catch(() => {});
      }
      sendTrack(now);
      show();
    }

    // The call-off takes two taps: the first arms the button for 5 s.
    const off = $("sos-off");
    function disarm() { clearTimeout(off.timer); delete off.dataset.armed; off.textContent = S.off; }
    off.addEventListener("click", () => {
      if (!off.dataset.armed) {
        off.dataset.armed = "1";
        off.textContent = S.offsure;
        off.timer = setTimeout(disarm, 5000);
        return;
      }
      disarm();
      if (!queue.cancel(queue.latest(), Date.now())) return;
      // An emergency call still holding the group's floor ends with it.
      if (client.tx && client.tx.priority === "emergency") client.release();
      track();
      flush(true);
    });

    // While the newest emergency is open (not yet taken by an officer) the phone watches its
    // position; a fix far enough from the last one the hub has goes on
    // `alert/{member}/location`, once the hub has the alert itself (its receipt).
    let watchId = null;
    let tracker = null;
    const tracking = { item: null }; // for the tests' probes: window.poskoTrack
    window.poskoTrack = tracking;
    function track() {
      const item = queue.latest();
      const open = item && item.state !== "taken" && !item.cancel && Date.now() - item.message.time * 1000 < E.TRACK_MAX_MS;
      if (open && navigator.geolocation && tracking.item !== item.message.id) {
        // This emergency's position is what the hub has: the alert's own, or the last sent.
        const had = item.tracked ? item.tracked.fix : item.message.location;
        tracker = new E.Tracker(had, item.tracked ? item.tracked.sentAt : item.message.time * 1000);
        tracking.item = item.message.id;
        if (watchId === null) {
          watchId = navigator.geolocation.watchPosition(
            (pos) => { if (tracker) { tracker.offer(E.fixOf(pos)); sendTrack(Date.now()); } },
            () => {}, { enableHighAccuracy: true, maximumAge: 5000 });
        }
      } else if (!open && watchId !== null) {
        navigator.geolocation.clearWatch(watchId);
        watchId = null;
        tracker = null;
        tracking.item = null;
      }
    }

    function sendTrack(now) {
      const item = queue.latest();
      if (!tracker || !item || item.state !== "received" || item.cancel || !client.online) return;
      const fix = tracker.due(now);
      if (!fix) return;
      tracker.sent(fix, now);
      item.tracked = { fix: fix, sentAt: now };
      queue.save();
      client.publish(`alert/${cfg.unit}/location`,
                     JSON.stringify({ alert_id: item.message.id, unit: cfg.unit, location: fix }), 1).catch(() => {});
      show();
    }

    async function raise() {
      confirmBox.hidden = true;
      clearTimeout(confirmBox.timer);
      const group = sel.value || client.group;
      // The floor first (the mic opens at once), the location meanwhile.
      client.group = group;
      if (client.tx) client.release();
      client.press("emergency");
      locating = true;
      show();
      const where = await E.locate(6000);
      locating = false;
      const message = { id: E.newId(), unit: cfg.unit, posko: cfg.name || "", source: "phone_emergency",
                        text: "", time: Date.now() / 1000, group: group };
      if (where.location) message.location = where.location;
      else message.no_location = where.no_location;
      queue.add(message);
      flush(false);
    }

    $("sos").addEventListener("click", () => {
      confirmBox.hidden = false;
      // An accidental tap closes by itself.
      confirmBox.timer = setTimeout(() => { confirmBox.hidden = true; }, 15000);
    });
    $("sos-cancel").addEventListener("click", () => { confirmBox.hidden = true; clearTimeout(confirmBox.timer); });
    $("sos-yes").addEventListener("click", raise);
    client.on("message", (topic, payload) => {
      if (topic !== `alert/${cfg.unit}/ack`) return;
      let ack;
      try { ack = JSON.parse(new TextDecoder().decode(payload)); } catch (e) { return; }
      if (ack && typeof ack.alert_id === "string" && queue.ack(ack, Date.now())) { track(); show(); }
    });
    client.on("state", (s) => { if (s === "online") flush(true); else show(); });
    setInterval(() => flush(false), 1000);
    show();
  }

  main();
})();
