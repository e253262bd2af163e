"""Command-line syntax errors (exit 2, clap-style text on stderr in every mode) and
HQ-level errors (exit 1) (cli/REFERENCE.md §0.2, §1)."""

import json

import pytest

SYNTAX_CASES = [
    (["job", "list", "--foo"], "error: unexpected argument '--foo' found"),
    (["submit", "--time-limit", "abc", "--", "true"],
     "Could not parse PBS walltime. Use either `HH:MM:SS` or humantime format (2hours)"),
    (["submit", "--array", "5-3", "--", "true"], "Invalid range"),
    (["submit", "--array", "1-10:0", "--", "true"], "Invalid range"),
    (["submit", "--array", "1-5,3-7", "--", "true"], "Ranges overlap"),
    (["submit", "--crash-limit", "0", "--", "true"],
     "Crash limit cannot be 0. Use `never-restart` or `unlimited` instead."),
    (["submit", "--cpus", "0", "--", "true"], "Zero resources cannot be requested"),
    (["worker", "start", "--heartbeat", "1x"], "Could not parse PBS walltime"),
    (["worker", "list", "--all", "--filter", "running"], "cannot be used with"),
    (["job", "list", "--all", "--filter", "finished"], "cannot be used with"),
    (["job", "cancel", "1", "--reason", "x" * 201],
     "Cancel reason must be shorter than 200 you entered 201."),
]


@pytest.mark.parametrize("args,text", SYNTAX_CASES, ids=lambda v: " ".join(v)[:40]
                         if isinstance(v, list) else None)
@pytest.mark.parametrize("mode", [None, "json"])
def test_syntax_errors_exit_2_on_stderr(hq_env, args, text, mode):
    r = hq_env.hq(*args, mode=mode, check=False)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert text in r.stderr
    assert r.stdout == ""


def test_unknown_flag_message_is_clap_style(hq_env):
    r = hq_env.hq("job", "list", "--foo", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("error: unexpected argument '--foo' found")


def test_submit_without_command_is_a_syntax_error(hq_env):
    r = hq_env.hq("submit", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("error:")


def test_cpus_and_resource_cpus_cannot_be_combined(server):
    r = server.hq("submit", "--cpus", "1", "--resource", "cpus=1", "--", "true", check=False)
    assert r.returncode in (1, 2)
    assert "--cpus and --resource cpus=... cannot be combined" in r.stderr


def test_no_access_file_is_a_clear_error(hq_env):
    d = hq_env.tmp / "empty-dir"
    d.mkdir()
    r = hq_env.hq("job", "list", server_dir=d, check=False)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == f'No running instance of HQ found at "{d}".'
    assert lines[1] == ("Try to start the server: `hq server start --server-dir "
                        f"{d}` or use a different server directory.")
    assert "Caused by:" in lines
    r = hq_env.hq("job", "list", server_dir=d, mode="json", check=False)
    assert r.returncode == 1
    err = json.loads(r.stdout)
    assert list(err) == ["error"]
    assert err["error"].startswith(f'No running instance of HQ found at "{d}".\nTry to start')


def test_server_dir_that_is_a_file(hq_env):
    f = hq_env.tmp / "afile"
    f.write_text("x")
    r = hq_env.hq("job", "list", server_dir=f, check=False)
    assert r.returncode == 1
    assert r.stderr == f'Invalid server directory\n\nCaused by:\n    "{f}" is not a directory\n'


def test_job_wait_on_unknown_job_returns_0(server):
    r = server.hq("job", "wait", "42")
    assert r.returncode == 0 and r.stdout == ""


def test_job_info_unknown_logs_error(server):
    r = server.hq("job", "info", "5", check=False)
    assert "Job 5 not found" in r.stderr
