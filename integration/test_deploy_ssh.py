"""`hq worker deploy-ssh`: workers started over a real ssh connection (a real sshd on
127.0.0.1, see sshd_local.py) connect to the server and run tasks; stopping the
workers, stopping the server or terminating deploy-ssh ends them and deploy-ssh
returns; a remote worker that fails is reported as `Worker exited with code N`;
--show-output prints what the remote workers print; a bad host file is refused with a
clear error before any ssh is started."""

import json
import signal

import pytest

from hqtest import HQ, free_tcp_ports, wait_until

DEPLOY_TIMEOUT = 30.0  # ssh handshakes and worker registrations on a loaded machine


def write_hostfile(env, lines, name="hosts.txt"):
    path = env.tmp / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def start_deploy(env, sshd, hostfile, *worker_args, show_output=None, name="deploy"):
    """`hq worker deploy-ssh [--show-output] HOSTFILE [--show-output] --server-dir
    <env's> ARGS` in the background, with the test's ssh first on PATH; show_output is
    None, "before" or "after" HOSTFILE."""
    show = ["--show-output"]
    args = [HQ, "worker", "deploy-ssh"] + (show if show_output == "before" else [])
    args += [hostfile] + (show if show_output == "after" else [])
    args += ["--server-dir", env.server_dir, *worker_args]
    return env.spawn(args, name, env=sshd.env(env.env))


def run_deploy(env, sshd, hostfile, *worker_args, show_output=None):
    p = start_deploy(env, sshd, hostfile, *worker_args, show_output=show_output)
    rc = p.wait_exit(DEPLOY_TIMEOUT)
    return rc, p.stdout(), p.stderr()


def wait_workers(env, n, deploy):
    def registered():
        if deploy.poll() is not None:
            raise AssertionError(f"deploy-ssh exited with {deploy.poll()}:\n{deploy.stderr()}")
        workers = env.worker_list()
        return workers if len(workers) == n else None

    return wait_until(registered, DEPLOY_TIMEOUT, f"{n} workers deployed over ssh")


def exit_lines(stderr):
    return [line for line in stderr.splitlines() if "Worker exited with code" in line]


@pytest.mark.ssh
def test_workers_deployed_over_ssh_run_tasks_and_worker_stop_ends_deploy(server, sshd):
    # One line with an explicit port (`ssh -p`), one with the port of the ssh config;
    # a comment and a blank line in between are skipped.
    hostfile = write_hostfile(server, [f"127.0.0.1:{sshd.port}", "# the second node", "",
                                       "  localhost  "])
    deploy = start_deploy(server, sshd, hostfile, "--cpus", "2")
    wait_workers(server, 2, deploy)
    # The workers run in ssh logins with a pseudo-terminal (sshd sets SSH_TTY), and
    # their tasks inherit that environment.
    job = server.submit("--array", "1-8", "--", "printenv", "SSH_TTY")
    server.wait_job(job)
    counts = server.job_state_counts(job)
    assert counts["finished"] == 8, counts
    outputs = server.hq("job", "cat", str(job), "stdout").stdout.split()
    assert len(outputs) == 8 and all(o.startswith("/dev/pts/") for o in outputs), outputs

    server.hq("worker", "stop", "all")
    assert deploy.wait_exit(DEPLOY_TIMEOUT) == 0, deploy.stderr()
    assert exit_lines(deploy.stderr()) == []
    wait_until(lambda: not sshd.sessions(), DEPLOY_TIMEOUT, "the ssh sessions to end")


@pytest.mark.ssh
def test_server_stop_ends_deployed_workers_and_deploy_returns(server, sshd):
    hostfile = write_hostfile(server, ["127.0.0.1", "127.0.0.1"])
    deploy = start_deploy(server, sshd, hostfile, "--cpus", "1")
    wait_workers(server, 2, deploy)
    server.hq("server", "stop")
    # A worker whose server stops exits 1, which deploy-ssh reports for each host.
    assert deploy.wait_exit(DEPLOY_TIMEOUT) == 1
    err = deploy.stderr()
    assert [line.split(" ERROR ", 1)[1] for line in exit_lines(err)] == \
        ["Worker exited with code 1"] * 2, err
    assert "Workers on 2 of 2 hosts failed" in err
    wait_until(lambda: not sshd.sessions(), DEPLOY_TIMEOUT, "the ssh sessions to end")


@pytest.mark.ssh
def test_failing_remote_worker_is_reported_with_its_exit_code(server, sshd):
    closed_port = free_tcp_ports(1)[0]
    hostfile = write_hostfile(server, ["127.0.0.1", f"127.0.0.1:{closed_port}"])
    # `--cpus abc` passes the local syntax check and is refused by the remote worker
    # (exit 2); the second host refuses the connection (ssh exits 255).
    rc, out, err = run_deploy(server, sshd, hostfile, "--cpus", "abc")
    assert rc == 1, err
    codes = sorted(line.rsplit(" ", 1)[1] for line in exit_lines(err))
    assert codes == ["2", "255"], err
    assert "Workers on 2 of 2 hosts failed" in err
    assert f"127.0.0.1: exit code 2" in err
    assert f"127.0.0.1:{closed_port}: exit code 255: ssh: connect to host 127.0.0.1 port " \
           f"{closed_port}: Connection refused" in err
    # Without --show-output the remote output is not printed.
    assert "Invalid resource definition" not in out + err
    assert server.worker_list() == []


