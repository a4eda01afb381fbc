// The phone's emergency: an alert on `alert/{member}` (posko.messages.Alert, source
// phone_emergency) with the selected talk group and, when the member allows it, the phone's
// location; it is kept in localStorage and sent again until the hub's receipt
// (`alert/{member}/ack`, stage "received") comes, then the officer's ("taken"). Until the
// officer's, the phone's newer positions go on `alert/{member}/location` (`Tracker` throttles).
// The member may call a received alert off (`alert/{member}/cancel`, receipt stage "cancelled").
// `AlertQueue` is the part without a browser API: it is fed times and answers.
(function (global) {
  "use strict";

  const RETRY_FIRST_MS = 3000; // no receipt yet: send again after 3, 6, 12, 24, 30, 30 … s
  const RETRY_MAX_MS = 30000;
  const KEEP = 10; // alerts kept on the phone (the newest)
  // While the emergency is open the phone's position goes to the hub when it has moved:
  // at most one every 10 s, and only 25 m or more from the last one sent.
  const TRACK_EVERY_MS = 10000;
  const TRACK_MIN_M = 25;
  // ...and never for an emergency older than 2 hours (an officer's answer that never came
  // must not leave a phone reporting where its member goes for days).
  const TRACK_MAX_MS = 2 * 3600 * 1000;

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

    // The member calls the alert off (pressed by mistake, or the danger is over): sent on
    // `alert/{member}/cancel` until the hub's receipt (stage "cancelled"), with the same
    // backoff as the alert. Only an alert the hub has can be called off: before its receipt
    // the phone cannot know whether the alert arrived (and then it would ring on).
    cancel(item, nowMs) {
      if (!item || item.cancel || (item.state !== "received" && item.state !== "taken")) return false;
      item.cancel = "sending";
      item.cancelAskedAt = nowMs;
      item.cancelTries = 0;
      item.cancelNextAt = 0;
      this.save();
      return true;
    }

    // (Not after TRACK_MAX_MS: a hub that never answers is not asked for ever.)
    cancelsDue(nowMs, online) {
      return this.items.filter((i) => i.cancel === "sending" && nowMs - i.cancelAskedAt < TRACK_MAX_MS &&
                                      (online || nowMs >= i.cancelNextAt));
    }

    cancelSent(item, nowMs) {
      item.cancelTries += 1;
      item.cancelNextAt = nowMs + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (item.cancelTries - 1));
      this.save();
    }

    // The hub's answer (posko.messages.AlertAck as parsed JSON); the item it matched or null.
    ack(ack, nowMs) {
      const item = this.items.find((i) => i.message.id === ack.alert_id);
      if (!item) return null;
      if (ack.stage === "cancelled") {
        if (item.cancel === "sending") { item.cancel = "done"; item.cancelledAt = nowMs; this.save(); }
        return item;
      }
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

  // Metres between two {lat, lon} (haversine; plenty for tens of metres).
  function distanceM(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * 6371000 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  // Which of the phone's fixes to send while the emergency is open (no browser API: fed
  // fixes and times). `last` is the position the hub has (the alert's own, or the last sent).
  class Tracker {
    constructor(last, lastAtMs, everyMs = TRACK_EVERY_MS, minM = TRACK_MIN_M) {
      this.last = last || null;
      this.lastAt = lastAtMs || 0;
      this.everyMs = everyMs;
      this.minM = minM;
      this.pending = null;
    }

    // A new fix: kept to send when it is far enough from what the hub has (the newest such
    // fix wins; a phone that came back near the last position sent has nothing to send).
    offer(fix) {
      this.pending = !this.last || distanceM(this.last, fix) >= this.minM ? fix : null;
    }

    // The fix to send now, or null (nothing new, or the last one went less than everyMs ago).
    due(nowMs) {
      return this.pending && nowMs - this.lastAt >= this.everyMs ? this.pending : null;
    }

    sent(fix, nowMs) {
      this.last = fix;
      this.lastAt = nowMs;
      this.pending = null;
    }
  }

  function fixOf(pos) {
    return { lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: pos.coords.accuracy,
             time: pos.timestamp / 1000 };
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
        resolve({ location: fixOf(pos) });
      }, (err) => {
        clearTimeout(timer);
        resolve({ no_location: err.code === 1 ? "denied" : err.code === 3 ? "timeout" : "unavailable" });
      }, { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 30000 });
    });
  }

  global.PoskoEmergency = { AlertQueue: AlertQueue, Tracker: Tracker, distanceM: distanceM, fixOf: fixOf,
                            locate: locate, newId: newId, RETRY_FIRST_MS: RETRY_FIRST_MS,
                            RETRY_MAX_MS: RETRY_MAX_MS, TRACK_EVERY_MS: TRACK_EVERY_MS,
                            TRACK_MIN_M: TRACK_MIN_M, TRACK_MAX_MS: TRACK_MAX_MS };
})(window);
