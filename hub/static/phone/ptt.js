// Ngobrol Kamtibmas in the browser: the same talk groups, frames and floor rules as the units
// (docs/ptt.md). MQTT 5 over the broker's WebSocket listener (vendored mqtt.js), Opus through
// WebCodecs (AudioEncoder/AudioDecoder), 20 ms frames at 16 kHz, one MQTT message per frame.
//
// Used by the phone app (app.js) and the dispatcher's console (console.js). No UI here: the
// client reports through callbacks (onState, onFloor, onTalker, onSpurt, onTone).
//
// The floor as on the units (gateway/transmit.py): a press asks the arbiter; with no answer
// within requestTimeoutMs, or with the arbiter's retained presence "offline", the phone
// listens before it talks: it talks (mode "lbt") once the group has been quiet for lbtMs
// since the press, and is refused ("busy", why "lbt") as soon as someone else is heard.
/* global mqtt */
(function (global) {
  "use strict";

  const RATE = 16000;
  const FRAME = 320; // samples per 20 ms frame
  const FLAG_START = 1, FLAG_END = 2;
  const PRIORITIES = ["normal", "supervisor", "command", "emergency"];
  const JITTER_START_S = 0.06; // as the units' jitter buffer (ptt.jitter_start_ms)
  // The speaker's context: the device's own rate (a 16 kHz context makes Chromium resample
  // on the way out) and the smallest output buffer the platform allows (Chromium clamps the
  // number to it). "interactive" is a 10 ms render buffer and 32 ms of output latency in
  // Chromium on Linux; 0 is 2.9 ms and 8 ms (docs/ptt.md, "The phone's output path").
  const OUTPUT_LATENCY_HINT = 0;
  const QUANTUM = 128; // Web Audio's render quantum, in frames
  const JITTER_MAX_S = 1.0; // a frame later than this is dropped (the pauses give delay back)
  // Shedding the delay a hold added: once the last SHED_WINDOW frames all came more than a
  // frame plus SHED_SPARE_S before they were due, a quiet frame is left out.
  const SHED_WINDOW = 25;
  const SHED_SPARE_S = 0.01;
  const REPLAY_KEEP = 5; // spurts kept per group for replay
  const PLC_MAX_FRAMES = 5; // a lost frame is concealed; more than 100 ms lost stays silent
  const PLC_FADE = 0.7; // each concealed frame is the last one heard times this, again

  function rank(p) { return Math.max(0, PRIORITIES.indexOf(p)); }

  // The 12-byte header of docs/ptt.md's wire format, then one Opus packet.
  function packFrame(flags, seq, ts, spurt, opus) {
    const out = new Uint8Array(12 + opus.length);
    const v = new DataView(out.buffer);
    v.setUint8(0, 1); v.setUint8(1, flags); v.setUint16(2, seq & 0xffff);
    v.setUint32(4, ts >>> 0); v.setUint32(8, spurt >>> 0);
    out.set(opus, 12);
    return out;
  }

  // null for anything a unit would count as a BadFrame.
  function parseFrame(buf) {
    if (!buf || buf.length < 12 || buf.length > 12 + 1275) return null;
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (v.getUint8(0) !== 1) return null;
    const flags = v.getUint8(1);
    if (flags & ~3) return null;
    const opus = buf.subarray(12);
    const end = !!(flags & FLAG_END);
    if (!opus.length && !end) return null;
    if (opus.length && (opus[0] & 3) !== 0) return null; // one frame per packet (TOC code 0)
    return { start: !!(flags & FLAG_START), end: end, seq: v.getUint16(2), ts: v.getUint32(4),
             spurt: v.getUint32(8), opus: opus };
  }

  function randomSpurt() {
    const a = new Uint32Array(1);
    do { crypto.getRandomValues(a); } while (a[0] === 0);
    return a[0];
  }

  // Tones as the units play them (gateway/tones.py): frequencies and lengths in s.
  const TONES = {
    goahead: [[880, 0.08], [0, 0.04], [1320, 0.1]],
    busy: [[480, 0.2], [0, 0.15], [480, 0.2], [0, 0.15], [480, 0.2]],
    roger: [[1200, 0.07]],
    cut: [[1000, 0.1], [700, 0.1], [450, 0.15]],
  };

  class PttClient {
    // opts: url, username, password, unit, groups (array), group (transmit group), root
    // (topic root, "posko/v1"), priority ("normal"), requestTimeoutMs (1000), lbtMs (500,
    // as ptt.lbt_ms), subscribe (more topics below the root, e.g. this phone's alert acks:
    // their messages come as "message" events), clientId (the broker's session: by default
    // one per client object; the deployment's broker takes the login as the id), sessionExpiryS
    // (300: how long the broker keeps the session of a phone whose link dropped).
    constructor(opts) {
      this.o = Object.assign({ root: "posko/v1", priority: "normal", requestTimeoutMs: 1000, lbtMs: 500,
                               subscribe: [], sessionExpiryS: 300 }, opts);
      this.arbiterOnline = null; // null: its retained presence not heard yet
      this.heardAt = {}; // group -> performance.now() of the last frame heard from another unit
      this.group = this.o.group || this.o.groups[0];
      this.floors = {}; // group -> floor state
      this.rx = {}; // group -> {unit, spurt, dec, base, lastTs}
      this.replay = {}; // group -> [{unit, spurt, start, pcm: Float32Array}]
      this.muted = new Set();
      this.solo = null;
      this.tx = null; // {group, spurt, priority, state: requesting|talking, ...}
      this.cb = {};
      // played: group -> frames handed to the speaker (not muted, not while talking)
      // late: frames that moved the rest of their spurt back; shed: quiet frames left out to
      // give that delay back; dropped: frames later than the buffer's maximum.
      this.stats = { framesOut: 0, framesIn: 0, bad: 0, late: 0, concealed: 0, shed: 0, dropped: 0, played: {} };
      this.online = false;
    }

    on(name, fn) { (this.cb[name] = this.cb[name] || []).push(fn); return this; }
    emit(name, ...args) {
      for (const fn of this.cb[name] || []) { try { fn(...args); } catch (e) { console.error(e); } }
    }

    topic(...parts) { return [this.o.root, ...parts].join("/"); }

    // The speaker's context (tones, received frames, replay).
    ensureAudio() {
      if (!this.ctx) {
        const hint = this.o.latencyHint === undefined ? OUTPUT_LATENCY_HINT : this.o.latencyHint;
        this.ctx = new AudioContext({ latencyHint: hint });
      }
      if (this.ctx.state === "suspended") this.ctx.resume();
      return this.ctx;
    }

    // The microphone's context: 16 kHz, so the worklet's 320 samples are one Opus frame.
    micContext() {
      if (!this.micCtx) this.micCtx = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
      if (this.micCtx.state === "suspended") this.micCtx.resume();
      return this.micCtx;
    }

    // How far ahead of currentTime a sound must be scheduled to start when scheduled: the
    // audio thread renders a whole callback (baseLatency) at once, and the start may reach
    // it one quantum after currentTime was read. Earlier than this it would start later
    // than asked, and the bench's ear (the asked time, mapped) would be early.
    lead() {
      const ctx = this.ctx;
      return (ctx.baseLatency || 0.01) + QUANTUM / ctx.sampleRate + 0.001;
    }

    // Affiliation (MCPTT's word): the phone subscribes, at connect, to the floor state, the
    // audio and the announcements of every group its member belongs to, so a spurt in
    // progress reaches it without asking. The session outlives a dropped mobile link by
    // sessionExpiryS (MQTT 5 Session Expiry Interval): a phone that comes back within it
    // finds its subscriptions at the broker (CONNACK's Session Present), subscribes nothing
    // again, and the audio of a spurt in progress follows the CONNACK at once, where a new
    // session waits one more round trip for SUBSCRIBE (late entry, docs/ptt.md). Floor states
    // published meanwhile (QoS 1) were kept for it and come first.
    connect() {
      // mqtt.js reconnects by itself (reconnectPeriod); the subscriptions are ours (below).
      this.client = mqtt.connect(this.o.url, {
        protocolVersion: 5, username: this.o.username, password: this.o.password,
        clientId: this.o.clientId || `${this.o.unit}-web-${Math.random().toString(16).slice(2, 8)}`,
        clean: false, properties: { sessionExpiryInterval: this.o.sessionExpiryS },
        keepalive: 20, reconnectPeriod: 1500, connectTimeout: 8000, resubscribe: false,
      });
      this.client.on("connect", (connack) => {
        this.online = true;
        this.sessionPresent = !!(connack && connack.sessionPresent);
        if (this.sessionPresent) { this.emit("state", "online", "session"); return; }
        const subs = {};
        for (const g of this.o.groups) {
          subs[this.topic("tg", g, "floor", "state")] = { qos: 1 };
          // No Local: the broker does not send our own frames back (as the units do).
          subs[this.topic("tg", g, "audio", "+")] = { qos: 0, nl: true };
          subs[this.topic("tg", g, "announce")] = { qos: 1 };
        }
        subs[this.topic("arbiter", "status")] = { qos: 1 };
        for (const t of this.o.subscribe) subs[this.topic(t)] = { qos: 1 };
        this.client.subscribe(subs);
        this.emit("state", "online", "new");
      });
      const down = (why) => {
        if (this.online) this.emit("state", "offline", why);
        this.online = false;
        if (this.tx) this.cutTx("offline");
      };
      this.client.on("close", () => down("close"));
      this.client.on("offline", () => down("offline"));
      this.client.on("error", (e) => this.emit("state", "error", String(e && e.message || e)));
      this.client.on("message", (topic, payload) => this.onMessage(topic, payload));
      return this;
    }

    // Leave for good: the DISCONNECT ends the session at the broker (expiry 0).
    close() {
      if (!this.client) return;
      if (this.online) this.client.end(false, { properties: { sessionExpiryInterval: 0 } });
      else this.client.end(true);
    }

    // Publish below the root (QoS 1 by default); resolves when the broker has it (PUBACK).
    publish(sub, payload, qos) {
      return new Promise((resolve, reject) => {
        if (!this.client || !this.online) { reject(new Error("offline")); return; }
        this.client.publish(this.topic(sub), payload, { qos: qos === undefined ? 1 : qos },
                            (err) => (err ? reject(err) : resolve()));
      });
    }

    onMessage(topic, payload) {
      const parts = topic.slice(this.o.root.length + 1).split("/");
      if (parts[0] === "arbiter" && parts[1] === "status") {
        let st;
        try { st = JSON.parse(new TextDecoder().decode(payload)); } catch (e) { return; }
        this.arbiterOnline = !!st && st.state === "online";
        this.emit("arbiter", this.arbiterOnline);
        return;
      }
      if (parts[0] !== "tg") { this.emit("message", parts.join("/"), payload); return; }
      const g = parts[1];
      if (parts[2] === "floor" && parts[3] === "state") {
        let st;
        try { st = JSON.parse(new TextDecoder().decode(payload)); } catch (e) { return; }
        this.onFloor(g, st);
      } else if (parts[2] === "audio" && parts.length === 4) {
        this.onAudio(g, parts[3], payload);
      } else if (parts[2] === "announce") {
        let a;
        try { a = JSON.parse(new TextDecoder().decode(payload)); } catch (e) { return; }
        if (a && typeof a.text === "string") this.emit("announce", g, a);
      }
    }

    onFloor(g, st) {
      const before = this.floors[g];
      this.floors[g] = st;
      const tx = this.tx;
      if (tx && tx.group === g) {
        const mine = st.holder === this.o.unit && st.spurt === tx.spurt;
        const waiting = tx.state === "requesting" || tx.state === "listening";
        if (waiting && st.event_unit === this.o.unit && st.event_spurt === tx.spurt) {
          // A grant over another talker comes as "preempt" with us as the new holder.
          if ((st.event === "grant" || st.event === "preempt") && mine) this.granted();
          else if (st.event === "deny") this.denied();
        } else if (tx.state === "talking" && tx.mode === "arbiter" && !mine) {
          this.cutTx(st.event === "preempt" ? "preempt" : st.event);
        }
      }
      if (before && before.holder && before.holder !== st.holder) this.endRx(g);
      this.emit("floor", g, st);
      this.emit("talker", g, st.holder || "", st.priority || "normal");
    }

    // --- transmit ---------------------------------------------------------------

    // Press: ask for the floor of the transmit group. Resolves to "grant" or "busy"/"noanswer".
    press(priority) {
      if (this.tx) return Promise.resolve(this.tx.state);
      if (!this.online) { this.emit("tx", "offline"); return Promise.resolve("offline"); }
      const prio = priority || this.o.priority;
      this.ensureAudio();
      const spurt = randomSpurt();
      const pressAt = performance.now();
      this.tx = { group: this.group, spurt: spurt, priority: prio, state: "requesting", seq: 0, ts: 0,
                  mode: "arbiter", pressAt: pressAt };
      // Start the microphone while the arbiter answers, so the first word is not lost.
      const mic = this.openMic();
      const tx = this.tx;
      return new Promise((resolve) => {
        tx.resolve = resolve;
        mic.catch((e) => {
          if (this.tx !== tx) return;
          this.emit("tx", "nomic", String(e && e.message || e));
          this.release();
        });
        if (this.arbiterOnline === false) { this.listen(tx); return; }
        this.publishFloor("request", tx.group, spurt, prio);
        this.emit("tx", "requesting");
        tx.timer = setTimeout(() => {
          // No answer: the arbiter is gone (or not there yet). Listen before talking.
          if (this.tx === tx && tx.state === "requesting") this.listen(tx);
        }, this.o.requestTimeoutMs);
      });
    }

    // Listen-before-talk (gateway/floor.py ListenBeforeTalk): the quiet period counts from
    // the press, so the whole wait stays about lbtMs.
    listen(tx) {
      tx.state = "listening";
      this.emit("tx", "listening");
      const decide = () => {
        if (this.tx !== tx || tx.state !== "listening") return;
        const now = performance.now();
        const heard = this.heardAt[tx.group];
        if (heard !== undefined && now - heard < this.o.lbtMs) { this.lbtBusy(tx); return; }
        if (now - tx.pressAt >= this.o.lbtMs) { this.granted("lbt"); return; }
        tx.timer = setTimeout(decide, Math.max(5, tx.pressAt + this.o.lbtMs - now));
      };
      decide();
    }

    lbtBusy(tx) {
      clearTimeout(tx.timer);
      this.stopTx(false);
      this.tone("busy");
      this.emit("tx", "busy", "lbt");
      if (tx.resolve) tx.resolve("busy");
    }

    publishFloor(action, group, spurt, priority) {
      const msg = { action: action, spurt: spurt, priority: priority, time: Date.now() / 1000 };
      this.client.publish(this.topic("tg", group, "floor", "request", this.o.unit),
                          JSON.stringify(msg), { qos: 1 });
    }

    granted(mode) {
      const tx = this.tx;
      clearTimeout(tx.timer);
      tx.state = "talking";
      tx.mode = mode || "arbiter";
      tx.grantedAt = performance.now();
      this.tone("goahead");
      this.emit("tx", "talking", tx.mode);
      if (tx.resolve) tx.resolve(tx.mode === "lbt" ? "lbt" : "grant");
    }

    denied() {
      const tx = this.tx;
      clearTimeout(tx.timer);
      this.stopTx(false);
      this.tone("busy");
      this.emit("tx", "busy");
      if (tx.resolve) tx.resolve("busy");
    }

    // Release: an END frame and the floor release.
    release() {
      const tx = this.tx;
      if (!tx) return;
      clearTimeout(tx.timer);
      const talking = tx.state === "talking";
      this.stopTx(talking);
      if (tx.state === "requesting" || tx.state === "listening" || talking) {
        this.publishFloor("release", tx.group, tx.spurt, tx.priority);
      }
      if (tx.resolve && !talking) tx.resolve("released");
      this.emit("tx", "idle");
    }

    cutTx(why) {
      const tx = this.tx;
      if (!tx) return;
      clearTimeout(tx.timer);
      this.stopTx(false);
      if (why !== "offline") this.tone("cut");
      this.emit("tx", "cut", why);
    }

    stopTx(sendEnd) {
      const tx = this.tx;
      this.tx = null;
      if (!tx) return;
      if (tx.node) { tx.node.port.onmessage = null; tx.node.disconnect(); }
      if (tx.source) tx.source.disconnect();
      if (tx.stream) tx.stream.getTracks().forEach((t) => t.stop());
      const finish = () => {
        if (sendEnd && this.client) {
          const end = packFrame(FLAG_END, tx.seq, tx.ts, tx.spurt, new Uint8Array(0));
          this.client.publish(this.topic("tg", tx.group, "audio", this.o.unit), end, { qos: 0 });
        }
        if (tx.enc && tx.enc.state !== "closed") tx.enc.close();
      };
      if (tx.enc && tx.enc.state === "configured" && sendEnd) {
        tx.ending = true;
        tx.enc.flush().then(finish, finish);
      } else finish();
    }

    async openMic() {
      const tx = this.tx;
      const ctx = this.micContext();
      if (!this.workletReady) this.workletReady = ctx.audioWorklet.addModule(this.o.workletUrl);
      await this.workletReady;
      const stream = await navigator.mediaDevices.getUserMedia({
        // No browser processing: the radio is half duplex like the units (nothing to cancel), and
        // Opus at 16 kHz carries the voice as said (AGC and noise suppression pumped the level).
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      if (this.tx !== tx) { stream.getTracks().forEach((t) => t.stop()); return; }
      tx.stream = stream;
      tx.enc = new AudioEncoder({
        output: (chunk) => this.onEncoded(tx, chunk),
        error: (e) => this.emit("tx", "error", String(e)),
      });
      tx.enc.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 1, bitrate: 20000,
                         bitrateMode: "variable",
                         opus: { frameDuration: 20000, application: "voip", signal: "voice",
                                 useinbandfec: true, packetlossperc: 5, complexity: 5 } });
      tx.source = ctx.createMediaStreamSource(stream);
      tx.node = new AudioWorkletNode(ctx, "posko-capture", { numberOfInputs: 1, numberOfOutputs: 0,
                                                           channelCount: 1 });
      let n = 0;
      tx.node.port.onmessage = (ev) => {
        // Frames captured before the grant are dropped except the last 3 (60 ms of lead-in).
        if (this.tx !== tx || tx.ending) return;
        const pcm = ev.data;
        if (tx.state === "requesting" || tx.state === "listening") {
          (tx.pending = tx.pending || []).push(pcm);
          if (tx.pending.length > 3) tx.pending.shift();
          return;
        }
        const frames = tx.pending ? tx.pending.concat([pcm]) : [pcm];
        tx.pending = null;
        for (const f of frames) {
          tx.enc.encode(new AudioData({ format: "f32", sampleRate: RATE, numberOfFrames: FRAME,
                                        numberOfChannels: 1, timestamp: (n * FRAME * 1e6) / RATE,
                                        data: f }));
          n += 1;
        }
      };
      tx.source.connect(tx.node);
    }

    onEncoded(tx, chunk) {
      const opus = new Uint8Array(chunk.byteLength);
      chunk.copyTo(opus);
      if (!opus.length) return;
      const ts = Math.round((chunk.timestamp * RATE) / 1e6);
      const flags = tx.seq === 0 ? FLAG_START : 0;
      const frame = packFrame(flags, tx.seq, ts, tx.spurt, opus);
      tx.seq = (tx.seq + 1) & 0xffff;
      tx.ts = ts + FRAME;
      if (this.client) this.client.publish(this.topic("tg", tx.group, "audio", this.o.unit), frame, { qos: 0 });
      this.stats.framesOut += 1;
      this.emit("frame", "out", tx.spurt, tx.seq - 1);
    }

    // --- receive ---------------------------------------------------------------

    audible(g) {
      if (this.solo) return g === this.solo;
      return !this.muted.has(g);
    }

    onAudio(g, unit, payload) {
      const f = parseFrame(payload);
      if (!f) { this.stats.bad += 1; return; }
      if (unit === this.o.unit) return;
      this.heardAt[g] = performance.now(); // listen-before-talk hears everyone
      const st = this.floors[g];
      if (this.arbiterOnline) {
        // Only the floor holder's audio is heard (as on the units).
        if (!st || st.holder !== unit || (st.spurt && st.spurt !== f.spurt)) return;
      } else {
        // No arbiter (listen-before-talk): one talker at a time, whoever came first.
        const cur = this.rx[g];
        if (cur && cur.unit !== unit && performance.now() - cur.lastAt < 1000) return;
      }
      this.stats.framesIn += 1;
      let r = this.rx[g];
      if (!r || r.spurt !== f.spurt || r.unit !== unit) {
        this.endRx(g);
        r = this.startRx(g, unit, f.spurt);
      }
      r.lastAt = performance.now();
      if (f.end) { this.endRx(g, true); return; }
      if (r.lastSeq !== null && ((f.seq - r.lastSeq) & 0xffff) > 0x8000) return; // old or duplicate
      if (r.lastSeq === f.seq) return;
      r.lastSeq = f.seq;
      r.arrivals[f.ts] = performance.now();
      // Chromium stamps decoded audio by counting samples from the first chunk, so a lost
      // frame would shift everything after it: each output takes its frame's own timestamp.
      r.sent.push(f.ts);
      r.dec.decode(new EncodedAudioChunk({ type: "key", timestamp: (f.ts * 1e6) / RATE,
                                           data: f.opus }));
    }

    startRx(g, unit, spurt) {
      const ctx = this.ensureAudio();
      const r = { unit: unit, spurt: spurt, base: null, lastSeq: null, pcm: [], arrivals: {}, sent: [],
                  start: Date.now(), delay: JITTER_START_S, margins: [], endAt: 0 };
      r.dec = new AudioDecoder({ output: (data) => this.onDecoded(g, r, data),
                                 error: (e) => console.warn("opus decode", e) });
      r.dec.configure({ codec: "opus", sampleRate: RATE, numberOfChannels: 1 });
      this.rx[g] = r;
      this.emit("spurt", g, unit, "start");
      void ctx;
      return r;
    }

    // A tiny jitter buffer on the audio clock: each frame plays at base + its timestamp;
    // base is set from the first frame plus the start delay, moves back by exactly as much
    // as a frame is late (never two frames at once), and forward again by leaving out quiet
    // frames once the frames come early enough (the units' buffer, gateway/jitter.py, grows
    // on late frames and drops frames when it holds far more than its target).
    // A lost frame (a gap in the timestamps) is concealed: the last frame heard is repeated,
    // fading, for up to PLC_MAX_FRAMES; a longer gap stays silent (WebCodecs gives the page
    // no access to Opus's own concealment or FEC).
    onDecoded(g, r, data) {
      const n = data.numberOfFrames;
      const rate = data.sampleRate;
      const pcm = new Float32Array(n);
      data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
      const sentTs = r.sent.shift();
      const tsS = sentTs === undefined ? data.timestamp / 1e6 : sentTs / RATE;
      data.close();
      const ctx = this.ctx;
      if (r.base === null) r.base = ctx.currentTime + r.delay - tsS;
      const dur = n / rate;
      if (r.nextTs !== undefined && r.lastPcm && tsS - r.nextTs > dur / 2) {
        const missing = Math.round((tsS - r.nextTs) / dur);
        let gain = 1;
        for (let k = 0; k < Math.min(missing, PLC_MAX_FRAMES); k++) {
          gain *= PLC_FADE;
          const fill = new Float32Array(r.lastPcm.length);
          for (let i = 0; i < fill.length; i++) fill[i] = r.lastPcm[i] * gain;
          const t = r.nextTs + k * dur;
          r.pcm.push({ t: t, pcm: fill, rate: rate, concealed: true });
          this.stats.concealed += 1;
          const at = r.base + t;
          if (at >= ctx.currentTime + this.lead() && at >= (r.endAt || 0) - 0.0005) {
            this.play(g, fill, rate, at);
            r.endAt = at + dur;
          }
        }
      }
      r.pcm.push({ t: tsS, pcm: pcm, rate: rate });
      r.lastPcm = pcm;
      r.nextTs = Math.max(r.nextTs || 0, tsS + dur);
      r.lastTs = Math.max(r.lastTs || 0, tsS + dur);
      let at = r.base + tsS;
      // Nothing starts before the frame heard last has ended (two frames at once).
      const soonest = Math.max(ctx.currentTime + this.lead(), r.endAt || 0);
      if (at < soonest - 0.0005) {
        // Late (on TCP: held behind a retransmission): the rest of the spurt moves back by
        // exactly as much, so the frames behind it, which come in one burst, play in turn.
        const shift = soonest - at;
        if (r.delay + shift > JITTER_MAX_S) { this.stats.dropped += 1; return; }
        r.delay += shift;
        r.base += shift;
        at = soonest;
        this.stats.late += 1;
      } else {
        let energy = 0;
        for (let i = 0; i < n; i++) energy += pcm[i] * pcm[i];
        const rms = Math.sqrt(energy / n);
        r.peak = Math.max(r.peak || 0, rms);
        const spare = at - (ctx.currentTime + this.lead());
        r.margins.push(spare);
        if (r.margins.length > SHED_WINDOW) r.margins.shift();
        // The delay a hold added is given back in the pauses: with every recent frame early
        // by more than a frame, a quiet one is left out and the rest of the spurt moves
        // forward by it (what a late frame added does not stay for the whole spurt).
        if (r.delay - dur >= JITTER_START_S - 1e-6 && r.margins.length === SHED_WINDOW &&
            Math.min(...r.margins) > dur + SHED_SPARE_S && rms <= Math.max(0.002, 0.1 * r.peak)) {
          r.delay -= dur;
          r.base -= dur;
          r.margins = r.margins.map((m) => m - dur);
          this.stats.shed += 1;
          return;
        }
      }
      this.play(g, pcm, rate, at);
      r.endAt = at + dur;
      const arrived = r.arrivals[Math.round(tsS * RATE)];
      // (at - currentTime, and at itself: currentTime may move between two reads)
      this.emit("frame", "in", r.spurt, tsS, at - ctx.currentTime, arrived, at);
    }

    play(g, pcm, rate, at) {
      // Half duplex like the units (ptt.half_duplex): nothing plays while this phone talks.
      if (!this.audible(g) || (this.tx && this.tx.state === "talking")) return;
      const ctx = this.ctx;
      const buf = ctx.createBuffer(1, pcm.length, rate);
      buf.copyToChannel(pcm, 0);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      src.start(at);
      this.stats.played[g] = (this.stats.played[g] || 0) + 1;
    }

    endRx(g, roger) {
      const r = this.rx[g];
      if (!r) return;
      delete this.rx[g];
      const finish = () => {
        if (r.dec.state !== "closed") r.dec.close();
        this.keepSpurt(g, r);
        this.emit("spurt", g, r.unit, "end");
      };
      if (r.dec.state === "configured") r.dec.flush().then(finish, finish);
      else finish();
      if (roger && this.audible(g)) this.tone("roger", r.base !== null ? r.base + (r.lastTs || 0) : 0);
    }

    keepSpurt(g, r) {
      if (!r.pcm.length) return;
      r.pcm.sort((a, b) => a.t - b.t);
      const rate = r.pcm[0].rate;
      const t0 = r.pcm[0].t;
      const last = r.pcm[r.pcm.length - 1];
      const total = Math.round((last.t - t0) * rate) + last.pcm.length;
      const out = new Float32Array(total);
      for (const p of r.pcm) out.set(p.pcm, Math.min(total - p.pcm.length, Math.round((p.t - t0) * rate)));
      const list = (this.replay[g] = this.replay[g] || []);
      list.push({ unit: r.unit, spurt: r.spurt, start: r.start, rate: rate, pcm: out });
      while (list.length > REPLAY_KEEP) list.shift();
      this.emit("replay", g, list);
    }

    // Play a kept spurt again (index from the newest: 0 = last).
    playReplay(g, index) {
      const list = this.replay[g] || [];
      const item = list[list.length - 1 - (index || 0)];
      if (!item) return false;
      const ctx = this.ensureAudio();
      const buf = ctx.createBuffer(1, item.pcm.length, item.rate);
      buf.copyToChannel(item.pcm, 0);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      src.start();
      this.emit("replaying", g, item);
      return true;
    }

    tone(name, at) {
      const ctx = this.ensureAudio();
      let t = Math.max(at || 0, ctx.currentTime + this.lead());
      this.emit("tone", name, t);
      for (const [freq, len] of TONES[name] || []) {
        if (freq) {
          const osc = ctx.createOscillator();
          const gain = ctx.createGain();
          osc.frequency.value = freq;
          gain.gain.value = 0.25;
          osc.connect(gain).connect(ctx.destination);
          osc.start(t);
          osc.stop(t + len);
        }
        t += len;
      }
    }
  }

  global.PoskoPtt = { PttClient: PttClient, packFrame: packFrame, parseFrame: parseFrame, rank: rank,
                      PRIORITIES: PRIORITIES };
})(window);
