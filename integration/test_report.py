"""`hq journal report` (issue 13 item 16; cli/REFERENCE.md §3.8): one self-contained
HTML file (no network) with worker utilization and task counts by state over time,
task durations per job and per-worker statistics. The browser test renders it in
Debian's headless chromium and compares the drawn marks with the journal, keeping a
screenshot in the test's tmp dir."""

import html.parser
import json
import re
import shutil
import subprocess

import pytest

from hqtest import journal_dir, start_journaled


def _run(env):
    """A journaled run: 2 workers, a 6-task array (one failing), a second job, a
    canceled task; then both workers stop. Returns the exported events."""
    start_journaled(env)
    w1 = env.start_worker(cpus=2)
    w2 = env.start_worker(cpus=1)
    a = env.submit("--array", "1-6", "--",
                   "bash", "-c", 'sleep 0.$HQ_TASK_ID; [ "$HQ_TASK_ID" != 4 ]')
    env.wait_job(a)
    b = env.submit("--array", "1-2", "--", "true")
    env.wait_job(b)
    c = env.submit("--", "sleep", "60")
    env.wait_task_state(c, 0, ["running"])
    env.hq("job", "cancel", str(c))
    env.hq("worker", "stop", "all")
    for w in (w1, w2):
        w.proc.wait_exit()
    env.hq("journal", "flush")
    out = env.hq("journal", "export", journal_dir(env)).stdout
    return [json.loads(l)["event"] for l in out.splitlines() if l.strip()], (a, b, c)


