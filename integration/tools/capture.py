"""A recording TCP forwarder on 127.0.0.1, for tests that look at what crosses the
link to the broker (a pcap without root or tcpdump) or at which side closed a
connection:

    cap = Capture(broker_port)          # record=False: count bytes only
    ... point a client at 127.0.0.1:cap.port ...
    up, down = cap.captured()           # the bytes client -> broker, broker -> client
    cap.conns                           # per connection: up/down byte counts, closed_by
    cap.stop()
"""

import socket
import threading


class Capture:
    """A TCP forwarder on 127.0.0.1 in front of one broker port. Every accepted
    connection gets its own upstream connection; the bytes of both directions are
    counted (and kept when record=True), and the forwarder notes which side closed
    first. A pcap of the link, without needing root or tcpdump."""

    def __init__(self, upstream_port, record=True):
        self.upstream = ("127.0.0.1", upstream_port)
        self.record = record
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.conns = []  # dicts: up, down (byte counts), closed_by ("server"/"client")
        self.lock = threading.Lock()
        self.socks = []
        self.threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self._spawn(self._accept_loop)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept_loop(self):
        self.lsock.settimeout(0.1)  # close() does not wake a blocked accept()
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            try:
                u = socket.create_connection(self.upstream, timeout=10)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            conn = {"up": 0, "down": 0, "closed_by": None, "socks": (c, u)}
            with self.lock:
                self.conns.append(conn)
                self.socks += [c, u]
            self._spawn(self._pump, c, u, conn, "up")
            self._spawn(self._pump, u, c, conn, "down")

    def _pump(self, src, dst, conn, direction):
        buf = self.to_server if direction == "up" else self.to_client
        # who closed: for "up" the source is the client, a failing send is the server
        src_side, dst_side = ("client", "server") if direction == "up" else ("server", "client")
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self._closed(conn, src_side)
                break
            with self.lock:
                conn[direction] += len(data)
                if self.record:
                    buf += data
            try:
                dst.sendall(data)
            except OSError:
                self._closed(conn, dst_side)
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _closed(self, conn, side):
        with self.lock:
            if conn["closed_by"] is None and not self.stopping:
                conn["closed_by"] = side

    def captured(self):
        with self.lock:
            return bytes(self.to_server), bytes(self.to_client)

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=5)
