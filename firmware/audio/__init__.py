"""Audio I/O of the unit: PyAudio capture and playback, resampling, device lookup.

`resample` is pure numpy; `devices` and `streams` are the only modules that touch PyAudio.
The voice assistant and push-to-talk (through gateway.audio) share them.
"""
