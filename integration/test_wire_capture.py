"""What crosses the link to the broker, seen by an eavesdropper or by a peer with the
wrong keys (broker/GUARANTEES.md, G7 (authentication and confidentiality); case
unauthenticated-access): a byte capture of a legitimate client's traffic holds none
of its job's strings, a client with wrong keys gets nothing through, and an unknown
client key with the right broker key is refused by ZAP. The captures go through the
recording forwarder (tools/capture.py, the `captures` fixture)."""

import os
import secrets

from hqtest import assert_still_serves, load_access, redirected_server_dir, wait_until


def distinctive():
    tag = secrets.token_hex(8)
    return f"capname-{tag}", f"caparg-{tag}", f"capenv-{tag}"


def assert_absent(blobs, strings):
    for s in strings:
        for enc in (s.encode(), s.encode("utf-16-le")):
            for b in blobs:
                assert enc not in b, f"{s!r} appears in the capture"


def test_capture_of_a_legitimate_client_holds_no_job_strings(cluster, captures):
    """Setup: a server and worker; `hq` talks to the client socket through the
    recording forwarder. Fault: none; the capture is the attacker's view of the link.
    Expected: the submit, job info, task list and a finished job's output all work
    through the forwarder, yet none of the job's name, arguments or environment
    strings appear in the captured bytes in either direction (CURVE encryption); the
    capture does show a CURVE handshake."""
    env = cluster
    cap = captures(env.server_info()["client_port"])
    d = redirected_server_dir(env, cap.port, "captured")
    name, arg, envval = distinctive()
    jid = env.hq_json("submit", "--name", name, "--env", f"CAPENV={envval}", "--", "echo", arg,
                      server_dir=d)["id"]
    env.hq("job", "wait", str(jid), server_dir=d)
    info = env.hq("job", "info", str(jid), server_dir=d).stdout
    assert name in info and arg in info and envval in info, info
    assert name in env.hq("job", "list", "--all", server_dir=d).stdout
    assert env.hq("task", "list", str(jid), server_dir=d).stdout
    up, down = cap.captured()
    assert len(up) > 500 and len(down) > 500, (len(up), len(down))
    assert b"CURVE" in up and b"CURVE" in down  # the ZMTP greetings name the mechanism
    assert_absent([up, down], [name, arg, envval])
    assert env.tasks(jid)[0]["state"] == "finished"


def test_wrong_keys_through_the_capture_deliver_nothing(cluster, captures):
    """Setup: a server and worker; a client whose access file has the right address
    but another secret (so both the server key it expects and its own key are wrong),
    through the recording forwarder. Fault: it tries to submit, list and read jobs.
    Expected: every command fails with the handshake refusal, the broker logs the
    refused connection, no job is created, and the capture contains none of the job's
    strings."""
    env = cluster
    env.submit("--name", "visible-to-owner", "--", "true")
    cap = captures(env.server_info()["client_port"])
    data = load_access(env)
    data["client"]["secret_key"] = os.urandom(32).hex()
    d = redirected_server_dir(env, cap.port, "wrong-keys", data=data)
    name, arg, envval = distinctive()
    results = env.hq_concurrently([
        (d, "submit", "--name", name, "--env", f"CAPENV={envval}", "--", "touch", arg),
        (d, "job", "list"),
        (d, "job", "info", "1")])
    for r in results:
        assert r.returncode == 1, (r.args, r.stdout, r.stderr)
        assert "refused the connection" in r.stderr, r.stderr
        assert "visible-to-owner" not in r.stdout
    up, down = cap.captured()
    assert len(up) > 0, "the attempt did not go through the forwarder"
    assert_absent([up, down], [name, arg, envval, "visible-to-owner"])
    assert [j["name"] for j in env.hq_json("job", "list", "--all")] == ["visible-to-owner"]
    assert not (env.work / arg).exists()
    # A wrong secret means a wrong broker key too: the broker cannot open the HELLO,
    # so libzmq drops the connection before ZAP is asked (and nothing is logged; the
    # ZAP refusal itself is the next test).
    assert_still_serves(env)


# A CURVE peer through ctypes (libzmq + libsodium, no Python bindings needed), for the
# one case an access file cannot express: the right broker key with an unknown client
# key, which gets past the HELLO and is refused by ZAP.
ZMQ_DEALER, ZMQ_LINGER, ZMQ_RCVTIMEO = 5, 17, 27
ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY, ZMQ_CURVE_SERVERKEY = 48, 49, 50


