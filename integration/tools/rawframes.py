"""Unauthenticated raw-TCP traffic against the broker's sockets: garbage bytes,
truncated and oversized ZMTP frames, and a ZMTP NULL-mechanism handshake (which a
CURVE-only broker must refuse). Usable as a module or from the command line:

    python3 rawframes.py HOST PORT [KIND...]
"""

import os
import socket
import struct
import sys

GREETING_SIG = b"\xff" + b"\x00" * 8 + b"\x7f"


def greeting(mechanism=b"NULL", as_server=0):
    mech = mechanism.ljust(20, b"\x00")
    return GREETING_SIG + bytes([3, 0]) + mech + bytes([as_server]) + b"\x00" * 31


def command(name, body=b""):
    payload = bytes([len(name)]) + name + body
    if len(payload) < 256:
        return bytes([0x04, len(payload)]) + payload
    return bytes([0x06]) + struct.pack(">Q", len(payload)) + payload


def ready_dealer():
    prop = b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    return command(b"READY", prop)


def message(data, more=False):
    flags = 0x01 if more else 0x00
    if len(data) < 256:
        return bytes([flags, len(data)]) + data
    return bytes([flags | 0x02]) + struct.pack(">Q", len(data)) + data


def hq_frame(msg_type, body=b""):
    """An hq protocol frame: 40-byte header + body (see proto/hq_msg.h)."""
    hdr = b"HQ" + bytes([1, msg_type]) + struct.pack(">QQQQI", 1, 0, 0, 0, 0)
    return hdr + body


def _send(host, port, chunks, read=True, timeout=2.0):
    """Sends chunks on one connection; returns the bytes the peer sent back (up to
    when it closed or went quiet)."""
    got = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        for c in chunks:
            try:
                s.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break
        if read:
            s.settimeout(0.5)
            try:
                while len(got) < 1 << 16:
                    b = s.recv(4096)
                    if not b:
                        break
                    got += b
            except (socket.timeout, ConnectionResetError):
                pass
    return got


KINDS = {
    "garbage": lambda: [os.urandom(4096)],
    "zeros": lambda: [b"\x00" * 1024],
    "http": lambda: [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
    "truncated-greeting": lambda: [GREETING_SIG[:5]],
    "bad-version": lambda: [GREETING_SIG + bytes([99, 99]) + b"\x00" * 52],
    "null-mechanism": lambda: [greeting(b"NULL"), ready_dealer(),
                               message(hq_frame(1))],
    "plain-mechanism": lambda: [greeting(b"PLAIN"), command(b"HELLO", b"\x00\x00")],
    "curve-garbage-hello": lambda: [greeting(b"CURVE"), command(b"HELLO", os.urandom(194))],
    "oversized-length": lambda: [greeting(b"CURVE"),
                                 bytes([0x06]) + struct.pack(">Q", (1 << 62)) + b"x" * 64],
    "huge-message-header": lambda: [greeting(b"NULL"), ready_dealer(),
                                    bytes([0x02]) + struct.pack(">Q", (1 << 40))
                                    + b"y" * 1024],
    "truncated-frame": lambda: [greeting(b"NULL"), ready_dealer(),
                                bytes([0x00, 200]) + b"z" * 10],
}


def send_kind(host, port, kind):
    return _send(host, port, KINDS[kind]())


def main(argv):
    host, port = argv[1], int(argv[2])
    kinds = argv[3:] or list(KINDS)
    for k in kinds:
        try:
            got = send_kind(host, port, k)
            print(f"{k}: {len(got)} bytes back")
        except OSError as e:
            print(f"{k}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
