/* `hq journal report JOURNAL OUT.html`: an HTML report of a run, read offline from the
 * journal directory. The file is self-contained (no network: cluster nodes often have
 * none): the figures computed here are embedded as JSON and drawn as inline SVG by an
 * inline script — worker utilization (running tasks per worker) over time, task counts
 * by state over time, the task duration distribution of each job, and per-worker
 * statistics (cli/REFERENCE.md §3.8). */
#include "report.h"

#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "journal/hq_journal.h"

enum { S_WAITING, S_RUNNING, S_FINISHED, S_FAILED, S_CANCELED, S_NSTATES };
static const char *const s_state_names[S_NSTATES] = {"waiting", "running", "finished", "failed",
                                                     "canceled"};

typedef struct r_task {
    uint32_t job, task;
    uint64_t start_ns; /* of the running instance */
    uint32_t worker;
    bool running, ended;
} r_task_t;

typedef struct r_worker {
    uint32_t id;
    char *hostname;
    uint64_t up_ns, down_ns; /* 0 = unknown / still up */
    uint32_t running;
    uint64_t started, finished, failed, busy_ns;
    json_t *series; /* [[t, running]...] */
    bool seen;
} r_worker_t;

typedef struct r_job {
    uint32_t id;
    char *name;
    uint64_t n_tasks;
    uint64_t n_known;  /* tasks of it that started or ended */
    json_t *durations; /* seconds of the tasks that ended in the window after running */
} r_job_t;

typedef struct r_ctx {
    uint64_t from, to;    /* window (0 = open) */
    uint64_t first, last; /* wall times of the first and last event in the window */
    zhashx_t *tasks;      /* "job.task" -> r_task_t */
    r_worker_t **workers;
    uint32_t n_workers;
    r_job_t **jobs;
    uint32_t n_jobs;
    int64_t counts[S_NSTATES];
    json_t *state_times;             /* seconds since the epoch */
    json_t *state_series[S_NSTATES]; /* values at those times */
} r_ctx_t;

static bool s_in(const r_ctx_t *c, uint64_t t)
{
    return (!c->from || t >= c->from) && (!c->to || t <= c->to);
}

static double s_sec(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void s_seen(r_ctx_t *c, uint64_t t)
{
    if (!s_in(c, t))
        return;
    if (!c->first || t < c->first)
        c->first = t;
    if (t > c->last)
        c->last = t;
}

static r_worker_t *s_worker(r_ctx_t *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n_workers; i++)
        if (c->workers[i]->id == id)
            return c->workers[i];
    c->workers = hq_realloc(c->workers, (c->n_workers + 1) * sizeof *c->workers);
    r_worker_t *w = hq_calloc(1, sizeof *w);
    w->id = id;
    w->series = json_array();
    c->workers[c->n_workers++] = w;
    return w;
}

static r_job_t *s_job(r_ctx_t *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n_jobs; i++)
        if (c->jobs[i]->id == id)
            return c->jobs[i];
    c->jobs = hq_realloc(c->jobs, (c->n_jobs + 1) * sizeof *c->jobs);
    r_job_t *j = hq_calloc(1, sizeof *j);
    j->id = id;
    j->durations = json_array();
    c->jobs[c->n_jobs++] = j;
    return j;
}

static r_task_t *s_task(r_ctx_t *c, uint32_t job, uint32_t task)
{
    char key[32];
    snprintf(key, sizeof key, "%u.%u", job, task);
    r_task_t *t = zhashx_lookup(c->tasks, key);
    if (!t) {
        t = hq_calloc(1, sizeof *t);
        t->job = job;
        t->task = task;
        zhashx_insert(c->tasks, key, t);
        s_job(c, job)->n_known++;
    }
    return t;
}

/* A point of every state series at time t (the counts after the change). */
static void s_state_point(r_ctx_t *c, uint64_t t)
{
    if (!s_in(c, t))
        return;
    json_array_append_new(c->state_times, json_real(s_sec(t)));
    for (int s = 0; s < S_NSTATES; s++)
        json_array_append_new(c->state_series[s], json_integer(c->counts[s]));
}

