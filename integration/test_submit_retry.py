"""broker/GUARANTEES.md, case kill9-during-submit: `hq submit` sends an idempotency key
and retries the same request the Lazy Pirate way (proto/wire/PROTOCOL.md, "SUBMIT
idempotency key and retries"), so every job exists exactly once whether or not the
first attempt was acknowledged.

The broker's test hook HQ_TEST_SUBMIT_LOSE_REPLY=N applies its N-th submit (durably,
with --journal) and sends no reply, logging a line: the client is then provably
blocked on a submit that is already durable, which makes the kill deterministic."""

import collections
import json
import subprocess
import threading
import time

from hqtest import HQ, free_tcp_ports, journal_dir, kill9_server, wait_until

HOOK_LINE = "Test hook HQ_TEST_SUBMIT_LOSE_REPLY"
RESEND = "Resending the submit"


def start_broker(env, hook=None):
    e = dict(env.env)
    if hook is not None:
        e["HQ_TEST_SUBMIT_LOSE_REPLY"] = str(hook)
    proc = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                      "127.0.0.1", "--journal", journal_dir(env)], "server", env=e)
    env.server = proc
    env.wait_server(proc)
    return proc


def client_env(env, retry="60s", timeout="30s"):
    e = dict(env.env)
    e["HQ_SUBMIT_RETRY"] = retry
    e["HQ_SUBMIT_TIMEOUT"] = timeout
    return e


def submit(env, name, cenv, timeout=120):
    cmd = [str(HQ), "--server-dir", str(env.server_dir), "--output-mode", "json", "submit",
           "--name", name, "--", "true"]
    return subprocess.run(cmd, capture_output=True, text=True, env=cenv, cwd=str(env.work),
                          timeout=timeout)


def jobs_by_name(env):
    names = collections.defaultdict(list)
    for j in env.hq_json("job", "list", "--all"):
        names[j["name"]].append(j["id"])
    return names


def test_a_lost_reply_is_answered_again_on_retry_without_a_second_job(hq_env):
    env = hq_env
    start_broker(env, hook=2)
    cenv = client_env(env, retry="30s", timeout="1s")
    first = submit(env, "a", cenv)
    assert first.returncode == 0, first.stderr
    # the broker applies (and journals) b but does not answer: after 1 s the client
    # resends on a new connection and gets the same job id
    second = submit(env, "b", cenv)
    assert second.returncode == 0, second.stderr
    assert HOOK_LINE in env.server.stderr()
    assert RESEND in second.stderr, second.stderr
    assert "no reply in time" in second.stderr
    assert json.loads(second.stdout)["id"] == 2
    third = submit(env, "c", cenv)
    assert third.returncode == 0 and json.loads(third.stdout)["id"] == 3
    names = jobs_by_name(env)
    assert dict(names) == {"a": [1], "b": [2], "c": [3]}


def test_kill9_while_a_durable_submit_waits_for_its_reply_then_retry_after_restart(hq_env):
    """200 submits in a row; the 100th is durable but unanswered when the broker is
    killed; the restarted broker (new ports and keys, same journal) answers the retry
    from the journal's key, and the loop goes on. Every invocation exits 0 and every
    name exists exactly once."""
    env = hq_env
    n, hook = 200, 100
    first = start_broker(env, hook=hook)
    cenv = client_env(env)
    results = {}

    def loop():
        for i in range(n):
            results[i] = submit(env, f"job-{i}", cenv)

    t = threading.Thread(target=loop)
    t.start()
    try:
        wait_until(lambda: HOOK_LINE in first.stderr(), 60, "the broker to hold a reply")
        old_access = env.access_path().read_text()
        kill9_server(env)
        second = start_broker(env)
        assert env.access_path().read_text() != old_access, "a new run: new ports and keys"
    finally:
        t.join(timeout=300)
    assert not t.is_alive()
    failed = {i: r.stderr for i, r in results.items() if r.returncode != 0}
    assert len(results) == n and not failed, failed
    ids = {i: json.loads(r.stdout)["id"] for i, r in results.items()}
    held = results[hook - 1]
    assert RESEND in held.stderr, held.stderr
    assert "the connection to the server broke" in held.stderr, held.stderr
    retried = sum(r.stderr.count(RESEND) for r in results.values())
    print(f"\n{n} submits, 1 kill -9, {retried} resends by "
          f"{sum(1 for r in results.values() if RESEND in r.stderr)} invocation(s)")
    names = jobs_by_name(env)
    assert len(names) == n
    for i in range(n):
        assert names[f"job-{i}"] == [ids[i]], (i, names[f"job-{i}"], ids[i])
    # ids strictly ascending in submission order, none reused
    assert [ids[i] for i in range(n)] == list(range(1, n + 1))
    assert second.poll() is None


