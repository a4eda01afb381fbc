// Cuts the microphone (already at the AudioContext's 16 kHz) into 20 ms frames of 320
// samples and posts each to the page, which encodes it with WebCodecs' Opus encoder.
class PoskoCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Float32Array(320);
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    let i = 0;
    while (i < input.length) {
      const n = Math.min(input.length - i, 320 - this.fill);
      this.frame.set(input.subarray(i, i + n), this.fill);
      this.fill += n;
      i += n;
      if (this.fill === 320) {
        this.port.postMessage(this.frame, [this.frame.buffer]);
        this.frame = new Float32Array(320);
        this.fill = 0;
      }
    }
    return true;
  }
}
registerProcessor("posko-capture", PoskoCapture);
