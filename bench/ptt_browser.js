// The browser bench's probe (bench/ptt_browser.py): loaded before mqtt.js and the phone's
// talk-group client (hub/static/phone/ptt.js), which it does not change. It notes, on the
// page's clock (performance.now(), ms since performance.timeOrigin):
//   * mouth: when each 20 ms microphone frame reaches the page from the audio thread (the
//     AudioWorklet's message), keyed by the spurt and the frame's index in it;
//   * ear: when each received frame leaves the speaker, from the audio-clock time the client
//     scheduled it at (its "frame" event) mapped through AudioContext.getOutputTimestamp(),
//     which says when a given audio-clock time is heard at the output device;
//   * the press, the grant and the go-ahead tone leaving the speaker; a client's joining.
(function () {
  "use strict";
  const B = (window.bench = { captures: [], outs: [], rx: [], presses: [], joins: [], clients: {},
                              fallback: 0, captureLatency: null, errors: [] });
  const arrivals = new WeakMap(); // microphone frame (Float32Array) -> arrival on the page

  // The client sets `node.port.onmessage`; wrap the handler it sets to note each arrival.
  const NativeNode = window.AudioWorkletNode;
  const onmessage = Object.getOwnPropertyDescriptor(MessagePort.prototype, "onmessage");
  window.AudioWorkletNode = class extends NativeNode {
    constructor(...args) {
      super(...args);
      const port = this.port;
      let user = null;
      Object.defineProperty(port, "onmessage", {
        configurable: true,
        get() { return user; },
        set(fn) {
          user = fn;
          onmessage.set.call(port, fn ? (ev) => { arrivals.set(ev.data, performance.now()); fn.call(port, ev); } : null);
        },
      });
    }
  };

  // The client wraps each frame in an AudioData for its encoder: the frame's index in the
  // spurt is its timestamp / 20 ms, and frame n goes out with sequence number n.
  const NativeData = window.AudioData;
  window.AudioData = class extends NativeData {
    constructor(init) {
      super(init);
      const t = init && init.data ? arrivals.get(init.data) : undefined;
      const c = B.talking;
      if (t !== undefined && c && c.tx) {
        B.captures.push({ spurt: c.tx.spurt, n: Math.round((init.timestamp * 50) / 1e6), t: t });
        if (B.captureLatency === null && c.tx.stream) {
          const s = c.tx.stream.getAudioTracks()[0].getSettings();
          B.captureLatency = typeof s.latency === "number" ? s.latency : 0;
        }
      }
    }
  };

  // When audio-clock time `at` (s) is heard, on the page's clock (ms).
  function heardAt(ctx, at) {
    const ts = ctx.getOutputTimestamp();
    if (!ts.performanceTime) { // output not started yet: now + what is queued + output latency
      B.fallback += 1;
      return performance.now() + (at - ctx.currentTime + (ctx.outputLatency || 0)) * 1000;
    }
    return ts.performanceTime + (at - ts.contextTime) * 1000;
  }

  B.make = function (key, unit, url, group, root, workletUrl, audioNow) {
    const c = new PoskoPtt.PttClient({ url: url, username: unit, password: "", unit: unit, groups: [group],
                                       root: root, workletUrl: workletUrl });
    B.clients[key] = c;
    c.on("state", (s) => { if (s === "online") B.joins.push({ key: key, t: performance.now() }); });
    c.on("tx", (s) => {
      const p = B.press;
      if (p && p.key === key && p.result === undefined && s !== "requesting") {
        p.result = s;
        p.decided = performance.now();
      }
    });
    c.on("tone", (name) => {
      const p = B.press;
      // tone() schedules its first note at currentTime + 10 ms, right after this event.
      if (name === "goahead" && p && p.key === key && p.goahead === undefined) p.goahead = heardAt(c.ctx, c.ctx.currentTime + 0.01);
    });
    c.on("frame", (dir, spurt, a, b, arrived) => {
      if (dir === "out") B.outs.push({ key: key, spurt: spurt, seq: a, t: performance.now() });
      else B.rx.push({ key: key, spurt: spurt, n: Math.round(a * 50), ear: heardAt(c.ctx, c.ctx.currentTime + b),
                       arrived: arrived === undefined ? null : arrived });
    });
    if (audioNow) c.ensureAudio(); // an open app's audio is running before anyone talks
    c.connect();
    return true;
  };

  B.online = (key) => !!(B.clients[key] && B.clients[key].online);

  B.pressKey = function (key) {
    const c = B.clients[key];
    B.talking = c;
    B.press = { key: key, t: performance.now() };
    B.presses.push(B.press);
    c.press();
    return true;
  };

  B.release = function (key) { B.clients[key].release(); return true; };

  B.drop = function (key) {
    const c = B.clients[key];
    if (!c) return false;
    c.close();
    if (c.ctx) c.ctx.close();
    delete B.clients[key];
    return true;
  };

  B.firstRx = (key) => B.rx.some((r) => r.key === key);

  // The page's clock against the bench's: the bench's /clock answers time.time() in ms.
  B.clock = async function (rounds) {
    const samples = [];
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const res = await fetch("/clock", { cache: "no-store" });
      const body = await res.json();
      const t1 = performance.now();
      samples.push([t0, t1, body.t]);
    }
    const now = performance.now();
    return { samples: samples, timeOrigin: performance.timeOrigin, dateMinusPerf: Date.now() - (performance.timeOrigin + now) };
  };

  B.lastReplay = function (key, group) {
    const list = (B.clients[key] && B.clients[key].replay[group]) || [];
    const item = list[list.length - 1];
    if (!item) return null;
    const step = Math.max(1, Math.round(item.rate / 16000));
    const out = [];
    for (let i = 0; i < item.pcm.length; i += step) out.push(Math.round(item.pcm[i] * 32767));
    return { rate: item.rate, pcm16k: out };
  };

  B.dump = () => ({ captures: B.captures, outs: B.outs, rx: B.rx, presses: B.presses, joins: B.joins,
                    fallback: B.fallback, captureLatency: B.captureLatency, errors: B.errors,
                    stats: B.clients.main ? B.clients.main.stats : null });

  window.addEventListener("error", (e) => B.errors.push(String(e.message)));
})();
