#!/usr/bin/env bash
# slurm-local.sh - a real single-node SLURM (munged + slurmctld + slurmd) on this machine,
# for hq's end-to-end tests of workers in SLURM allocations (integration/test_slurm.py,
# whose fixture in integration/conftest.py runs this script).
#
# Needs root (the daemons run as root) on Debian 12, and no systemd: the daemons are
# plain background processes; no cgroups (proctrack/linuxproc, task/none), no accounting
# daemon. Nothing under /etc is changed (apart from the apt install): clients (sbatch,
# squeue, scontrol, scancel) and everything started under SLURM find the cluster through
# SLURM_CONF. Everything the script writes is under $SLURM_LOCAL_DIR.
#
# Usage:  slurm-local.sh start|stop|status|env|restart
#   start    installs the SLURM packages if missing (apt, with the packages' init scripts
#            kept from starting system-wide daemons), writes the configuration, starts
#            the daemons and waits until the node is idle. Idempotent: if the daemons it
#            started are running and answering, it only prints the env line.
#   stop     cancels every job of this cluster, then stops the daemons this script
#            started, by the PIDs it recorded in $SLURM_LOCAL_DIR/pids/ (TERM, then KILL).
#   status   which daemons run (exit 1 if one is missing), sinfo, squeue.
#   env      prints "export SLURM_CONF=..." (eval "$(slurm-local.sh env)").
#
# Environment (all optional):
#   SLURM_LOCAL_DIR           state/config/log dir                  (default /tmp/slurm-local)
#   SLURM_LOCAL_CTLD_PORT     slurmctld port                        (default 6817)
#   SLURM_LOCAL_SLURMD_PORT   slurmd port                           (default 6818)
#   SLURM_LOCAL_PARTITION     name of the one partition             (default debug)
#   SLURM_LOCAL_CPUS          advertise this many CPUs instead of the real count
#   SLURM_LOCAL_KEEP_STATE    1 = keep slurmctld's saved state on start (default: clear)
#   SLURM_LOCAL_SCHED_PARAMS  SchedulerParameters= value (default: SLURM's defaults, which
#                             start batch jobs on a ~3 s cycle); "fast" = batch_sched_delay=0
#   SLURM_LOCAL_TIMEOUT       seconds to wait for each daemon and for the idle node
#                             (default 90)
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/slurm-local}
CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-6818}
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-90}
NODE=localhost
CONF=$DIR/etc/slurm.conf
PIDS=$DIR/pids
DAEMONS=(munged slurmctld slurmd)
PACKAGES=(slurmctld slurmd slurm-client munge)

export PATH=$PATH:/usr/sbin:/sbin

log() { echo "slurm-local: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (SlurmUser=root, apt install)"

# ---------------------------------------------------------------- install
need_install() {
    local b
    for b in slurmctld slurmd sbatch squeue scancel scontrol sinfo munged; do
        command -v "$b" >/dev/null 2>&1 || return 0
    done
    return 1
}

install_packages() {
    log "installing ${PACKAGES[*]} (apt) ..."
    export DEBIAN_FRONTEND=noninteractive
    local made_policy=0 rc=0 apt_log
    # keep the packages' init scripts from starting system-wide daemons
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_log=$(mktemp "${TMPDIR:-/tmp}/slurm-local-apt.XXXXXX")
    {
        apt-get -o DPkg::Lock::Timeout=600 update -qq &&
            apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
                "${PACKAGES[@]}"
    } >"$apt_log" 2>&1 || rc=$?
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ "$rc" != 0 ]; then
        tail -20 "$apt_log" >&2
        rm -f "$apt_log"
        die "apt-get failed (rc=$rc)"
    fi
    rm -f "$apt_log"
}

# ---------------------------------------------------------------- helpers
# pid_alive NAME: the PID recorded for NAME is alive and is the daemon started for $DIR
pid_alive() {
    local f=$PIDS/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -d "/proc/$pid" ] || return 1
    # guard against PID reuse: the command must be the daemon started here
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR" || return 1
    ! gone "$pid"
}

