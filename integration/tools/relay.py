"""A TCP relay on 127.0.0.1 between a worker (or client) and the broker that can pause,
drop and delay traffic, for partition and lossy-network tests (this machine has no
tc netem and no iptables).

As a module:

    relay = Relay(("127.0.0.1", broker_port)).start()
    ... point the worker at 127.0.0.1:relay.port ...
    relay.pause()            # hold traffic both ways (delivered on resume)
    relay.resume()
    relay.drop("both")       # discard traffic in transit ("up", "down", "both", None)
    relay.delay(0.2)         # add 200 ms to every chunk (per direction optional)
    relay.reset()            # close every relayed connection now; what it held is lost
    relay.reset_every(0.3)   # reset mode: reset every 0.3 s (None/0 = off)
    relay.refuse(True)       # close new connections at once
    relay.stats()            # bytes and chunks forwarded / dropped per direction
    relay.stop()

"up" is client -> target (worker -> broker), "down" the other way. With
capture=True every byte relayed is kept (relay.captured("up")), e.g. to prove a
handshake capture contains no job strings.

From the command line, controlled through a line protocol on a control port:

    python3 relay.py TARGET_HOST TARGET_PORT [--listen-port N] [--ready-file F]

prints "relay LISTEN_PORT CONTROL_PORT" (and writes it to F); each control line is
one of: pause | resume | drop up|down|both|off | delay SECONDS [up|down|both] |
reset | reset-every SECONDS|off | refuse on|off | stats | quit; the reply is one JSON
line. A reset closes both sockets of every relayed connection (the peers see it
break and connect anew, the relay accepts as usual); the bytes it still held (paused
or delayed) are counted as "reset_bytes" and never delivered.
"""

import json
import socket
import sys
import threading
import time
from collections import deque

DIRS = ("up", "down")