def _data(page):
    m = re.search(r'<script type="application/json" id="hq-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1).replace("<\\/", "</"))


def _expected(events):
    started, ended, workers = {}, {}, {}
    for e in events:
        if e["type"] == "worker-connected":
            workers[e["id"]] = 0
        elif e["type"] == "task-started":
            started[(e["job"], e["task"])] = e["worker"]
        elif e["type"] in ("task-finished", "task-failed", "task-canceled"):
            ended[(e["job"], e["task"])] = e["type"]
    for key, w in started.items():
        workers[w] += 1
    return started, ended, workers


def test_report_is_self_contained_and_holds_the_journals_figures(hq_env):
    env = hq_env
    events, (a, b, c) = _run(env)
    out = env.tmp / "report.html"
    r = env.hq("journal", "report", journal_dir(env), out)
    assert f"Report written to {out}" in r.stderr
    page = out.read_text()
    # self-contained: nothing is loaded from anywhere
    assert not re.search(r'\b(src|href)\s*=', page)
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    d = _data(page)
    started, ended, per_worker = _expected(events)
    assert {w["id"]: w["tasks"] for w in d["workers"]} == per_worker
    jobs = {j["id"]: j for j in d["jobs"]}
    assert jobs[a]["tasks"] == 6 and jobs[b]["tasks"] == 2 and jobs[c]["tasks"] == 1
    for job in (a, b):
        ran = [k for k in started if k[0] == job and ended.get(k) in ("task-finished",
                                                                       "task-failed")]
        assert len(jobs[job]["durations"]) == len(ran)
    assert jobs[c]["durations"] == []
    states = d["states"]
    n_end = lambda t: sum(1 for v in ended.values() if v == t)
    assert states["finished"][-1] == n_end("task-finished") == 7
    assert states["failed"][-1] == n_end("task-failed") == 1
    assert any(e["type"] == "job-cancel" and e["job"] == c for e in events)
    assert states["canceled"][-1] == 1  # the job-cancel record stands for its task
    assert states["running"][-1] == 0 and states["waiting"][-1] == 0
    assert max(states["running"]) >= 1
    fin = {w["id"]: w["finished"] + w["failed"] for w in d["workers"]}
    assert sum(fin.values()) == 8


def test_report_time_window_and_bad_values(hq_env):
    env = hq_env
    events, (a, b, c) = _run(env)
    out = env.tmp / "late.html"
    # a window after everything: no data points, no durations
    env.hq("journal", "report", journal_dir(env), out, "--start-time", "2100-01-01T00:00:00Z")
    d = _data(out.read_text())
    assert d["states"]["times"] == []
    assert all(j["durations"] == [] for j in d["jobs"])
    assert all(w["tasks"] == 0 for w in d["workers"])
    r = env.hq("journal", "report", journal_dir(env), out, "--end-time", "yesterday",
               check=False)
    assert r.returncode == 2
    assert ("error: invalid value 'yesterday' for '--end-time <END_TIME>': expected an RFC "
            "3339 time such as 2026-01-02T03:04:05Z") in r.stderr
    r = env.hq("journal", "report", env.tmp / "nope", out, check=False)
    assert r.returncode == 1
    assert f"Cannot write the report of the journal {env.tmp / 'nope'}" in r.stderr


class _Marks(html.parser.HTMLParser):
    """Collects the rendered SVG marks and table rows of the report's DOM."""

    def __init__(self):
        super().__init__()
        self.group = None
        self.util = {}        # worker -> data points
        self.state_pts = {}   # state -> values
        self.bars = {}        # job -> bar counts
        self.rows = {}        # worker -> cells
        self.row = None
        self.cell = None
        self.rendered = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "body" and a.get("data-rendered") == "yes":
            self.rendered = True
        if tag == "g" and cls == "worker-util":
            self.group = ("util", int(a["data-worker"]))
            self.util[self.group[1]] = []
        elif tag == "g" and cls == "state-series":
            self.group = ("state", a["data-state"])
            self.state_pts[self.group[1]] = []
        elif tag == "g" and cls == "job-durations":
            self.group = ("job", int(a["data-job"]))
            self.bars[self.group[1]] = []
        elif tag == "circle" and cls == "point" and self.group:
            kind, key = self.group
            (self.util if kind == "util" else self.state_pts)[key].append(float(a["data-v"]))
        elif tag == "rect" and cls == "bar" and self.group and self.group[0] == "job":
            self.bars[self.group[1]].append(int(a["data-count"]))
        elif tag == "tr" and cls == "worker-row":
            self.row = int(a["data-worker"])
            self.rows[self.row] = []
        elif tag == "td" and self.row is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "g":
            self.group = None
        elif tag == "td" and self.cell is not None:
            self.rows[self.row].append(self.cell)
            self.cell = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


@pytest.mark.browser
def test_report_renders_in_headless_chromium_with_the_journals_marks(hq_env):
    env = hq_env
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run packaging/install-deps.sh"
    events, (a, b, c) = _run(env)
    out = env.tmp / "report.html"
    env.hq("journal", "report", journal_dir(env), out)
    d = _data(out.read_text())
    profile = env.tmp / "chromium-profile"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--hide-scrollbars", f"--user-data-dir={profile}",
            "--virtual-time-budget=5000"]
    r = subprocess.run(base + ["--dump-dom", out.as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    m = _Marks()
    m.feed(r.stdout)
    assert m.rendered, "the report's script did not run"
    started, ended, per_worker = _expected(events)
    # one utilization line per worker, a point per change of its running tasks plus its
    # first and last point: 2 per task run on it + 2
    assert set(m.util) == set(per_worker)
    for w, n in per_worker.items():
        assert len(m.util[w]) == 2 * n + 2, (w, m.util[w])
        assert m.util[w][-1] == 0 and max(m.util[w]) >= 1
    # the state lines end at the journal's counts, one point per change
    assert set(m.state_pts) == {"waiting", "running", "finished", "failed", "canceled"}
    n_points = {len(v) for v in m.state_pts.values()}
    assert n_points == {len(d["states"]["times"])}
    assert m.state_pts["finished"][-1] == 7
    assert m.state_pts["failed"][-1] == 1
    assert m.state_pts["canceled"][-1] == 1
    # a 10-bar histogram per job whose bars add up to the tasks that ran to their end
    assert set(m.bars) == {a, b, c}
    for job in (a, b):
        ran = [k for k in started if k[0] == job and ended.get(k) in ("task-finished",
                                                                       "task-failed")]
        assert len(m.bars[job]) == 10 and sum(m.bars[job]) == len(ran)
    assert sum(m.bars[c]) == 0
    # a table row per worker: id, hostname, tasks
    assert {w: cells[2] for w, cells in m.rows.items()} == {w: str(n) for w, n in
                                                           per_worker.items()}
    assert {cells[1] for cells in m.rows.values()} == {"w1", "w2"}
    # a screenshot as the test's artefact
    shot = env.tmp / "report.png"
    r = subprocess.run(base + ["--window-size=1000,1800", f"--screenshot={shot}",
                               out.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert shot.stat().st_size > 10000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