static void s_util_point(r_ctx_t *c, r_worker_t *w, uint64_t t)
{
    if (s_in(c, t))
        json_array_append_new(w->series, json_pack("[f,i]", s_sec(t), (json_int_t)w->running));
}

static void s_start(r_ctx_t *c, uint32_t job, uint32_t task, uint32_t worker, uint64_t t)
{
    r_task_t *k = s_task(c, job, task);
    if (k->running) { /* restarted (re-adopted, or after a loss we did not see) */
        r_worker_t *ow = s_worker(c, k->worker);
        if (ow->running)
            ow->running--;
        c->counts[S_RUNNING]--;
    } else if (c->counts[S_WAITING] > 0) {
        c->counts[S_WAITING]--;
    }
    k->running = true;
    k->ended = false;
    k->start_ns = t;
    k->worker = worker;
    r_worker_t *w = s_worker(c, worker);
    w->running++;
    if (s_in(c, t))
        w->started++;
    c->counts[S_RUNNING]++;
    s_seen(c, t);
    s_util_point(c, w, t);
    s_state_point(c, t);
}

static void s_end(r_ctx_t *c, uint32_t job, uint32_t task, int state, uint64_t t)
{
    r_task_t *k = s_task(c, job, task);
    if (k->ended)
        return;
    if (k->running) {
        r_worker_t *w = s_worker(c, k->worker);
        if (w->running)
            w->running--;
        c->counts[S_RUNNING]--;
        if (s_in(c, t) || s_in(c, k->start_ns)) {
            uint64_t a = c->from && k->start_ns < c->from ? c->from : k->start_ns;
            uint64_t b = c->to && t > c->to ? c->to : t;
            if (b > a)
                w->busy_ns += b - a;
        }
        if (s_in(c, t)) {
            if (state == S_FINISHED)
                w->finished++;
            else if (state == S_FAILED)
                w->failed++;
            if (state == S_FINISHED || state == S_FAILED)
                json_array_append_new(s_job(c, job)->durations,
                                      json_real(s_sec(t > k->start_ns ? t - k->start_ns : 0)));
        }
        s_util_point(c, w, t);
    } else if (c->counts[S_WAITING] > 0) {
        c->counts[S_WAITING]--;
    }
    k->running = false;
    k->ended = true;
    c->counts[state]++;
    s_seen(c, t);
    s_state_point(c, t);
}

static void s_worker_lost(r_ctx_t *c, uint32_t id, uint64_t t)
{
    r_worker_t *w = s_worker(c, id);
    w->down_ns = t;
    /* Its running tasks wait again (or end with records that follow). */
    for (r_task_t *k = zhashx_first(c->tasks); k; k = zhashx_next(c->tasks)) {
        if (!k->running || k->worker != id)
            continue;
        k->running = false;
        if (s_in(c, t) || s_in(c, k->start_ns)) {
            uint64_t a = c->from && k->start_ns < c->from ? c->from : k->start_ns;
            uint64_t b = c->to && t > c->to ? c->to : t;
            if (b > a)
                w->busy_ns += b - a;
        }
        c->counts[S_RUNNING]--;
        c->counts[S_WAITING]++;
    }
    w->running = 0;
    s_seen(c, t);
    s_util_point(c, w, t);
    s_state_point(c, t);
}