class _Pipe:
    """One direction of one connection: a reader thread queues chunks with their
    delivery time, a sender thread delivers them in order once due and not paused."""

    def __init__(self, relay, direction, src, dst):
        self.relay = relay
        self.direction = direction
        self.src = src
        self.dst = dst
        self.queue = deque()
        self.cv = threading.Condition()
        self.closed = False
        self.discarded = False

    def discard(self):
        """Forgets what is queued (the connection is being reset); returns its size."""
        with self.cv:
            self.discarded = True
            n = sum(len(d) for _, d in self.queue)
            self.queue.clear()
            self.cv.notify()
        return n

    def start(self):
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._send, daemon=True).start()

    def _read(self):
        r = self.relay
        while True:
            try:
                data = self.src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            with r.lock:
                dropping = self.direction in r.dropping
                delay = r.delays[self.direction]
                if dropping:
                    r.counts[self.direction]["dropped_bytes"] += len(data)
                    r.counts[self.direction]["dropped_chunks"] += 1
                if r.capture and not dropping:
                    r.captures[self.direction].extend(data)
            if dropping:
                continue
            with self.cv:
                if self.discarded:
                    break
                self.queue.append((time.monotonic() + delay, data))
                self.cv.notify()
        with self.cv:
            self.closed = True
            self.cv.notify()

    def _send(self):
        r = self.relay
        while True:
            with self.cv:
                while not self.queue and not self.closed:
                    self.cv.wait(0.05)
                if not self.queue and self.closed:
                    break
                due, data = self.queue[0]
            now = time.monotonic()
            if now < due or r.paused.is_set():
                time.sleep(min(max(due - now, 0.001), 0.01))
                continue
            with self.cv:
                if self.discarded or not self.queue:
                    break
                self.queue.popleft()
            try:
                self.dst.sendall(data)
            except OSError:
                break
            with r.lock:
                r.counts[self.direction]["bytes"] += len(data)
                r.counts[self.direction]["chunks"] += 1
        # Half-close so the peer sees EOF once everything queued was delivered.
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Relay:
    def __init__(self, target, listen_host="127.0.0.1", listen_port=0, capture=False):
        self.target = target
        self.lock = threading.Lock()
        self.paused = threading.Event()
        self.dropping = set()
        self.delays = {"up": 0.0, "down": 0.0}
        self.refusing = False
        self.capture = capture
        self.captures = {"up": bytearray(), "down": bytearray()}
        self.counts = {
            d: {"bytes": 0, "chunks": 0, "dropped_bytes": 0, "dropped_chunks": 0,
                "reset_bytes": 0, "resets": 0} for d in DIRS
        }
        self._reset_timer = None
        self.connections = 0
        self.conns = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((listen_host, listen_port))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self._stopped = False

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                break
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipes = (_Pipe(self, "up", client, upstream), _Pipe(self, "down", upstream, client))
            with self.lock:
                self.connections += 1
                self.conns.append((client, upstream, pipes))
            for p in pipes:
                p.start()

    @staticmethod
    def _dirs(direction):
        if direction in (None, "off", "none"):
            return set()
        if direction == "both":
            return set(DIRS)
        if direction not in DIRS:
            raise ValueError(f"direction must be up, down, both or off, not {direction!r}")
        return {direction}

    def pause(self):
        self.paused.set()

    def resume(self):
        self.paused.clear()

    def drop(self, direction="both"):
        with self.lock:
            self.dropping = self._dirs(direction)

    def delay(self, seconds, direction="both"):
        with self.lock:
            for d in self._dirs(direction):
                self.delays[d] = float(seconds)

    def refuse(self, on=True):
        self.refusing = bool(on)

    def reset(self):
        """Closes every relayed connection (both ends see the connection die); the
        bytes the relay still held for them are lost."""
        with self.lock:
            conns, self.conns = self.conns, []
        for client, upstream, pipes in conns:
            for p in pipes:
                n = p.discard()
                with self.lock:
                    self.counts[p.direction]["reset_bytes"] += n
                    self.counts[p.direction]["resets"] += 1
            for s in (client, upstream):
                # shutdown() first: close() alone would not wake the pump thread blocked
                # in recv() on it, and the kernel would keep the connection open.
                for op in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                    try:
                        op()
                    except OSError:
                        pass

    def reset_every(self, seconds):
        """Reset mode: resets all connections every `seconds` (None or 0: off); new
        connections are accepted as usual in between."""
        if self._reset_timer:
            self._reset_timer.set()
            self._reset_timer = None
        if not seconds:
            return
        stop = threading.Event()
        self._reset_timer = stop

        def run():
            while not stop.wait(float(seconds)):
                self.reset()

        threading.Thread(target=run, daemon=True).start()

    def stats(self):
        with self.lock:
            out = {d: dict(self.counts[d]) for d in DIRS}
            out["connections"] = self.connections
            out["paused"] = self.paused.is_set()
            out["dropping"] = sorted(self.dropping)
            out["delays"] = dict(self.delays)
            return out

    def captured(self, direction):
        with self.lock:
            return bytes(self.captures[direction])

    def stop(self):
        self._stopped = True
        self.reset_every(None)
        try:
            self.listener.close()
        except OSError:
            pass
        self.reset()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _control(relay, conn):
    f = conn.makefile("rwb", buffering=0)
    for raw in f:
        words = raw.decode(errors="replace").split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        reply = {"ok": True}
        try:
            if cmd == "pause":
                relay.pause()
            elif cmd == "resume":
                relay.resume()
            elif cmd == "drop":
                relay.drop(args[0] if args else "both")
            elif cmd == "delay":
                relay.delay(float(args[0]), args[1] if len(args) > 1 else "both")
            elif cmd == "reset":
                relay.reset()
            elif cmd == "reset-every":
                relay.reset_every(None if not args or args[0] == "off" else float(args[0]))
            elif cmd == "refuse":
                relay.refuse(not args or args[0] == "on")
            elif cmd == "stats":
                reply = relay.stats()
            elif cmd == "quit":
                f.write(b'{"ok": true}\n')
                relay.stop()
                return True
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}"}
        except (ValueError, IndexError) as e:
            reply = {"ok": False, "error": str(e)}
        f.write((json.dumps(reply) + "\n").encode())
    return False


def main(argv):
    import argparse

    p = argparse.ArgumentParser(description="TCP relay with pause/drop/delay control")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--listen-port", type=int, default=0)
    p.add_argument("--ready-file")
    a = p.parse_args(argv)
    relay = Relay((a.host, a.port), listen_port=a.listen_port).start()
    ctl = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ctl.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ctl.bind(("127.0.0.1", 0))
    ctl.listen(4)
    line = f"relay {relay.port} {ctl.getsockname()[1]}"
    print(line, flush=True)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write(line + "\n")
    while True:
        conn, _ = ctl.accept()
        with conn:
            if _control(relay, conn):
                return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