def test_kill9_at_an_arbitrary_point_with_concurrent_clients(hq_env):
    """Three clients submit concurrently while the broker is killed after about a third
    of the jobs exist: a submit in flight at the kill was durable or not, and either
    way its retry leaves exactly one job. An invocation that starts while no broker
    runs, or that reads the killed broker's access file while the restarted one already
    listens, fails at once without sending anything ("unreachable", or "refused the
    connection" in the handshake); the client loop then submits that name again, which
    is safe because nothing was sent."""
    env = hq_env
    per, loops = 40, 3
    start_broker(env)
    cenv = client_env(env)
    results = collections.defaultdict(list)
    stop_at = per * loops // 3

    def loop(k):
        for i in range(per):
            name = f"c{k}-{i}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                r = submit(env, name, cenv)
                results[name].append(r)
                if r.returncode == 0:
                    break
                # only a submit that was never sent may be repeated by hand: no broker
                # answered ("unreachable"), or the restarted broker, listening on the
                # same port before it wrote its new access file, refused the old file's
                # key in the handshake (nothing is sent before the handshake)
                text = r.stdout + r.stderr  # json mode prints the error on stdout
                never_sent = "unreachable" in text or "refused the connection" in text
                assert never_sent and RESEND not in text, text
                # the access file still names the killed broker until the new one
                # has written its own: wait for a server that answers
                wait_until(lambda: env.hq("server", "info", check=False).returncode == 0, 60,
                           "a server")

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(loops)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(env.hq_json("job", "list", "--all")) >= stop_at, 60,
                   f"{stop_at} jobs")
        kill9_server(env)
        start_broker(env)
    finally:
        for t in threads:
            t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    names = jobs_by_name(env)
    assert len(names) == per * loops, sorted(names)
    for name, rs in results.items():
        assert rs[-1].returncode == 0, (name, rs[-1].stderr)
        assert names[name] == [json.loads(rs[-1].stdout)["id"]], (name, names[name])
    resends = sum(r.stderr.count(RESEND) for rs in results.values() for r in rs)
    unsent = sum(1 for rs in results.values() for r in rs if r.returncode != 0)
    print(f"\n{per * loops} jobs by {loops} concurrent clients, 1 kill -9, {resends} resends, "
          f"{unsent} invocations refused before sending")


def test_when_the_window_expires_the_client_says_the_submit_may_or_may_not_exist(hq_env):
    env = hq_env
    first = start_broker(env, hook=1)
    held = subprocess.Popen(
        [str(HQ), "--server-dir", str(env.server_dir), "submit", "--name", "x", "--", "true"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=client_env(env, retry="1s"), cwd=str(env.work))
    try:
        wait_until(lambda: HOOK_LINE in first.stderr(), 30, "the broker to hold a reply")
        kill9_server(env)  # and no restart
        out, err = held.communicate(timeout=60)
    finally:
        if held.poll() is None:
            held.kill()
            held.communicate()
    assert held.returncode == 1
    assert "may or may not have been accepted" in out + err, out + err
    assert "hq job list" in out + err
    # it was durable: the restarted broker has it, once
    start_broker(env)
    assert dict(jobs_by_name(env)) == {"x": [1]}


def test_retry_keeps_going_while_a_restarting_server_refuses_the_stale_access_file(hq_env):
    """A durable but unanswered submit whose broker is killed; then another server (other
    keys) listens on the same client port while the access file still names the killed
    one, as a restarted broker does before it writes its new access file. The client's
    retries are refused in the handshake; it keeps retrying within the window instead of
    giving up, and gets its job id once the restarted broker has written its file."""
    env = hq_env
    port = str(free_tcp_ports()[0])
    e = dict(env.env)
    e["HQ_TEST_SUBMIT_LOSE_REPLY"] = "1"
    first = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                       "127.0.0.1", "--client-port", port, "--journal", journal_dir(env)],
                      "server", env=e)
    env.server = first
    env.wait_server(first)
    cmd = [str(HQ), "--server-dir", str(env.server_dir), "--output-mode", "json", "submit",
           "--name", "held", "--", "true"]
    client = env.spawn(cmd, "client", env=client_env(env, retry="120s", timeout="1s"))
    wait_until(lambda: HOOK_LINE in first.stderr(), 60, "the broker to hold the reply")
    kill9_server(env)
    other = env.spawn([HQ, "server", "start", "--server-dir", env.tmp / "other-server",
                       "--host", "127.0.0.1", "--client-port", port], "other-server")
    wait_until(lambda: "refused the access file's keys" in client.stderr(), 60,
               "the client's retry to be refused by the other server")
    assert client.poll() is None, "the client gave up:\n" + client.stderr()
    other.popen.terminate()
    other.popen.wait(timeout=30)
    restarted = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                           "127.0.0.1", "--client-port", port, "--journal", journal_dir(env)],
                          "server")
    env.server = restarted
    wait_until(lambda: client.poll() is not None, 120, "the submit to end")
    assert client.poll() == 0, client.stderr()
    assert json.loads(client.stdout())["id"] == 1
    assert dict(jobs_by_name(env)) == {"held": [1]}
