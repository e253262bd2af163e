"""hq server start / info / stop and the server directory layout (cli/REFERENCE.md §2,
§3.1, §5, §6)."""

import json
import os
import re
import stat

from hqtest import RFC3339_LOG, json_keys_in_order, vertical, wait_until

INFO_KEYS = ["Server UID", "Client host", "Client port", "Worker host", "Worker port",
             "Version", "Pid", "Start date", "Journal path"]
INFO_JSON_KEYS = ["client_host", "client_port", "journal_path", "pid", "server_dir",
                  "server_uid", "start_date", "version", "worker_host", "worker_port"]


def test_server_info_table_has_the_documented_rows(server):
    r = server.hq("server", "info")
    keys, info = vertical(r.stdout)
    assert keys == INFO_KEYS
    assert re.fullmatch(r"[A-Za-z0-9]{6}", info["Server UID"].strip())
    assert info["Client host"].strip() == "127.0.0.1"
    assert info["Worker host"].strip() == "127.0.0.1"
    assert int(info["Client port"]) > 0 and int(info["Worker port"]) > 0
    assert info["Client port"] != info["Worker port"]
    assert int(info["Pid"]) == server.server.pid
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", info["Start date"].strip())
    assert info["Journal path"].strip() == ""


def test_server_info_json_has_sorted_keys_and_real_ports(server):
    r = server.hq("server", "info", mode="json")
    pairs = json_keys_in_order(r.stdout)
    assert [k for k, _ in pairs] == INFO_JSON_KEYS
    info = json.loads(r.stdout)
    assert info["server_dir"] is None
    assert info["journal_path"] is None
    assert info["client_host"] == "127.0.0.1" and info["worker_host"] == "127.0.0.1"
    assert isinstance(info["client_port"], int) and isinstance(info["worker_port"], int)
    assert info["pid"] == server.server.pid
    assert re.fullmatch(r"[A-Za-z0-9]{6}", info["server_uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z",
                        info["start_date"])
    # pretty-printed with a 2-space indent
    assert '\n  "client_host": "127.0.0.1"' in r.stdout


def test_server_info_quiet_prints_nothing(server):
    r = server.hq("server", "info", mode="quiet")
    assert r.stdout == ""


def test_access_file_layout_modes_and_key_order(server):
    sd = server.server_dir
    cur = sd / "hq-current"
    assert cur.is_symlink()
    target = os.readlink(cur)
    assert os.path.realpath(cur) == str((sd / "001").resolve())
    assert target.endswith("001")
    assert stat.S_IMODE(os.stat(sd).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sd / "001").st_mode) == 0o700
    acc = sd / "001" / "access.json"
    st = os.stat(acc)
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert st.st_uid == os.getuid()
    text = acc.read_text()
    assert not text.endswith("\n")
    pairs = json_keys_in_order(text)
    assert [k for k, _ in pairs] == ["version", "server_uid", "client", "worker"]
    d = dict(pairs)
    for role in ("client", "worker"):
        assert [k for k, _ in d[role]] == ["host", "port", "secret_key"]
        r = dict(d[role])
        assert r["host"] == "127.0.0.1"
        assert re.fullmatch(r"[0-9a-f]{64}", r["secret_key"])
    assert dict(d["client"])["secret_key"] != dict(d["worker"])["secret_key"]
    info = server.server_info()
    assert dict(d["client"])["port"] == info["client_port"]
    assert dict(d["worker"])["port"] == info["worker_port"]
    assert d["server_uid"] == info["server_uid"]
    assert d["version"] == info["version"]
    # pretty JSON, 2-space indent, nested objects one key per line
    assert text.startswith('{\n  "version": ')
    assert '\n  "client": {\n    "host": "127.0.0.1",\n    "port": ' in text


def test_server_start_logs_and_prints_its_table(hq_env):
    proc = hq_env.start_server()
    hq_env.hq("server", "stop")
    assert proc.wait_exit() == 0
    err = proc.stderr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert re.match(r"^\S+ INFO HyperQueue \S+", lines[0]), err
    assert RFC3339_LOG.match(lines[0]), err
    assert "No online server found, starting a new server" in err
    acc = os.path.join(str(hq_env.server_dir), "001", "access.json")
    assert f"Storing access file as '{acc}'" in err or \
        f"Storing access file as '{hq_env.server_dir / 'hq-current' / 'access.json'}'" in err, err
    assert "Received Stop command from client" in err
    assert "Stopping server" in err
    keys, info = vertical(proc.stdout())
    assert keys == ["Server directory"] + INFO_KEYS
    assert info["Server directory"].strip() == str(hq_env.server_dir)


def test_second_start_on_the_same_dir_is_refused(server):
    sd = server.server_dir
    r = server.hq("server", "start", "--host", "127.0.0.1", check=False, timeout=30)
    assert r.returncode == 1
    assert (f"Server at {sd} is already online, please stop it first using "
            f"`hq server stop --server-dir {sd}`") in r.stderr
    # the first server is untouched and still serves
    assert server.server.poll() is None
    assert os.path.realpath(sd / "hq-current").endswith("001")
    assert not (sd / "002" / "access.json").exists()
    server.hq("job", "list")


def test_server_stop_stops_broker_and_workers(server):
    w = server.start_worker()
    r = server.hq("server", "stop")
    assert r.stdout == ""
    assert server.server.wait_exit() == 0
    assert not os.path.lexists(server.server_dir / "hq-current")
    assert w.proc.wait_exit() == 1


def test_server_stop_json_prints_empty_object(server):
    r = server.hq("server", "stop", mode="json")
    assert json.loads(r.stdout) == {}
    assert server.server.wait_exit() == 0


def test_restart_creates_next_run_dir_and_new_keys(hq_env):
    hq_env.start_server()
    first = hq_env.access_path().read_text()
    hq_env.hq("server", "stop")
    assert hq_env.server.wait_exit() == 0
    hq_env.start_server()
    assert os.path.realpath(hq_env.server_dir / "hq-current").endswith("002")
    assert (hq_env.server_dir / "001" / "access.json").read_text() == first
    assert hq_env.access_path().read_text() != first
    hq_env.hq("job", "list")


def test_stale_access_file_is_ignored_at_start(hq_env):
    hq_env.start_server()
    srv = hq_env.server
    srv.popen.kill()
    srv.popen.wait()
    # hq-current still points to a run whose server is gone
    hq_env.start_server()
    assert os.path.realpath(hq_env.server_dir / "hq-current").endswith("002")
    hq_env.hq("job", "list")


def test_sigint_stops_the_server_with_exit_0(server):
    import signal
    server.server.popen.send_signal(signal.SIGINT)
    assert server.server.wait_exit() == 0
    err = server.server.stderr()
    assert "Received SIGINT, attempting to stop" in err
    wait_until(lambda: "Stopping server" in server.server.stderr(), 5, "stop log")
