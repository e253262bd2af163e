"""The command line explains itself (cli/REFERENCE.md §0, §3.9): --help with usage
lines, Arguments and defaults, typo tips, missing arguments with the usage line,
--version of hq-broker and hq-worker, `hq doc`, and the bash completion generated
from the command table, run in a real bash. No server is needed."""

import re
import subprocess

import pytest

from hqtest import BUILD, HQ, base_env


def run(*args, program=HQ, check=False, **kw):
    return subprocess.run([str(program), *args], capture_output=True, text=True,
                          env=base_env(), timeout=30, check=check, **kw)


def test_help_shows_positionals_arguments_and_defaults():
    r = run("job", "cat", "--help", check=True)
    assert "Usage: hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>\n" in r.stdout
    assert "\nArguments:\n  <SELECTOR>" in r.stdout
    assert "[possible values: stdout, stderr]" in r.stdout
    r = run("submit", "--help", check=True)
    assert "Usage: hq submit [OPTIONS] [--] <COMMANDS>...\n" in r.stdout
    assert "--crash-limit <CRASH_LIMIT>" in r.stdout and "[default: 5]" in r.stdout


def test_a_typo_in_a_subcommand_gets_a_tip():
    r = run("job", "lsit")
    assert r.returncode == 2
    assert r.stderr.startswith("error: unrecognized subcommand 'lsit'\n\n"
                               "  tip: a similar subcommand exists: 'list'\n")
    assert "Usage: hq job [OPTIONS] <COMMAND>" in r.stderr
    r = run("wrker")
    assert r.returncode == 2 and "tip: a similar subcommand exists: 'worker'" in r.stderr
    r = run("frobnicate")
    assert r.returncode == 2 and "tip:" not in r.stderr


def test_a_typo_in_an_option_gets_a_tip():
    r = run("job", "list", "--fliter", "running")
    assert r.returncode == 2
    assert "tip: a similar argument exists: '--filter'" in r.stderr
    assert r.stdout == ""


def test_a_missing_argument_prints_the_usage_line():
    r = run("job", "cat", "1")
    assert r.returncode == 2
    assert r.stderr == ("error: the following required arguments were not provided:\n"
                        "  <stdout|stderr>\n\n"
                        "Usage: hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>\n\n"
                        "For more information, try '--help'.\n")


@pytest.mark.parametrize("program", ["hq-broker", "hq-worker"])
def test_broker_and_worker_print_their_version(program):
    version = run("--version", check=True).stdout.split()[1]
    r = run("--version", program=BUILD / program, check=True)
    assert r.stdout == f"{program} {version}\n"
    r = run("--help", program=BUILD / program, check=True)
    assert "Usage: hq " in r.stdout and "--version" in r.stdout


def test_doc_names_the_man_page_and_the_reference_section():
    r = run("doc", "job", check=True)
    assert "hq-job(1)" in r.stdout and "cli/REFERENCE.md §3.4" in r.stdout
    r = run("doc", "job", "cat", check=True)
    assert "hq-job(1)" in r.stdout
    r = run("doc", "selectors", check=True)
    assert "§1.2" in r.stdout
    r = run("doc", check=True)
    assert "Concepts:" in r.stdout and "generate-completion" in r.stdout
    r = run("doc", "jbo")
    assert r.returncode == 2 and "tip: a similar topic exists: 'job'" in r.stderr


def complete(*words):
    """What bash's completion function offers for the words (the last is the one
    being completed), in a real bash with the script hq generated."""
    script = ('source <("$HQ" generate-completion bash)\n'
              'hq() { "$HQ" "$@"; }\n'
              'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hq\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = base_env()
    env["HQ"] = str(HQ)
    r = subprocess.run(["bash", "-c", script, "bash", "hq", *words], capture_output=True,
                       text=True, env=env, timeout=30, check=True)
    return r.stdout.split()


def test_bash_completion_in_a_real_bash():
    assert complete("jo") == ["job", "journal"]
    assert complete("job", "")[:4] == ["list", "summary", "info", "cancel"]
    assert "submit-file" in complete("job", "")
    assert complete("submit", "--cp") == ["--cpus"]
    assert complete("job", "cat", "1", "") == ["stdout", "stderr"]
    assert complete("--output-mode", "") == ["cli", "json", "quiet"]
    assert complete("worker", "list", "--filter", "r") == ["running"]
    assert complete("generate-completion", "") == ["bash", "elvish", "fish", "powershell",
                                                   "zsh"]
    # the global flags are offered everywhere, and the hidden command is not
    assert "--server-dir" in complete("job", "list", "--")
    assert "generate-man" not in complete("")


def test_zsh_completion_in_a_real_zsh(tmp_path):
    script = tmp_path / "_hq"
    script.write_text(run("generate-completion", "zsh", check=True).stdout)
    body = ("compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- \"$@\"; }\n"
            "_files() { print FILES; }\n"
            f"source {script}\n"
            "words=(hq \"$@\"); CURRENT=${#words}; _hq\n")

    def zcomplete(*words):
        r = subprocess.run(["zsh", "-c", body, "zsh", *words], capture_output=True, text=True,
                           timeout=30, check=True)
        return r.stdout.split()

    # zsh filters the candidates by the typed prefix itself
    assert "journal" in zcomplete("jo") and "job" in zcomplete("jo")
    assert zcomplete("job", "cat", "1", "") == ["stdout", "stderr"]
    assert "--cpus" in zcomplete("submit", "--cp")
    assert zcomplete("submit", "echo", "") == ["FILES"]


def test_fish_completion_in_a_real_fish(tmp_path):
    script = tmp_path / "hq.fish"
    script.write_text(run("generate-completion", "fish", check=True).stdout)

    def fcomplete(line):
        r = subprocess.run(["fish", "--no-config", "-c",
                            f"function hq; end; source {script}; complete -C'{line}'"],
                           capture_output=True, text=True, timeout=30, check=True)
        return sorted(x.split("\t")[0] for x in r.stdout.splitlines())

    assert fcomplete("hq jo") == ["job", "journal"]
    assert fcomplete("hq submit --cp") == ["--cpus"]
    assert fcomplete("hq job cat 1 ") == ["stderr", "stdout"]


def test_every_completion_shell_and_an_unknown_one():
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"]:
        r = run("generate-completion", shell, check=True)
        assert "submit-file" in r.stdout, shell
    r = run("generate-completion", "tcsh")
    assert r.returncode == 2 and "[possible values: bash, elvish" in r.stderr
    # packaging/install-deps.sh installs zsh, fish and groff: the scripts must parse.
    subprocess.run(["fish", "--no-execute"], input=run("generate-completion", "fish").stdout,
                   text=True, check=True, timeout=30)
    subprocess.run(["zsh", "-n"], input=run("generate-completion", "zsh").stdout,
                   text=True, check=True, timeout=30)


def test_man_pages_are_written_and_render(tmp_path):
    run("generate-man", str(tmp_path), "--completions", check=True)
    pages = sorted(p.name for p in tmp_path.glob("*.1"))
    assert pages == ["hq-alloc.1", "hq-job.1", "hq-journal.1", "hq-output-log.1", "hq-server.1",
                     "hq-submit.1", "hq-task.1", "hq-worker.1", "hq.1"]
    assert (tmp_path / "hq.bash").exists() and (tmp_path / "_hq").exists()
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(tmp_path / "hq-job.1")],
                       capture_output=True, text=True, timeout=30, check=True)
    assert r.stderr == ""
    text = re.sub(".\b", "", r.stdout)  # no overstrike (bold, underline)
    assert "hq-job - Commands for submitting and managing jobs" in text
    assert "hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>" in text
