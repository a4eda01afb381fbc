"""Talk groups over MQTT (Ngobrol Kamtibmas): frame format, Opus, floor control, jitter
buffer, recorder, the unit-side client and the arbiter. See docs/ptt.md.

Pure modules (packet, floor, jitter, messages, tones, ogg) import no audio or hardware
library; PyAudio is imported only by `gateway.audio`, and only when a device is opened.
"""
