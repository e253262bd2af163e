#!/usr/bin/python3
"""fakebatch.py - a small stand-in for PBS (which has no Debian package) and for the
parts of SLURM one local slurmd cannot do (allocations of several nodes, submissions
that fail or print garbage, a controlled queue delay), for hq's automatic-allocation
tests. Installed by the tests as symbolic links named sbatch, scontrol, scancel,
qsub, qstat and qdel in a directory put first on PATH; it acts on the name it was
started as.

State and record live in $FAKEBATCH_DIR:
  log        one JSON object per line for every call and job transition:
             {"t": <unix time>, "op": "submit"|"start"|"end"|"cancel"|"status", "id": ...,
              "argv": [...], "nodes": n, "held": bool}
  jobs/<id>  the job's JSON state {"state": "Q"|"R"|"F", "exit": n, "canceled": bool, ...}
Knobs (environment of the submitting process):
  FAKEBATCH_FAIL=1        submissions fail (exit 1, a message on stderr)
  FAKEBATCH_GARBAGE=1     submissions exit 0 but print no job id
  FAKEBATCH_DELAY=S       a job waits S seconds in the queue before it runs
  FAKEBATCH_NORUN=1       jobs stay queued until canceled
  FAKEBATCH_SUBMIT_DELAY=S  a submission takes S seconds (logged as "submitting" first)
A job runs its script with bash (SLURM_JOB_ID/SLURM_JOB_END_TIME or PBS_JOBID/
PBS_ENVIRONMENT set), its output going where the script's header says.
"""

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time

STATE = os.environ.get("FAKEBATCH_DIR", "/tmp/fakebatch")
JOBS = os.path.join(STATE, "jobs")


