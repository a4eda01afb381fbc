// The phone's emergency: an alert on `alert/{member}` (posko.messages.Alert, source
// phone_emergency) with the selected talk group and, when the member allows it, the phone's
// location; it is kept in localStorage and sent again until the hub's receipt
// (`alert/{member}/ack`, stage "received") comes, then the officer's ("taken").
// `AlertQueue` is the part without a browser API: it is fed times and answers.
(function (global) {
  "use strict";

  const RETRY_FIRST_MS = 3000; // no receipt yet: send again after 3, 6, 12, 24, 30, 30 … s
  const RETRY_MAX_MS = 30000;
  const KEEP = 10; // alerts kept on the phone (the newest)

  function newId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  class AlertQueue {
    // store: {get(): string|null, set(string)} (localStorage under one key).
    constructor(store) {
      this.store = store;
      let items = [];
      try { items = JSON.parse(store.get() || "[]"); } catch (e) { items = []; }
      this.items = Array.isArray(items) ? items : [];
    }

    save() { this.store.set(JSON.stringify(this.items.slice(-KEEP))); }

    // A new alert (the message as posko.messages.Alert's JSON fields).
    add(message) {
      const item = { message: message, state: "sending", tries: 0, sentAt: null, nextAt: 0,
                     receivedAt: null, officer: "" };
      this.items.push(item);
      this.save();
      return item;
    }

    // The alerts to publish now: not yet received by the hub and due (`online` = the link
    // just came back: everything waiting goes at once).
    due(nowMs, online) {
      return this.items.filter((i) => i.state === "sending" && (online || nowMs >= i.nextAt));
    }

    // Handed to the broker at nowMs: the next try waits longer (no receipt by then).
    sent(item, nowMs) {
      item.tries += 1;
      item.sentAt = nowMs;
      item.nextAt = nowMs + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (item.tries - 1));
      this.save();
    }

    // The hub's answer (posko.messages.AlertAck as parsed JSON); the item it matched or null.
    ack(ack, nowMs) {
      const item = this.items.find((i) => i.message.id === ack.alert_id);
      if (!item) return null;
      if ((ack.stage || "taken") === "taken") {
        item.state = "taken";
        item.officer = String(ack.officer || "");
        item.takenAt = nowMs;
      } else if (item.state === "sending") {
        item.state = "received";
      }
      if (!item.receivedAt) item.receivedAt = nowMs;
      this.save();
      return item;
    }

    latest() { return this.items[this.items.length - 1] || null; }
  }

  // The phone's location, if the member allows it: {location} or {no_location: why}.
  async function locate(timeoutMs) {
    if (!navigator.geolocation) return { no_location: "unsupported" };
    try {
      const perm = await navigator.permissions.query({ name: "geolocation" });
      if (perm.state === "denied") return { no_location: "denied" };
    } catch (e) { /* no Permissions API: ask */ }
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ no_location: "timeout" }), timeoutMs);
      navigator.geolocation.getCurrentPosition((pos) => {
        clearTimeout(timer);
        resolve({ location: { lat: pos.coords.latitude, lon: pos.coords.longitude,
                              accuracy_m: pos.coords.accuracy, time: pos.timestamp / 1000 } });
      }, (err) => {
        clearTimeout(timer);
        resolve({ no_location: err.code === 1 ? "denied" : err.code === 3 ? "timeout" : "unavailable" });
      }, { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 30000 });
    });
  }

  global.PoskoEmergency = { AlertQueue: AlertQueue, locate: locate, newId: newId,
                            RETRY_FIRST_MS: RETRY_FIRST_MS, RETRY_MAX_MS: RETRY_MAX_MS };
})(window);