# gone PID: no such process, or a zombie
gone() { [ ! -d "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]; }

port_busy() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

node_state() { SLURM_CONF=$CONF sinfo -h -n "$NODE" -o %t 2>/dev/null | head -1; }

print_env() { echo "export SLURM_CONF=$CONF"; }

show_logs() {
    local f
    for f in "$@"; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

# wait_for WHAT CMD...: polls CMD until it succeeds; dies after $TIMEOUT seconds or as
# soon as one of the daemons started so far has died
wait_for() {
    local what=$1 deadline=$((SECONDS + TIMEOUT)) d
    shift
    while ! "$@"; do
        for d in "${DAEMONS[@]}"; do
            if [ -s "$PIDS/$d.pid" ] && gone "$(cat "$PIDS/$d.pid")"; then
                show_logs "$DIR/log/$d.out" "$DIR/log/$d.log"
                die "$d died while waiting for $what"
            fi
        done
        [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${TIMEOUT}s waiting for $what"
        sleep 0.1
    done
}

# start_daemon NAME CMD...: runs CMD in the background in its own session, records its PID
start_daemon() {
    local name=$1
    shift
    setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
    echo "$!" >"$PIDS/$name.pid"
    log "started $name (pid $!)"
}

write_config() {
    mkdir -p "$DIR/etc" "$DIR/munge" "$DIR/run" "$DIR/state/ctld" "$DIR/state/slurmd" \
        "$DIR/log" "$PIDS"
    chmod 755 "$DIR" "$DIR/run" # munged: the socket's dir must be searchable by all
    chmod 700 "$DIR/munge"      # munged: the key's dir must be private
    if [ ! -s "$DIR/munge/munge.key" ]; then
        if command -v mungekey >/dev/null 2>&1; then
            mungekey -c -k "$DIR/munge/munge.key"
        else
            dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1 count=1024 2>/dev/null
        fi
        chmod 600 "$DIR/munge/munge.key"
    fi

    # the hardware as slurmd sees it, on a node named "localhost"
    local hw overrides="" sched=${SLURM_LOCAL_SCHED_PARAMS:-}
    hw=$(slurmd -C 2>/dev/null | head -1 | sed -e 's/^NodeName=[^ ]* *//')
    [ -n "$hw" ] || die "slurmd -C printed nothing"
    if [ -n "${SLURM_LOCAL_CPUS:-}" ]; then
        hw="CPUs=$SLURM_LOCAL_CPUS RealMemory=$(echo "$hw" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
        overrides="SlurmdParameters=config_overrides"
    fi
    [ "$sched" = fast ] && sched="batch_sched_delay=0"
    [ -n "$sched" ] && sched="SchedulerParameters=$sched"

    cat >"$CONF" <<EOF
# written by integration/tools/slurm-local.sh: a single-node test cluster
ClusterName=hqlocal
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/run/munge.socket
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/etc/plugstack.conf
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SchedulerType=sched/backfill
$sched
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=300
SlurmdTimeout=300
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$DIR/etc/plugstack.conf"
    print_env >"$DIR/env.sh"
}

munge_socket_ready() { [ -S "$DIR/run/munge.socket" ]; }
ctld_answers() { SLURM_CONF=$CONF scontrol ping 2>/dev/null | grep -q UP; }
node_ready() {
    case "$(node_state || true)" in
        idle | mix | alloc) return 0 ;;
    esac
    return 1
}

# ---------------------------------------------------------------- commands
cmd_start() {
    if pid_alive munged && pid_alive slurmctld && pid_alive slurmd && node_ready; then
        log "already running (node $NODE: $(node_state))"
        print_env
        return 0
    fi
    if pid_alive munged || pid_alive slurmctld || pid_alive slurmd; then
        log "partially running; stopping what was started here, then starting clean"
        cmd_stop
    fi
    if need_install; then install_packages; fi
    need_install && die "SLURM binaries still missing after the install"

    local p
    for p in "$CTLD_PORT" "$SLURMD_PORT"; do
        port_busy "$p" && die "TCP port $p is in use (set SLURM_LOCAL_CTLD_PORT / SLURM_LOCAL_SLURMD_PORT)"
    done

    local t0=$SECONDS clear=-c
    write_config
    rm -f "$PIDS"/*.pid "$DIR/run/munge.socket" "$DIR/run/munge.socket.lock"
    start_daemon munged munged -F --socket="$DIR/run/munge.socket" \
        --key-file="$DIR/munge/munge.key" --pid-file="$DIR/run/munged.pid" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_for "the munged socket" munge_socket_ready

    [ "${SLURM_LOCAL_KEEP_STATE:-0}" = 1 ] && clear=""
    start_daemon slurmctld slurmctld -D $clear -f "$CONF"
    wait_for "slurmctld to answer" ctld_answers
    start_daemon slurmd slurmd -D -N "$NODE" -f "$CONF"
    wait_for "node $NODE to be idle" node_ready
    log "node $NODE is $(node_state) after $((SECONDS - t0))s; partition $PARTITION; config $CONF"
    print_env
}

poll_gone() { # PID TENTHS
    local i
    for i in $(seq "$2"); do
        gone "$1" && return 0
        sleep 0.1
    done
    gone "$1"
}

stop_one() {
    local name=$1 pid
    if ! pid_alive "$name"; then
        rm -f "$PIDS/$name.pid"
        return 0
    fi
    pid=$(cat "$PIDS/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    if ! poll_gone "$pid" 100; then
        log "$name (pid $pid) ignored TERM for 10s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        poll_gone "$pid" 50 || log "$name (pid $pid) still there after KILL"
    fi
    rm -f "$PIDS/$name.pid"
    log "stopped $name (pid $pid)"
}

jobs_left() { [ -n "$(SLURM_CONF=$CONF squeue -h -t R,CG,S -o %A 2>/dev/null)" ]; }

cmd_stop() {
    if pid_alive slurmctld; then
        local jobs i
        jobs=$(SLURM_CONF=$CONF squeue -h -o %A 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            SLURM_CONF=$CONF scancel $jobs 2>/dev/null || true
            # running and completing jobs end within KillWait (5 s) plus a margin
            for i in $(seq 300); do
                jobs_left || break
                sleep 0.1
            done
        fi
    fi
    stop_one slurmd
    stop_one slurmctld
    stop_one munged
}

cmd_status() {
    local d rc=0
    for d in "${DAEMONS[@]}"; do
        if pid_alive "$d"; then
            echo "$d: running (pid $(cat "$PIDS/$d.pid"))"
        else
            echo "$d: not running"
            rc=1
        fi
    done
    echo "dir: $DIR  config: $CONF  ports: slurmctld $CTLD_PORT, slurmd $SLURMD_PORT"
    if pid_alive slurmctld; then
        SLURM_CONF=$CONF sinfo || rc=1
        SLURM_CONF=$CONF squeue || rc=1
    fi
    return $rc
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart)
        cmd_stop
        cmd_start
        ;;
    status) cmd_status ;;
    env) print_env ;;
    *)
        echo "usage: $0 start|stop|status|env|restart" >&2
        exit 2
        ;;
esac