def log(**rec):
    rec["t"] = time.time()
    with open(os.path.join(STATE, "log"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(rec) + "\n")


def job_path(job_id):
    return os.path.join(JOBS, re.sub(r"[^0-9A-Za-z.]", "_", job_id))


def load(job_id):
    try:
        with open(job_path(job_id)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save(job_id, job):
    tmp = job_path(job_id) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(job, f)
    os.replace(tmp, job_path(job_id))


def next_id():
    os.makedirs(JOBS, exist_ok=True)
    with open(os.path.join(STATE, "counter"), "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read().strip() or "0") + 1
        f.seek(0)
        f.truncate()
        f.write(str(n))
    return n


def parse_header(script, prefix):
    """The script's #SBATCH/#PBS lines as a list of argument strings."""
    out = []
    with open(script) as f:
        for line in f:
            if line.startswith(prefix + " "):
                out.append(line[len(prefix) + 1:].rstrip("\n"))
    return out


def seconds(hms):
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s


def submit(pbs, argv):
    script = argv[-1]
    held = "--hold" in argv
    if os.environ.get("FAKEBATCH_SUBMIT_DELAY"):
        log(op="submitting", argv=argv)
        time.sleep(float(os.environ["FAKEBATCH_SUBMIT_DELAY"]))
    hdr = parse_header(script, "#PBS" if pbs else "#SBATCH")
    if os.environ.get("FAKEBATCH_FAIL") == "1":
        log(op="submit-failed", argv=argv)
        sys.stderr.write(("qsub" if pbs else "sbatch") +
                         ": error: Batch job submission failed: Invalid account\n")
        return 1
    if os.environ.get("FAKEBATCH_GARBAGE") == "1":
        log(op="submit-garbage", argv=argv)
        print("Your job is very important to us")
        return 0
    opts = {"nodes": 1, "stdout": None, "stderr": None, "walltime": "00:10:00"}
    for h in hdr:
        if pbs:
            if h == "-h":
                held = True
            elif h.startswith("-l select="):
                opts["nodes"] = int(h.split("=", 1)[1])
            elif h.startswith("-o "):
                opts["stdout"] = h[3:]
            elif h.startswith("-e "):
                opts["stderr"] = h[3:]
            elif h.startswith("-l walltime="):
                opts["walltime"] = h.split("=", 1)[1]
        else:
            if h.startswith("--nodes="):
                opts["nodes"] = int(h.split("=", 1)[1])
            elif h.startswith("--output="):
                opts["stdout"] = h.split("=", 1)[1]
            elif h.startswith("--error="):
                opts["stderr"] = h.split("=", 1)[1]
            elif h.startswith("--time="):
                opts["walltime"] = h.split("=", 1)[1]
    n = next_id()
    job_id = f"{n}.fakepbs" if pbs else str(n)
    job = {"state": "Q", "exit": None, "canceled": False, "held": held, "pbs": pbs,
           "script": os.path.abspath(script), "cwd": os.getcwd(), **opts}
    save(job_id, job)
    log(op="submit", id=job_id, argv=argv, nodes=opts["nodes"], held=held)
    if not held and os.environ.get("FAKEBATCH_NORUN") != "1":
        runner = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "__run", job_id],
            start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        job["runner"] = runner.pid
        save(job_id, job)
    print(job_id if pbs else f"Submitted batch job {job_id}")
    return 0


def run(job_id):
    delay = float(os.environ.get("FAKEBATCH_DELAY", "0"))
    end = time.time() + delay
    while time.time() < end:
        time.sleep(0.05)
        job = load(job_id)
        if not job or job["canceled"]:
            return 0
    job = load(job_id)
    if not job or job["canceled"]:
        return 0
    job["state"] = "R"
    save(job_id, job)
    log(op="start", id=job_id, nodes=job["nodes"])
    env = dict(os.environ)
    if job["pbs"]:
        env.update(PBS_JOBID=job_id, PBS_ENVIRONMENT="PBS_BATCH")
    else:
        env.update(SLURM_JOB_ID=job_id,
                   SLURM_JOB_END_TIME=str(int(time.time()) + seconds(job["walltime"])))
    out = open(job["stdout"] or os.devnull, "ab")
    err = open(job["stderr"] or os.devnull, "ab")
    rc = subprocess.call(["bash", job["script"]], cwd=job["cwd"], env=env,
                         stdout=out, stderr=err)
    job = load(job_id)
    job["state"] = "F"
    job["exit"] = rc
    save(job_id, job)
    log(op="end", id=job_id, exit=rc)
    return 0


def cancel(argv):
    for job_id in argv[1:]:
        job = load(job_id)
        log(op="cancel", id=job_id, known=job is not None,
            was=job["state"] if job else None)
        if not job:
            sys.stderr.write(f"scancel: error: Invalid job id {job_id}\n")
            return 1
        job["canceled"] = True
        if job["state"] != "F":
            was_running = job["state"] == "R"
            job["state"] = "F"
            job["exit"] = 271
            save(job_id, job)
            if was_running and job.get("runner"):
                try:
                    os.killpg(job["runner"], signal.SIGTERM)
                except OSError:
                    pass
                log(op="end", id=job_id, exit=271)
    return 0


SLURM_STATE = {"Q": "PENDING", "R": "RUNNING"}


def scontrol(argv):
    job_id = argv[-1]
    job = load(job_id)
    log(op="status", id=job_id, argv=argv)
    if not job:
        sys.stderr.write("slurm_load_jobs error: Invalid job id specified\n")
        return 1
    st = SLURM_STATE.get(job["state"])
    if not st:
        st = "CANCELLED" if job["canceled"] else ("COMPLETED" if job["exit"] == 0 else "FAILED")
    print(f"JobId={job_id} JobName=fake\n   JobState={st} Reason=None\n"
          f"   RunTime=00:00:01 TimeLimit={job['walltime']}")
    return 0


def qstat(argv):
    ids = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-f"]
    log(op="status", ids=ids, argv=argv)
    jobs = {}
    for job_id in ids:
        job = load(job_id)
        if job:
            item = {"job_state": job["state"],
                    "Resource_List": {"walltime": job["walltime"]}}
            if job["state"] == "F":
                item["Exit_status"] = job["exit"]
            jobs[job_id] = item
    print(json.dumps({"timestamp": int(time.time()), "pbs_version": "fake", "Jobs": jobs}))
    return 0


def main():
    name = os.path.basename(sys.argv[0])
    os.makedirs(JOBS, exist_ok=True)
    if len(sys.argv) > 2 and sys.argv[1] == "__run":
        return run(sys.argv[2])
    if name in ("sbatch", "qsub"):
        return submit(name == "qsub", sys.argv[1:])
    if name in ("scancel", "qdel"):
        return cancel(sys.argv)
    if name == "scontrol":
        return scontrol(sys.argv)
    if name == "qstat":
        return qstat(sys.argv)
    sys.stderr.write(f"fakebatch: unknown name {name}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