static int s_rec(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    (void)from_snapshot;
    (void)err;
    r_ctx_t *c = arg;
    uint64_t t = rec->wall_ns;
    switch (rec->type) {
    case HQ_JR_JOB_SUBMIT: {
        const hq_submit_t *s = rec->u.job_submit.msg ? &rec->u.job_submit.msg->u.submit : NULL;
        if (!s)
            break;
        r_job_t *j = s_job(c, rec->u.job_submit.job);
        uint64_t n = s->n_graph ? s->n_graph : hq_rangelist_count(&s->ids);
        if (!j->name)
            j->name = hq_strdup(s->name ? s->name : "job");
        j->n_tasks += n;
        c->counts[S_WAITING] += (int64_t)n;
        s_seen(c, t);
        s_state_point(c, t);
        break;
    }
    case HQ_JR_JOB_OPEN: {
        r_job_t *j = s_job(c, rec->u.job_open.job);
        if (!j->name)
            j->name = hq_strdup(rec->u.job_open.name ? rec->u.job_open.name : "job");
        break;
    }
    case HQ_JR_TASK_STARTED:
        s_start(c, rec->u.task.job, rec->u.task.task, rec->u.task.worker, t);
        break;
    case HQ_JR_TASKS_STARTED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++)
            s_start(c, rec->u.batch.job, rec->u.batch.insts[k].task, rec->u.batch.worker, t);
        break;
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        s_end(c, rec->u.task.job, rec->u.task.task,
              rec->type == HQ_JR_TASK_FINISHED ? S_FINISHED : S_FAILED, t);
        break;
    case HQ_JR_TASKS_FINISHED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++)
            s_end(c, rec->u.batch.job, rec->u.batch.insts[k].task, S_FINISHED, t);
        break;
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED:
        for (uint32_t r = 0; r < rec->u.tasks.n; r++)
            for (uint64_t id = rec->u.tasks.ranges[r].first; id <= rec->u.tasks.ranges[r].last;
                 id++)
                s_end(c, rec->u.tasks.job, (uint32_t)id, S_CANCELED, t);
        break;
    case HQ_JR_JOB_CANCEL: {
        /* Its unfinished tasks end canceled (the record stands for their events). */
        uint32_t job = rec->u.job_cancel.job;
        uint32_t n = 0, cap = 0, *ids = NULL;
        for (r_task_t *k = zhashx_first(c->tasks); k; k = zhashx_next(c->tasks)) {
            if (k->job != job || k->ended)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                ids = hq_realloc(ids, cap * sizeof *ids);
            }
            ids[n++] = k->task;
        }
        for (uint32_t i = 0; i < n; i++)
            s_end(c, job, ids[i], S_CANCELED, t);
        free(ids);
        r_job_t *j = s_job(c, job);
        if (j->n_tasks > j->n_known) {
            int64_t w = (int64_t)(j->n_tasks - j->n_known);
            c->counts[S_WAITING] -= w < c->counts[S_WAITING] ? w : c->counts[S_WAITING];
            c->counts[S_CANCELED] += w;
            j->n_known = j->n_tasks;
            s_seen(c, t);
            s_state_point(c, t);
        }
        break;
    }
    case HQ_JR_TASK_STATE: {
        uint32_t job = rec->u.task_state.job, task = rec->u.task_state.task;
        uint8_t st = rec->u.task_state.state;
        if (rec->u.task_state.start_ns && st >= 2)
            s_start(c, job, task, rec->u.task_state.worker, rec->u.task_state.start_ns);
        if (st >= 3) {
            int s = st == 3 ? S_FINISHED : st == 4 ? S_FAILED : S_CANCELED;
            s_end(c, job, task, s, rec->u.task_state.end_ns ? rec->u.task_state.end_ns : t);
        }
        break;
    }
    case HQ_JR_WORKER_UP: {
        r_worker_t *w = s_worker(c, rec->u.worker_up.worker);
        const hq_msg_t *m = rec->u.worker_up.msg;
        if (!w->hostname && m && m->u.reg.conf.hostname)
            w->hostname = hq_strdup(m->u.reg.conf.hostname);
        if (!w->up_ns)
            w->up_ns = t;
        w->seen = true;
        s_seen(c, t);
        s_util_point(c, w, t);
        break;
    }
    case HQ_JR_WORKER_LOST:
        s_worker_lost(c, rec->u.worker_lost.worker, t);
        break;
    default:
        break;
    }
    return 0;
}

static void s_free_task(void **item)
{
    free(*item);
    *item = NULL;
}

/* ---- the document ---- */