@pytest.mark.ssh
@pytest.mark.parametrize("position", ["before", "after"])
def test_show_output_prints_the_remote_workers_output(server, sshd, position):
    # --show-output is deploy-ssh's option before HOSTFILE and right after it.
    hostfile = write_hostfile(server, ["127.0.0.1"])
    rc, out, err = run_deploy(server, sshd, hostfile, "--manager", "slurm",
                              show_output=position)
    assert rc == 1
    assert exit_lines(err) and exit_lines(err)[0].endswith("Worker exited with code 1")
    assert "INFO HyperQueue " in out, out
    assert "SLURM_JOB_ID/SLURM_JOBID not found. The process is not running under SLURM" \
        in out, out


@pytest.mark.ssh
def test_terminating_deploy_ssh_ends_the_remote_workers(server, sshd):
    hostfile = write_hostfile(server, ["127.0.0.1", "localhost"])
    deploy = start_deploy(server, sshd, hostfile, "--cpus", "1")
    wait_workers(server, 2, deploy)
    work_dirs = list(sshd.remote_tmp.glob("hq-worker*"))
    assert len(work_dirs) == 2, work_dirs
    deploy.popen.send_signal(signal.SIGTERM)
    assert deploy.wait_exit(DEPLOY_TIMEOUT) == 0, deploy.stderr()
    assert exit_lines(deploy.stderr()) == []
    wait_until(lambda: server.worker_list() == [], DEPLOY_TIMEOUT,
               "the workers to leave the server")
    # The hangup of their terminal stopped them like SIGTERM (a killed worker would
    # leave its temporary work dir behind).
    wait_until(lambda: not any(d.exists() for d in work_dirs), DEPLOY_TIMEOUT,
               "the remote workers to remove their work dirs")
    wait_until(lambda: not sshd.sessions(), DEPLOY_TIMEOUT, "the ssh sessions to end")


# -- bad input: refused before any ssh runs ---------------------------------------------

@pytest.fixture
def ssh_tripwire(hq_env):
    """An `ssh` first on PATH that only records that it was run."""
    bin_dir = hq_env.tmp / "tripwire"
    bin_dir.mkdir()
    marker = hq_env.tmp / "ssh-was-run"
    script = bin_dir / "ssh"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {marker}\nexit 0\n")
    script.chmod(0o755)
    env = dict(hq_env.env)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env, marker


BAD_HOSTFILES = [
    (["127.0.0.1:0"], "Invalid port '0' in line 1 of host file '{path}': expected a number "
                      "from 1 to 65535"),
    (["a", "b:65536"], "Invalid port '65536' in line 2 of host file '{path}': expected a "
                       "number from 1 to 65535"),
    (["node1:ssh"], "Invalid port 'ssh' in line 1 of host file '{path}'"),
    (["node1:"], "Invalid port '' in line 1 of host file '{path}'"),
    (["[::1]:x"], "Invalid port 'x' in line 1 of host file '{path}'"),
    (["-oProxyCommand=evil"], "Invalid host '-oProxyCommand=evil' in line 1 of host file "
                              "'{path}': a host name cannot start with '-'"),
    (["node1 node2"], "Invalid host 'node1 node2' in line 1 of host file '{path}': a host "
                      "name cannot contain spaces"),
    ([":22"], "Invalid host ':22' in line 1 of host file '{path}': the host name is empty"),
    ([], "Host file '{path}' lists no hosts: write one `host` or `host:port` per line"),
    (["", "# only a comment", "   "], "Host file '{path}' lists no hosts"),
]


@pytest.mark.parametrize("lines,message", BAD_HOSTFILES)
def test_bad_hostfile_is_refused_before_ssh_runs(hq_env, ssh_tripwire, lines, message):
    env, marker = ssh_tripwire
    path = write_hostfile(hq_env, lines)
    r = hq_env.hq("worker", "deploy-ssh", path, "--cpus", "1", check=False, env=env)
    assert r.returncode == 1, r.stderr
    assert message.format(path=path) in r.stderr, r.stderr
    assert not marker.exists()


def test_missing_hostfile_is_refused(hq_env, ssh_tripwire):
    env, marker = ssh_tripwire
    path = hq_env.tmp / "no-such-file"
    r = hq_env.hq("worker", "deploy-ssh", path, check=False, env=env)
    assert r.returncode == 1
    assert r.stderr == f"Cannot read host file '{path}': No such file or directory\n"
    r = hq_env.hq("worker", "deploy-ssh", path, check=False, env=env, mode="json")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {
        "error": f"Cannot read host file '{path}': No such file or directory"}
    assert not marker.exists()


def test_bad_worker_arguments_are_refused_before_ssh_runs(hq_env, ssh_tripwire):
    env, marker = ssh_tripwire
    path = write_hostfile(hq_env, ["127.0.0.1"])
    r = hq_env.hq("worker", "deploy-ssh", path, "--cpuz", "1", check=False, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: unexpected argument '--cpuz' found"), r.stderr
    assert "Usage: hq worker start" in r.stderr
    r = hq_env.hq("worker", "deploy-ssh", check=False, env=env)
    assert r.returncode == 2
    assert "<HOSTFILE>" in r.stderr
    assert not marker.exists()


def test_missing_ssh_program_is_a_clear_error(hq_env):
    env = dict(hq_env.env)
    env["PATH"] = str(hq_env.tmp)  # no ssh there
    path = write_hostfile(hq_env, ["127.0.0.1"])
    r = hq_env.hq("worker", "deploy-ssh", path, check=False, env=env)
    assert r.returncode == 1
    assert r.stderr == "Cannot run ssh for host '127.0.0.1': No such file or directory\n"
