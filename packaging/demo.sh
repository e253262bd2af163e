#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to hq's main job: installs what is
# missing, builds, starts a broker and a worker on this machine, submits a small
# task array, waits for it, shows `hq job info` and one task's output, then stops
# everything it started.
# With HQ_DEMO_HQ=/path/to/hq it runs that (e.g. an installed) hq instead, and
# neither installs nor builds anything.
set -euo pipefail
hq=${HQ_DEMO_HQ:-}
if [ -z "$hq" ]; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  bash "$root/packaging/install-deps.sh"
  bash "$root/packaging/build.sh"
  build=${HQ_BUILD_DIR:-$root/build}
  hq=$build/hq
fi

demo=$(mktemp -d /tmp/hq-demo.XXXXXX)
server_dir=$demo/server
broker_pid=""
worker_pid=""
cleanup() {
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$demo"
}
trap cleanup EXIT

echo "== starting a broker (server dir $server_dir)"
"$hq" server start --server-dir "$server_dir" --host 127.0.0.1 >"$demo/broker.out" 2>"$demo/broker.log" &
broker_pid=$!
for _ in $(seq 100); do
  "$hq" server info --server-dir "$server_dir" >/dev/null 2>&1 && break
  kill -0 "$broker_pid" 2>/dev/null || { cat "$demo/broker.log"; exit 1; }
  sleep 0.1
done
"$hq" server info --server-dir "$server_dir"

echo "== starting a worker with 2 cpus"
"$hq" worker start --server-dir "$server_dir" --cpus 2 >"$demo/worker.out" 2>"$demo/worker.log" &
worker_pid=$!
"$hq" worker wait 1 --server-dir "$server_dir" 2>/dev/null || {
  for _ in $(seq 100); do
    [ -n "$("$hq" worker list --server-dir "$server_dir" --output-mode quiet)" ] && break
    sleep 0.1
  done
}
"$hq" worker list --server-dir "$server_dir"

echo "== submitting an array of 8 tasks"
cd "$demo"
"$hq" submit --server-dir "$server_dir" --name demo --array 1-8 -- \
  bash -c 'echo "task $HQ_TASK_ID of job $HQ_JOB_ID ran on $(hostname) with cpus $HQ_CPUS"'
"$hq" job wait last --server-dir "$server_dir"
echo "== hq job info"
"$hq" job info last --server-dir "$server_dir"
echo "== output of task 3 ($demo/job-1/3.stdout)"
"$hq" job cat last stdout --tasks 3 --server-dir "$server_dir"
echo "== all outputs"
"$hq" job cat last stdout --print-task-header --server-dir "$server_dir"

echo "== stopping"
"$hq" server stop --server-dir "$server_dir"
wait "$broker_pid" 2>/dev/null || true
broker_pid=""
wait "$worker_pid" 2>/dev/null || true
worker_pid=""
echo "demo: done"