static json_t *s_data(r_ctx_t *c)
{
    uint64_t lo = c->from ? c->from : c->first, hi = c->to ? c->to : c->last;
    json_t *workers = json_array();
    for (uint32_t i = 0; i < c->n_workers; i++) {
        r_worker_t *w = c->workers[i];
        if (!w->seen)
            continue;
        uint64_t a = w->up_ns > lo ? w->up_ns : lo;
        uint64_t b = w->down_ns && w->down_ns < hi ? w->down_ns : hi;
        double up = b > a ? s_sec(b - a) : 0.0;
        json_array_append_new(
            workers,
            json_pack("{s:I,s:s,s:I,s:I,s:I,s:f,s:f,s:f,s:O}", "id", (json_int_t)w->id, "hostname",
                      w->hostname ? w->hostname : "", "tasks", (json_int_t)w->started, "finished",
                      (json_int_t)w->finished, "failed", (json_int_t)w->failed, "busy",
                      s_sec(w->busy_ns), "uptime", up, "utilization", /* mean running tasks */
                      up > 0 ? s_sec(w->busy_ns) / up : 0.0, "series", w->series));
    }
    json_t *jobs = json_array();
    for (uint32_t i = 0; i < c->n_jobs; i++) {
        r_job_t *j = c->jobs[i];
        json_array_append_new(jobs, json_pack("{s:I,s:s,s:I,s:O}", "id", (json_int_t)j->id, "name",
                                              j->name ? j->name : "job", "tasks",
                                              (json_int_t)j->n_tasks, "durations", j->durations));
    }
    json_t *states = json_pack("{s:O}", "times", c->state_times);
    for (int s = 0; s < S_NSTATES; s++)
        json_object_set(states, s_state_names[s], c->state_series[s]);
    char *t0 = lo ? hq_time_rfc3339(lo, 3) : hq_strdup("");
    char *t1 = hi ? hq_time_rfc3339(hi, 3) : hq_strdup("");
    json_t *d = json_pack("{s:f,s:f,s:s,s:s,s:o,s:o,s:o}", "start", s_sec(lo), "end", s_sec(hi),
                          "start_text", t0, "end_text", t1, "workers", workers, "jobs", jobs,
                          "states", states);
    free(t0);
    free(t1);
    return d;
}

/* The page: styles, the data and the script that draws it (no external resource). */
static const char s_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>hq journal report</title>\n<style>\n"
    "body{font-family:sans-serif;margin:20px;color:#222}h1{font-size:22px}"
    "h2{font-size:17px;margin-top:28px}svg{background:#fafafa;border:1px solid #ddd}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#eee}.legend span{margin-right:14px}"
    ".axis{stroke:#888;stroke-width:1}.lbl{font-size:11px;fill:#555}\n"
    "</style>\n</head>\n<body>\n<h1>hq journal report</h1>\n"
    "<p id=\"range\"></p>\n"
    "<h2>Worker utilization (running tasks)</h2><div id=\"util\"></div>\n"
    "<h2>Tasks by state</h2><div id=\"states\"></div>\n"
    "<h2>Task durations per job</h2><div id=\"durations\"></div>\n"
    "<h2>Workers</h2><div id=\"workers\"></div>\n"
    "<script type=\"application/json\" id=\"hq-data\">";

