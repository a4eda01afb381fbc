// The browser bench's probe (bench/ptt_browser.py): loaded before mqtt.js and the phone's
// talk-group client (hub/static/phone/ptt.js), which it does not change. It notes, on the
// page's clock (performance.now(), ms since performance.timeOrigin):
//   * mouth: when each 20 ms microphone frame reaches the page from the audio thread (the
//     AudioWorklet's message), keyed by the spurt and the frame's index in it;
//   * ear: when each received frame leaves the speaker, from the audio-clock time the client
//     scheduled it at (its "frame" event) mapped through AudioContext.getOutputTimestamp(),
//     which says when a given audio-clock time is heard at the output device;
//   * the press, the grant and the go-ahead tone leaving the speaker; a client's joining;
//   * what the speaker's context really rendered: a tap (an AudioWorklet fed with everything
//     the client connects to the destination) notes the audio-clock time of every onset
//     (a sample after 30 ms of silence), so a sound that started later than the client
//     asked for is measured when it started, not when it was asked for.
(function () {
  "use strict";
  const B = (window.bench = { captures: [], outs: [], rx: [], presses: [], joins: [], clients: {}, resumes: [],
                              onsets: {},
                              fallback: 0, captureLatency: null, errors: [] });
  const arrivals = new WeakMap(); // microphone frame (Float32Array) -> arrival on the page

  // Every AudioContext gets a tap between the client's nodes and the real destination.
  const TAP = `class BenchTap extends AudioWorkletProcessor {
    constructor() { super(); this.quiet = 1e9; }
    process(inputs) {
      const x = inputs[0] && inputs[0][0];
      if (!x) { this.quiet += 128; return true; }
      for (let i = 0; i < x.length; i++) {
        if (Math.abs(x[i]) > 1e-4) {
          if (this.quiet >= sampleRate * 0.03) this.port.postMessage(currentTime + i / sampleRate);
          this.quiet = 0;
        } else this.quiet += 1;
      }
      return true;
    }
  }
  registerProcessor("bench-tap", BenchTap);`;
  const tapUrl = URL.createObjectURL(new Blob([TAP], { type: "text/javascript" }));
  const NativeContext = window.AudioContext;
  window.AudioContext = class extends NativeContext {
    constructor(...args) {
      super(...args);
      this.benchOnsets = [];
      this.benchMix = new GainNode(this);
      this.benchMix.connect(super.destination);
      this.benchTap = this.audioWorklet.addModule(tapUrl).then(() => {
        const tap = new NativeNode(this, "bench-tap", { numberOfInputs: 1, numberOfOutputs: 0 });
        tap.port.onmessage = (ev) => this.benchOnsets.push(ev.data);
        this.benchMix.connect(tap);
      });
    }
    get destination() { return this.benchMix || super.destination; }
  };

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
    c.on("state", (s, how) => { if (s === "online") B.joins.push({ key: key, t: performance.now(), how: how }); });
    c.on("tx", (s) => {
      const p = B.press;
      if (p && p.key === key && p.result === undefined && s !== "requesting") {
        p.result = s;
        p.decided = performance.now();
      }
    });
    c.on("tone", (name, at) => {
      const p = B.press;
      // The audio-clock time tone() scheduled its first note at; the tap's onset is read
      // later (B.settle) and replaces it when the tone started later than asked.
      if (name === "goahead" && p && p.key === key && p.goahead === undefined) {
        p.goaheadAt = at;
        p.goahead = heardAt(c.ctx, at);
        p.ctx = c.ctx;
      }
    });
    c.on("frame", (dir, spurt, a, b, arrived, at) => {
      if (dir === "out") B.outs.push({ key: key, spurt: spurt, seq: a, t: performance.now() });
      else B.rx.push({ key: key, spurt: spurt, n: Math.round(a * 50),
                       ear: heardAt(c.ctx, at === undefined ? c.ctx.currentTime + b : at),
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

  // A phone out of coverage: its link breaks (no DISCONNECT, so the broker keeps its
  // session) and stays broken until B.resume, which connects again as mqtt.js would.
  B.cut = function (key) {
    const m = B.clients[key].client;
    m.options.reconnectPeriod = 0;
    m.stream.destroy();
    return true;
  };
  B.resume = function (key) {
    const m = B.clients[key].client;
    m.options.reconnectPeriod = 1500;
    B.resumes.push({ key: key, t: performance.now() });
    m.reconnect();
    return true;
  };

  B.drop = function (key) {
    const c = B.clients[key];
    if (!c) return false;
    // The first sound the speaker rendered for this client (the tap), on the page's clock.
    if (c.ctx && c.ctx.benchOnsets.length) B.onsets[key] = heardAt(c.ctx, c.ctx.benchOnsets[0]);
    c.close();
    if (c.ctx) c.ctx.close();
    if (c.micCtx) c.micCtx.close();
    delete B.clients[key];
    return true;
  };

  B.firstRx = (key) => B.rx.some((r) => r.key === key);

  // The go-ahead as rendered: the first onset the tap saw at or after the time the tone was
  // scheduled at (nothing else plays while the phone presses), mapped as the rest.
  B.settle = function () {
    for (const p of B.presses) {
      if (p.goaheadAt === undefined || p.rendered !== undefined) continue;
      const on = p.ctx.benchOnsets.find((t) => t >= p.goaheadAt - 0.0005);
      p.rendered = on === undefined ? null : on;
      p.lateStart = on === undefined ? null : (on - p.goaheadAt) * 1000;
      if (on !== undefined && on > p.goaheadAt) p.goahead = heardAt(p.ctx, on);
      delete p.ctx;
    }
    return true;
  };

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

  B.dump = () => (B.settle(), { captures: B.captures, outs: B.outs, rx: B.rx, presses: B.presses, joins: B.joins,
                    resumes: B.resumes, onsets: B.onsets,
                    fallback: B.fallback, captureLatency: B.captureLatency, errors: B.errors,
                    stats: B.clients.main ? B.clients.main.stats : null,
                    output: B.clients.main && B.clients.main.ctx ? {
                      rate: B.clients.main.ctx.sampleRate, base_ms: B.clients.main.ctx.baseLatency * 1000,
                      output_ms: B.clients.main.ctx.outputLatency * 1000 } : null });

  window.addEventListener("error", (e) => B.errors.push(String(e.message)));
})();
