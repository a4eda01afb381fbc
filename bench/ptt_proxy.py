"""A TCP proxy that gives one link a mobile network's delay and loss, as TCP lives them.

netem is not available on every machine a bench runs on (it needs the kernel's sch_netem),
so the browser bench puts this proxy between Chromium and Mosquitto's WebSocket listener.
Each direction of each connection is a pipe that reads what arrives (one `recv`, normally
one WebSocket frame = one MQTT packet = one TCP segment on loopback) and writes it on after:

* a one-way delay drawn uniformly from `delay_ms ± jitter_ms` (netem's `delay 60ms 30ms`),
  kept in order: a chunk never overtakes the one before it, since TCP hands the application
  its bytes in order however the packets travelled;
* a loss with probability `loss`: the chunk is "retransmitted" `rto_ms` later and crosses
  the link again (a fresh one-way delay), and everything behind it waits for it (TCP's
  head-of-line blocking). 200 ms is Linux's minimum retransmission time-out; a real stack
  often repairs a loss in a stream sooner (fast retransmit after duplicate ACKs, about one
  round trip) and a lone message later (RTO = smoothed RTT + 200 ms), so this is a middle.

The bytes are never altered or dropped for good: TCP does not lose data, it is late.
"""

from __future__ import annotations

import heapq
import random
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class LinkShape:
    """What the link does to each chunk, in one direction."""

    delay_ms: float = 60.0  # mean one-way delay
    jitter_ms: float = 30.0  # uniform ± around the mean
    loss: float = 0.02  # probability that a chunk (segment) is lost once
    rto_ms: float = 200.0  # a lost chunk is sent again this much later

    def due(self, now: float, last_due: float, rng: random.Random) -> tuple[float, bool]:
        """When a chunk that arrived at `now` (s) leaves the link, after `last_due` (s), and
        whether it was lost once on the way."""
        one_way = max(0.0, self.delay_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000
        lost = rng.random() < self.loss
        if lost:
            again = max(0.0, self.delay_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000
            one_way = self.rto_ms / 1000 + again
        return max(last_due, now + one_way), lost


@dataclass
class ProxyStats:
    chunks: int = 0
    lost: int = 0
    bytes: int = 0
    connections: int = 0
    delays_ms: list[float] = field(default_factory=list)  # due - arrival, per chunk


class _Pipe:
    """One direction of one connection: a reader thread stamps each chunk with its due time,
    a writer thread sends it then."""

    def __init__(self, src: socket.socket, dst: socket.socket, shape: LinkShape, rng: random.Random,
                 stats: ProxyStats, lock: threading.Lock) -> None:
        self.src, self.dst, self.shape, self.rng = src, dst, shape, rng
        self.stats, self.lock = stats, lock
        self.queue: list[tuple[float, int, bytes]] = []
        self.cond = threading.Condition()
        self.closed = False
        self.last_due = 0.0
        self.n = 0
        threading.Thread(target=self._read, daemon=True, name="proxy-read").start()
        threading.Thread(target=self._write, daemon=True, name="proxy-write").start()

    def _read(self) -> None:
        try:
            while True:
                data = self.src.recv(65536)
                if not data:
                    break
                now = time.monotonic()
                due, lost = self.shape.due(now, self.last_due, self.rng)
                self.last_due = due
                with self.lock:
                    self.stats.chunks += 1
                    self.stats.lost += lost
                    self.stats.bytes += len(data)
                    self.stats.delays_ms.append((due - now) * 1000)
                with self.cond:
                    self.n += 1
                    heapq.heappush(self.queue, (due, self.n, data))
                    self.cond.notify()
        except OSError:
            pass
        with self.cond:
            self.closed = True
            self.cond.notify()

    def _write(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.queue and not self.closed:
                        self.cond.wait()
                    if not self.queue:
                        break
                    due, _n, data = self.queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        self.cond.wait(wait)
                        continue
                    heapq.heappop(self.queue)
                self.dst.sendall(data)
        except OSError:
            pass
        for s in (self.dst, self.src):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LinkProxy:
    """Listen on a loopback port; every connection is relayed to `target` through a link of
    this shape in both directions (uplink: client → target, downlink: target → client)."""

    def __init__(self, target: tuple[str, int], up: LinkShape, down: LinkShape | None = None,
                 seed: int = 1) -> None:
        self.target = target
        self.up, self.down = up, down or up
        self.rng = random.Random(seed)
        self.stats = {"up": ProxyStats(), "down": ProxyStats()}
        self.lock = threading.Lock()
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="proxy-accept")

    def start(self) -> LinkProxy:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _addr = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self._sockets += [client, upstream]
                self.stats["up"].connections += 1
            # Each direction draws from its own generator (seeded from the proxy's), so the
            # two pipes' threads never share one.
            _Pipe(client, upstream, self.up, random.Random(self.rng.random()), self.stats["up"], self.lock)
            _Pipe(upstream, client, self.down, random.Random(self.rng.random()), self.stats["down"], self.lock)

    def cut(self) -> None:
        """Break every connection open now (a phone leaving coverage: no FIN reaches either
        end in order, the sockets just close); the proxy goes on accepting new ones."""
        with self.lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.server.close()
        with self.lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass

    def summary(self) -> dict:
        out = {}
        with self.lock:
            for name, st in self.stats.items():
                d = sorted(st.delays_ms)
                out[name] = {"chunks": st.chunks, "lost": st.lost, "bytes": st.bytes,
                             "delay_ms_p50": round(d[len(d) // 2], 1) if d else None,
                             "delay_ms_p95": round(d[int(len(d) * 0.95)], 1) if d else None}
            out["connections"] = self.stats["up"].connections
        return out
