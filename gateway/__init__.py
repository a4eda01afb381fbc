"""Talk groups over MQTT (Ngobrol Kamtibmas): frame format, Opus, floor control, jitter
buffer, recorder, the unit-side client and the arbiter. See docs/ptt.md.

Pure modules (packet, floor, jitter, messages, tones, ogg) import no audio or hardware
library. Sound devices come from the unit's audio layer (`firmware.audio`, shared with the
voice assistant) through `gateway.audio`, loaded only when a device is opened.
"""