def curve_libs():
    import ctypes
    import ctypes.util
    zmq = ctypes.CDLL(ctypes.util.find_library("zmq") or "libzmq.so.5")
    sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    zmq.zmq_ctx_new.restype = ctypes.c_void_p
    zmq.zmq_socket.restype = ctypes.c_void_p
    zmq.zmq_socket.argtypes = [ctypes.c_void_p, ctypes.c_int]
    zmq.zmq_setsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                   ctypes.c_size_t]
    zmq.zmq_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    zmq.zmq_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    zmq.zmq_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    zmq.zmq_close.argtypes = [ctypes.c_void_p]
    zmq.zmq_ctx_term.argtypes = [ctypes.c_void_p]
    sodium.crypto_kdf_derive_from_key.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                                  ctypes.c_uint64, ctypes.c_char_p,
                                                  ctypes.c_char_p]
    assert sodium.sodium_init() >= 0
    return ctypes, zmq, sodium


def curve_pair(secret_hex, which):
    """The (public, secret) key pair hq derives from an access-file secret
    (proto/wire/hq_access.c: KDF context "hqcurve1", id 1 = broker, 2 = role)."""
    ctypes, _, sodium = curve_libs()
    seed = ctypes.create_string_buffer(32)
    assert sodium.crypto_kdf_derive_from_key(seed, 32, which, b"hqcurve1",
                                             bytes.fromhex(secret_hex)) == 0
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    assert sodium.crypto_box_seed_keypair(pk, sk, seed) == 0
    return pk.raw, sk.raw


def random_pair():
    ctypes, _, sodium = curve_libs()
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    assert sodium.crypto_box_keypair(pk, sk) == 0
    return pk.raw, sk.raw


def curve_request(port, server_pk, pair, frame, timeout_ms=1500):
    """Sends one frame from a CURVE DEALER and returns the reply frame or None."""
    ctypes, zmq, _ = curve_libs()
    ctx = zmq.zmq_ctx_new()
    s = zmq.zmq_socket(ctx, ZMQ_DEALER)
    try:
        for opt, val in ((ZMQ_CURVE_SERVERKEY, server_pk), (ZMQ_CURVE_PUBLICKEY, pair[0]),
                         (ZMQ_CURVE_SECRETKEY, pair[1])):
            assert zmq.zmq_setsockopt(s, opt, val, 32) == 0
        for opt, v in ((ZMQ_LINGER, 0), (ZMQ_RCVTIMEO, timeout_ms)):
            iv = ctypes.c_int(v)
            assert zmq.zmq_setsockopt(s, opt, ctypes.byref(iv), ctypes.sizeof(iv)) == 0
        assert zmq.zmq_connect(s, f"tcp://127.0.0.1:{port}".encode()) == 0
        assert zmq.zmq_send(s, frame, len(frame), 0) == len(frame)
        buf = ctypes.create_string_buffer(1 << 16)
        n = zmq.zmq_recv(s, buf, len(buf), 0)
        return buf.raw[:n] if n >= 0 else None
    finally:
        zmq.zmq_close(s)
        zmq.zmq_ctx_term(ctx)


def hq_request(msg_type, request_id=7):
    """A body-less hq request frame (proto/wire/PROTOCOL.md, "Header")."""
    return (b"HQ" + bytes([1, msg_type]) + request_id.to_bytes(8, "big") + bytes(28))


def test_unknown_client_key_with_the_right_broker_key_is_refused_by_zap(cluster, captures):
    """Setup: a server and worker; a CURVE peer that knows the broker's client-socket
    public key (derived from the real secret) but uses a random key pair of its own,
    through the recording forwarder. Fault: it sends requests (server info, and a
    request frame carrying a distinctive string). Expected: ZAP refuses it and the
    broker logs the refusal; no reply comes, no job appears, and the capture holds
    none of the request's strings. Positive control: the same peer with the real
    client key pair gets a reply."""
    env = cluster
    secret = load_access(env)["client"]["secret_key"]
    broker_pk, _ = curve_pair(secret, 1)
    port = env.server_info()["client_port"]
    ok = curve_request(port, broker_pk, curve_pair(secret, 2), hq_request(1))
    assert ok is not None and ok[:2] == b"HQ" and ok[3] == 40, ok  # REPLY
    cap = captures(port)
    name, arg, _ = distinctive()
    payload = hq_request(3) + (name + " " + arg).encode()  # SUBMIT type, raw strings
    assert curve_request(cap.port, broker_pk, random_pair(), hq_request(1)) is None
    assert curve_request(cap.port, broker_pk, random_pair(), payload) is None
    wait_until(lambda: "Refused connection from" in env.server.stderr(), 10,
               "the broker to log the ZAP refusal")
    line = [x for x in env.server.stderr().splitlines() if "Refused connection from" in x][0]
    assert "127.0.0.1" in line and "CURVE" in line, line
    up, down = cap.captured()
    assert len(up) > 0 and b"CURVE" in up
    assert_absent([up, down], [name, arg])
    assert env.hq_json("job", "list", "--all") == []
    assert_still_serves(env)