static const char s_tail[] =
    "</script>\n<script>\n"
    "(function(){\n"
    "var D=JSON.parse(document.getElementById('hq-data').textContent);\n"
    "var NS='http://www.w3.org/2000/svg';\n"
    "var COL=['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2',"
    "'#7f7f7f','#bcbd22','#17becf'];\n"
    "var SC={waiting:'#7f7f7f',running:'#ff7f0e',finished:'#2ca02c',failed:'#d62728',"
    "canceled:'#9467bd'};\n"
    "function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)"
    "e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e;}\n"
    "function txt(p,x,y,s,anchor){var t=el('text',{x:x,y:y,'class':'lbl','text-anchor':"
    "anchor||'start'},p);t.textContent=s;return t;}\n"
    "var W=900,H=260,L=50,R=20,T=15,B=30;\n"
    "function frame(id,ymax,xmin,xmax,xlabel){var s=el('svg',{width:W,height:H,"
    "viewBox:'0 0 '+W+' '+H});document.getElementById(id).appendChild(s);"
    "el('line',{x1:L,y1:H-B,x2:W-R,y2:H-B,'class':'axis'},s);"
    "el('line',{x1:L,y1:T,x2:L,y2:H-B,'class':'axis'},s);"
    "txt(s,L-5,T+4,String(ymax),'end');txt(s,L-5,H-B,'0','end');"
    "txt(s,L,H-8,xlabel[0]);txt(s,W-R,H-8,xlabel[1],'end');"
    "var sx=function(x){return xmax>xmin?L+(x-xmin)/(xmax-xmin)*(W-L-R):L;};"
    "var sy=function(y){return ymax>0?H-B-y/ymax*(H-B-T):H-B;};return {svg:s,sx:sx,sy:sy};}\n"
    "function secs(x){return (x-D.start).toFixed(1)+' s';}\n"
    "document.getElementById('range').textContent='From '+D.start_text+' to '+D.end_text+"
    "' ('+(D.end-D.start).toFixed(1)+' s)';\n"
    /* utilization: one step line per worker, a circle per data point */
    "var umax=1;D.workers.forEach(function(w){w.series.forEach(function(p){"
    "if(p[1]>umax)umax=p[1];});});\n"
    "var f=frame('util',umax,D.start,D.end,['0 s',secs(D.end)]);\n"
    "D.workers.forEach(function(w,i){var g=el('g',{'class':'worker-util','data-worker':w.id},"
    "f.svg);var c=COL[i%COL.length],pts=[],prev=null;w.series.forEach(function(p){"
    "var x=f.sx(p[0]),y=f.sy(p[1]);if(prev!==null)pts.push(x+','+prev);pts.push(x+','+y);"
    "prev=y;});el('polyline',{points:pts.join(' '),fill:'none',stroke:c,'stroke-width':2},g);"
    "w.series.forEach(function(p){el('circle',{'class':'point',cx:f.sx(p[0]),cy:f.sy(p[1]),"
    "r:3,fill:c,'data-t':p[0],'data-v':p[1]},g);});});\n"
    "var lg=document.createElement('div');lg.className='legend';D.workers.forEach(function(w,i)"
    "{var s=document.createElement('span');s.style.color=COL[i%COL.length];"
    "s.textContent='worker '+w.id+' ('+w.hostname+')';lg.appendChild(s);});"
    "document.getElementById('util').appendChild(lg);\n"
    /* states */
    "var names=['waiting','running','finished','failed','canceled'],smax=1;"
    "names.forEach(function(n){D.states[n].forEach(function(v){if(v>smax)smax=v;});});\n"
    "var g2=frame('states',smax,D.start,D.end,['0 s',secs(D.end)]);\n"
    "names.forEach(function(n){var g=el('g',{'class':'state-series','data-state':n},g2.svg);"
    "var pts=[],prev=null;D.states.times.forEach(function(t,k){var x=g2.sx(t),"
    "y=g2.sy(D.states[n][k]);if(prev!==null)pts.push(x+','+prev);pts.push(x+','+y);prev=y;});"
    "el('polyline',{points:pts.join(' '),fill:'none',stroke:SC[n],'stroke-width':2},g);"
    "D.states.times.forEach(function(t,k){el('circle',{'class':'point',cx:g2.sx(t),"
    "cy:g2.sy(D.states[n][k]),r:2.5,fill:SC[n],'data-t':t,'data-v':D.states[n][k]},g);});});\n"
    "var lg2=document.createElement('div');lg2.className='legend';names.forEach(function(n){"
    "var s=document.createElement('span');s.style.color=SC[n];s.textContent=n;"
    "lg2.appendChild(s);});document.getElementById('states').appendChild(lg2);\n"
    /* durations: a 10-bin histogram per job */
    "D.jobs.forEach(function(j){var box=document.createElement('div');"
    "var h=document.createElement('p');h.textContent='Job '+j.id+' ('+j.name+'): '+"
    "j.durations.length+' of '+j.tasks+' tasks ran to the end';box.appendChild(h);"
    "document.getElementById('durations').appendChild(box);var id='dur-'+j.id;box.id=id;"
    "var mx=0,mn=Infinity;j.durations.forEach(function(d){if(d>mx)mx=d;if(d<mn)mn=d;});"
    "if(!j.durations.length)mn=0;var nb=10,w=(mx-mn)/nb||1,bins=[];for(var k=0;k<nb;k++)"
    "bins.push(0);j.durations.forEach(function(d){var b=Math.min(nb-1,Math.floor((d-mn)/w));"
    "bins[b]++;});var bm=Math.max.apply(null,bins.concat([1]));"
    "var fr=frame(id,bm,0,nb,[mn.toFixed(2)+' s',(mn+w*nb).toFixed(2)+' s']);"
    "var g=el('g',{'class':'job-durations','data-job':j.id,'data-tasks':j.durations.length},"
    "fr.svg);bins.forEach(function(c,k){var x0=fr.sx(k),x1=fr.sx(k+1);"
    "el('rect',{'class':'bar',x:x0+1,y:fr.sy(c),width:Math.max(1,x1-x0-2),"
    "height:H-B-fr.sy(c),fill:'#1f77b4','data-count':c,'data-from':(mn+k*w),"
    "'data-to':(mn+(k+1)*w)},g);if(c)txt(fr.svg,(x0+x1)/2,fr.sy(c)-3,String(c),'middle');});});\n"
    /* worker table */
    "var tb=document.createElement('table');tb.id='worker-table';var hr=tb.insertRow();"
    "['Worker','Hostname','Tasks','Finished','Failed','Busy (s)','Uptime (s)','Mean running tasks']"
    ".forEach(function(s){var th=document.createElement('th');th.textContent=s;"
    "hr.appendChild(th);});D.workers.forEach(function(w){var r=tb.insertRow();"
    "r.className='worker-row';r.setAttribute('data-worker',w.id);[w.id,w.hostname,w.tasks,"
    "w.finished,w.failed,w.busy.toFixed(2),w.uptime.toFixed(2),w.utilization.toFixed(2)].forEach"
    "(function(v){r.insertCell().textContent=String(v);});});"
    "document.getElementById('workers').appendChild(tb);\n"
    "document.body.setAttribute('data-rendered','yes');\n"
    "})();\n</script>\n</body>\n</html>\n";

int hq_journal_report(const char *journal, const char *out_path, uint64_t from, uint64_t to,
                      hq_err_t *err)
{
    r_ctx_t c = {.from = from, .to = to};
    c.tasks = zhashx_new();
    zhashx_set_destructor(c.tasks, s_free_task);
    c.state_times = json_array();
    for (int s = 0; s < S_NSTATES; s++)
        c.state_series[s] = json_array();
    hq_journal_opts_t o = {.read_only = true};
    hq_journal_t *j = hq_journal_open(journal, &o, err);
    int rc = -1;
    if (j && hq_journal_replay(j, s_rec, &c, NULL, err) == 0)
        rc = 0;
    hq_journal_close(&j);
    if (rc == 0) {
        /* Close every worker's line at the end of the window (or at its loss). */
        uint64_t hi = c.to ? c.to : c.last;
        for (uint32_t i = 0; i < c.n_workers; i++) {
            r_worker_t *w = c.workers[i];
            if (!w->down_ns || w->down_ns > hi)
                s_util_point(&c, w, hi);
        }
        json_t *d = s_data(&c);
        char *text = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        FILE *f = fopen(out_path, "w");
        if (!f || !text) {
            rc = hq_err_set(err, "cannot write %s: %s", out_path, strerror(errno));
        } else {
            fputs(s_head, f);
            /* "</" would end the script element early. */
            for (const char *p = text; *p; p++) {
                if (p[0] == '<' && p[1] == '/')
                    fputs("<\\", f);
                else
                    fputc(*p, f);
            }
            fputs(s_tail, f);
            if (fclose(f) != 0)
                rc = hq_err_set(err, "cannot write %s: %s", out_path, strerror(errno));
        }
        free(text);
    }
    zhashx_destroy(&c.tasks);
    for (uint32_t i = 0; i < c.n_workers; i++) {
        free(c.workers[i]->hostname);
        json_decref(c.workers[i]->series);
        free(c.workers[i]);
    }
    free(c.workers);
    for (uint32_t i = 0; i < c.n_jobs; i++) {
        free(c.jobs[i]->name);
        json_decref(c.jobs[i]->durations);
        free(c.jobs[i]);
    }
    free(c.jobs);
    json_decref(c.state_times);
    for (int s = 0; s < S_NSTATES; s++)
        json_decref(c.state_series[s]);
    return rc;
}
