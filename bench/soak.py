#!/usr/bin/python3
"""The soak's clients (bench/soak.sh starts the hub and runs this): one user and one
kernel per client, each looping small cells over the kernel WebSocket and saving its
notebook through the Contents API for MINUTES (at the end, once the client has left,
the notebook must hold its last save and, within 15 s, the hub's recording of every
cell run after it), while /proc is sampled every 10 s for
the RSS and open fds of the hub, its launcher and every agent. Prints each minute's
executes, saves, errors and latency percentiles, the samples as they are taken, and a
verdict on errors and growth (first minute against last). Exit status: 0 with no
errors, 1 with errors, 2 when the clients could not start.

usage: soak.py BASE_URL TOKENS_FILE MINUTES HUB_PID DATA_DIR
       (TOKENS_FILE: one "user token" a line; env SOAK_PAUSE_MS, SOAK_SAVE_EVERY (0: no
       saves), SOAK_TIMEOUT_S, SOAK_RECORD (0: kernels without a notebook session, so
       the hub records nothing))
Python's standard library and Debian's python3-websockets only.
"""
import asyncio, json, os, sys, time, uuid, urllib.request, urllib.error

import websockets

BASE = sys.argv[1].rstrip('/')
TOKENS = [line.split() for line in open(sys.argv[2]) if line.strip()]
MINUTES = int(sys.argv[3])
HUB_PID = int(sys.argv[4])
DATA = os.path.realpath(sys.argv[5])
PAUSE_S = int(os.environ.get('SOAK_PAUSE_MS', '200')) / 1e3  # between one client's cells
SAVE_EVERY = int(os.environ.get('SOAK_SAVE_EVERY', '10'))     # a save after every Kth cell
TIMEOUT_S = float(os.environ.get('SOAK_TIMEOUT_S', '30'))     # per cell, per HTTP request
RECORD = os.environ.get('SOAK_RECORD', '1') != '0'            # a notebook session per client
MAX_CELLS = MINUTES * 60 * 100          # per client: a bound the deadline reaches first
MAX_RECONNECTS = 5                      # per client, then it stops
SAMPLE_S = 10
NB_PATH = 'soak.ipynb'


def now():
    return time.monotonic()


class Stats:
    """Per-minute counts and latencies; minute = int((t - t0) / 60), clamped to the run."""

    def __init__(self):
        self.t0 = None
        self.minutes = [dict(exec_ms=[], save_ms=[], errors={}) for _ in range(MINUTES)]
        self.error_examples = []

    def minute(self):
        return min(MINUTES - 1, max(0, int((now() - self.t0) / 60))) if self.t0 else 0

    def exec_done(self, ms):
        self.minutes[self.minute()]['exec_ms'].append(ms)

    def save_done(self, ms):
        self.minutes[self.minute()]['save_ms'].append(ms)

    def error(self, kind, client, what):
        e = self.minutes[self.minute()]['errors']
        e[kind] = e.get(kind, 0) + 1
        if len(self.error_examples) < 20:
            self.error_examples.append('%s (client %d, %.0f s): %s' % (
                kind, client, now() - self.t0 if self.t0 else 0, str(what)[:300]))


STATS = Stats()


def pct(xs, p):
    """Nearest-rank percentile of a list (None when empty)."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))]


def fmt(x):
    return '-' if x is None else ('%.1f' % x if x < 100 else '%.0f' % x)


def http(token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={
        'Authorization': 'token ' + token, 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)


def notebook(saves):
    cells = [{'cell_type': 'code', 'id': 'c%d' % i, 'metadata': {}, 'source': src,
              'outputs': [], 'execution_count': None} for i, src in enumerate(CELL_SOURCES)]
    return {'type': 'notebook', 'format': 'json', 'content': {
        'nbformat': 4, 'nbformat_minor': 5, 'cells': cells,
        'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
                     'soak_saves': saves}}}


# The cells, by kind: (source shown in the notebook, code for value i, expected output)
CELLS = [
    ('x = i', lambda i: 'x = %d' % i, lambda i: ('', None)),
    ('print(i)', lambda i: 'print(%d)' % i, lambda i: ('%d\n' % i, None)),
    ('i * 2', lambda i: '%d * 2' % i, lambda i: ('', str(i * 2))),
    ('20 lines', lambda i: 'for j in range(20):\n    print(%d, j)' % i,
     lambda i: (''.join('%d %d\n' % (i, j) for j in range(20)), None)),
]
CELL_SOURCES = [c[0] for c in CELLS]


def kmsg(msg_type, content, session, cell_id=None):
    return {'header': {'msg_id': uuid.uuid4().hex, 'msg_type': msg_type, 'username': 'soak',
                       'session': session, 'date': '', 'version': '5.3'},
            'parent_header': {}, 'metadata': {'cellId': cell_id} if cell_id else {},
            'content': content, 'channel': 'shell', 'buffers': []}


class Client:
    def __init__(self, n, user, token):
        self.n, self.user, self.token = n, user, token
        self.session = uuid.uuid4().hex
        self.ws = None
        self.kernel = self.sid = None
        self.saves = 0
        self.since_save = {}   # kind -> the last value it ran with (ok) since the last save
        self.cells = 0
        self.reconnects = 0

    async def call(self, method, path, body=None):
        return await asyncio.to_thread(http, self.token, method, path, body)

    async def connect(self):
        url = '%s/api/kernels/%s/channels?session_id=%s' % (
            BASE.replace('http', 'ws', 1), self.kernel, self.session)
        self.ws = await asyncio.wait_for(websockets.connect(
            url, max_size=64 << 20, extra_headers={'Authorization': 'token ' + self.token},
            open_timeout=TIMEOUT_S, ping_interval=None), TIMEOUT_S)

    async def start(self):
        await self.call('PUT', '/api/contents/' + NB_PATH, notebook(0))
        if RECORD:
            _, s = await self.call('POST', '/api/sessions', {
                'path': NB_PATH, 'name': NB_PATH, 'type': 'notebook', 'kernel': {'name': 'python3'}})
            self.sid, self.kernel = s['id'], s['kernel']['id']
        else:
            _, k = await self.call('POST', '/api/kernels', {'name': 'python3'})
            self.kernel = k['id']
        await self.connect()
        ok, why = await self.cell(0, 0)   # warm-up, not counted
        if not ok:
            raise RuntimeError('first cell: ' + why)

    async def cell(self, kind, i):
        """Runs one cell; returns (ok, why). Waits for its execute_reply and idle."""
        _, code, expect = CELLS[kind]
        want_stream, want_result = expect(i)
        m = kmsg('execute_request', {'code': code(i), 'silent': False, 'store_history': True,
                                     'user_expressions': {}, 'allow_stdin': False,
                                     'stop_on_error': True}, self.session, 'c%d' % kind)
        mid = m['header']['msg_id']
        await self.ws.send(json.dumps(m))
        reply = idle = False
        stream, result, status = '', None, None
        while not (reply and idle):
            r = json.loads(await self.ws.recv())
            if r.get('parent_header', {}).get('msg_id') != mid:
                continue
            t = r['header']['msg_type']
            c = r.get('content', {})
            if t == 'execute_reply':
                reply, status = True, c.get('status')
            elif t == 'status' and c.get('execution_state') == 'idle':
                idle = True
            elif t == 'stream' and c.get('name') == 'stdout':
                stream += c.get('text', '')
            elif t == 'execute_result':
                result = c.get('data', {}).get('text/plain')
        if status != 'ok':
            return False, 'reply status %r' % status
        if stream != want_stream or result != want_result:
            return False, 'output %r / %r, expected %r / %r' % (
                stream[:80], result, want_stream[:80], want_result)
        return True, ''

    async def run(self, deadline):
        i = 0
        while now() < deadline and i < MAX_CELLS:
            i += 1
            kind = i % len(CELLS)
            t = now()
            self.since_save[kind] = None   # unknown until it answers
            try:
                ok, why = await asyncio.wait_for(self.cell(kind, i), TIMEOUT_S)
                if ok:
                    STATS.exec_done((now() - t) * 1e3)
                    self.since_save[kind] = i
                else:
                    STATS.error('output' if why.startswith('output') else 'reply', self.n, why)
            except asyncio.TimeoutError:
                STATS.error('timeout', self.n, 'no reply and idle in %.0f s (%s)' % (TIMEOUT_S, CELLS[kind][0]))
            except websockets.ConnectionClosed as e:
                STATS.error('closed', self.n, 'socket closed: %s' % e)
                if not await self.reconnect(deadline):
                    return
            if SAVE_EVERY and i % SAVE_EVERY == 0 and now() < deadline:
                await self.save()
            await asyncio.sleep(PAUSE_S)

    async def reconnect(self, deadline):
        while self.reconnects < MAX_RECONNECTS and now() < deadline:
            self.reconnects += 1
            try:
                await self.connect()
                return True
            except Exception as e:
                STATS.error('closed', self.n, 'reconnect failed: %r' % e)
                await asyncio.sleep(1)
        STATS.error('gave up', self.n, 'client stopped after %d reconnects' % self.reconnects)
        return False

    async def save(self):
        t = now()
        try:
            st, _ = await self.call('PUT', '/api/contents/' + NB_PATH, notebook(self.saves + 1))
            if st != 200 and st != 201:
                STATS.error('save', self.n, 'PUT answered %d' % st)
                return
            self.saves += 1
            self.since_save = {}
            STATS.save_done((now() - t) * 1e3)
        except Exception as e:
            STATS.error('save', self.n, repr(e))

    def notebook_problems(self, nb):
        """What the notebook file lacks: (kind of error, what), empty when nothing."""
        got = nb['content']['metadata'].get('soak_saves')
        cells = [c.get('id') for c in nb['content']['cells']]
        if got != self.saves or cells != ['c%d' % k for k in range(len(CELLS))]:
            return [('lost save', 'notebook has save %r and cells %r; the client saved %d' % (
                got, cells, self.saves))]
        out = []
        # The cells run since that save: the hub must have recorded their last outputs.
        for kind, i in sorted(self.since_save.items()) if RECORD else []:
            if i is None:   # its last run failed: what the file should hold is unknown
                continue
            rec = recorded(nb['content']['cells'][kind].get('outputs'))
            if rec != CELLS[kind][2](i):
                out.append(('lost output', 'cell c%d ran with %d last: the notebook has %r' % (kind, i, rec)))
        return out

    async def finish(self):
        """Closes the socket and checks the notebook: the client's last save, and the
        outputs of the cells run after it, which the hub records into the file once no
        client is connected (a connected front end saves its own), within 2 s or so.
        Then ends the session."""
        try:
            if self.ws:
                await self.ws.close()
            until = now() + 15
            while True:
                _, nb = await self.call('GET', '/api/contents/' + NB_PATH)
                problems = self.notebook_problems(nb)
                if not problems or now() > until:
                    break
                await asyncio.sleep(0.5)
            for kind, what in problems:
                STATS.error(kind, self.n, what + ' (15 s after the client left)')
            what = '/api/sessions/' + self.sid if self.sid else '/api/kernels/' + self.kernel
            st, _ = await self.call('DELETE', what)
            if st != 204:
                STATS.error('end', self.n, 'DELETE %s answered %d' % (what, st))
        except Exception as e:
            STATS.error('end', self.n, repr(e))


def joined(text):
    return ''.join(text) if isinstance(text, list) else text


def recorded(outputs):
    """A cell's outputs in the file as (stdout text, execute_result text/plain)."""
    stream, result = '', None
    for o in outputs or []:
        if o.get('output_type') == 'stream' and o.get('name') == 'stdout':
            stream += joined(o.get('text', ''))
        elif o.get('output_type') == 'execute_result':
            result = joined(o.get('data', {}).get('text/plain'))
    return stream, result


def proc_read(pid, name):
    try:
        with open('/proc/%d/%s' % (pid, name), 'rb') as f:
            return f.read()
    except OSError:
        return None


def rss_kb(pid):
    s = proc_read(pid, 'status')
    for line in (s or b'').split(b'\n'):
        if line.startswith(b'VmRSS:'):
            return int(line.split()[1])
    return None


def fds(pid):
    try:
        return len(os.listdir('/proc/%d/fd' % pid))
    except OSError:
        return None


def our_processes():
    """(launcher pids, agent pids): the hub's child named lb-launcher, and every
    `labbook agent DATA/runtimes/ID/agent.json` of this data folder."""
    launchers, agents = [], []
    prefix = (DATA + '/runtimes/').encode()
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        pid = int(d)
        argv = (proc_read(pid, 'cmdline') or b'').split(b'\0')
        if len(argv) >= 3 and argv[1] == b'agent' and argv[2].startswith(prefix):
            agents.append(pid)
            continue
        st = proc_read(pid, 'stat')
        if st and b'(lb-launcher)' in st and int(st.rsplit(b')', 1)[1].split()[1]) == HUB_PID:
            launchers.append(pid)
    return launchers, agents


def sample():
    launchers, agents = our_processes()
    a_rss = [x for x in (rss_kb(p) for p in agents) if x is not None]
    a_fds = [x for x in (fds(p) for p in agents) if x is not None]
    return {'t': round(now() - STATS.t0) if STATS.t0 else 0, 'hub_rss_kb': rss_kb(HUB_PID), 'hub_fds': fds(HUB_PID),
            'launcher_rss_kb': sum(rss_kb(p) or 0 for p in launchers), 'launcher_fds': sum(fds(p) or 0 for p in launchers),
            'agents': len(a_rss), 'agents_rss_kb': sum(a_rss), 'agent_max_rss_kb': max(a_rss, default=0),
            'agents_fds': sum(a_fds), 'agent_max_fds': max(a_fds, default=0)}


def sample_line(s, label=None):
    return ('%-9s hub %.1f MB %d fds | launcher %.1f MB %d fds | %d agents %.1f MB (largest %.1f) %d fds (most %d)' % (
        label or 't=%ds' % s['t'], (s['hub_rss_kb'] or 0) / 1024, s['hub_fds'] or 0, s['launcher_rss_kb'] / 1024,
        s['launcher_fds'], s['agents'], s['agents_rss_kb'] / 1024, s['agent_max_rss_kb'] / 1024,
        s['agents_fds'], s['agent_max_fds']))


async def sampler(deadline, samples):
    while now() < deadline:
        s = sample()
        samples.append(s)
        print(sample_line(s), flush=True)
        await asyncio.sleep(min(SAMPLE_S, max(0.1, deadline - now())))


def minute_line(k):
    m = STATS.minutes[k]
    e, s = m['exec_ms'], m['save_ms']
    errs = sum(m['errors'].values())
    detail = ' (%s)' % ', '.join('%s %d' % kv for kv in sorted(m['errors'].items())) if errs else ''
    return '| %d | %d | %s | %s | %s | %s | %d | %s / %s | %d%s |' % (
        k + 1, len(e), fmt(pct(e, 50)), fmt(pct(e, 90)), fmt(pct(e, 99)), fmt(max(e, default=None)),
        len(s), fmt(pct(s, 50)), fmt(max(s, default=None)), errs, detail)


MINUTE_HEAD = ('| minute | executes | p50 ms | p90 ms | p99 ms | max ms | saves | save p50 / max ms | errors |\n'
               '|---|---|---|---|---|---|---|---|---|')


async def reporter(deadline):
    k = 0
    print(MINUTE_HEAD, flush=True)
    while k < MINUTES:
        await asyncio.sleep(max(0, STATS.t0 + 60 * (k + 1) + 1 - now()))
        print(minute_line(k), flush=True)
        k += 1


def median(xs):
    return pct(xs, 50)


def slope(samples, key):
    """Least-squares slope of samples[key] against time, in units per minute."""
    if len(samples) < 2:
        return 0.0
    ts = [s['t'] / 60 for s in samples]
    ys = [s[key] for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else 0.0


def verdict(samples):
    """First minute against last, and the last TAIL minutes alone: growth that has
    stopped (a table filling up to its size) is told apart from growth that goes on.
    RSS: medians of a minute's samples (a window's first and last sample for the tail);
    fds: the fewest in a minute (in-flight requests aside). Returns (lines, state):
    state None (too short), 'grows', 'grew then flat' or 'flat'."""
    first = [s for s in samples if s['t'] < 60]
    last = [s for s in samples if s['t'] >= (MINUTES - 1) * 60]
    if MINUTES < 2 or not first or not last:
        return ['growth: the run is too short to compare a first and a last minute'], None
    tail = max(1, round(MINUTES * 0.4))
    window = [s for s in samples if s['t'] >= (MINUTES - tail) * 60]
    out, grows, grew = [], False, False
    for key, label, kind in (('hub_rss_kb', 'hub RSS', 'rss'), ('hub_fds', 'hub fds', 'fds'),
                             ('launcher_rss_kb', 'launcher RSS', 'rss'), ('launcher_fds', 'launcher fds', 'fds'),
                             ('agents_rss_kb', 'agents RSS (all)', 'rss'), ('agents_fds', 'agents fds (all)', 'fds')):
        if kind == 'rss':
            a, b = median([s[key] for s in first]), median([s[key] for s in last])
            wa, wb = window[0][key], window[-1][key]
            g = b - a > max(1024, a * 0.02)         # more than 1 MB and 2 %
            gt = wb - wa > max(1024, wa * 0.02)
            out.append('%s %.1f -> %.1f MB (%+.1f%%), in the last %d minutes %+.1f MB%s' % (
                label, a / 1024, b / 1024, 100 * (b - a) / a if a else 0, tail, (wb - wa) / 1024,
                ' GROWS' if gt else ' (grew, then flat)' if g else ''))
        else:
            a, b = min(s[key] for s in first), min(s[key] for s in last)
            g = gt = b > a
            out.append('%s %d -> %d%s' % (label, a, b, ' GROWS' if g else ''))
        grows |= gt
        grew |= g
    steady = [s for s in samples if s['t'] >= 60]
    for key, label in (('hub_rss_kb', 'hub RSS'), ('agents_rss_kb', 'agents RSS (all)')):
        out.append('%s slope after the first minute: %+.0f KB/minute, in the last %d minutes: %+.0f KB/minute' % (
            label, slope(steady, key), tail, slope(window, key)))
    f, l = STATS.minutes[0]['exec_ms'], STATS.minutes[-1]['exec_ms']
    out.append('execute p50 %s -> %s ms, p99 %s -> %s ms' % (fmt(pct(f, 50)), fmt(pct(l, 50)),
                                                             fmt(pct(f, 99)), fmt(pct(l, 99))))
    return out, 'grows' if grows else 'grew then flat' if grew else 'flat'


async def main():
    clients = [Client(n, u, t) for n, (u, t) in enumerate(TOKENS)]
    print('soak: %d clients, %d minutes, a pause of %.0f ms after each cell, a save every %s cells, '
          'timeout %.0f s, %s' % (len(clients), MINUTES, PAUSE_S * 1e3, SAVE_EVERY or 'no', TIMEOUT_S,
                                  'notebook sessions (recorded)' if RECORD else 'bare kernels (no recording)'),
          flush=True)
    before = sample()
    print(sample_line(before, 'before'), flush=True)
    t = now()
    gate = asyncio.Semaphore(4)   # kernels start four at a time

    async def start(c):
        async with gate:
            await asyncio.wait_for(c.start(), 120)
    res = await asyncio.gather(*(start(c) for c in clients), return_exceptions=True)
    bad = [(c.n, r) for c, r in zip(clients, res) if isinstance(r, BaseException)]
    if bad:
        print('soak: %d of %d clients could not start: %s' % (len(bad), len(clients), bad[:3]), flush=True)
        for c in clients:
            if c.ws:
                await c.ws.close()
        return 2
    print('soak: %d kernels started and answering in %.1f s' % (len(clients), now() - t), flush=True)
    STATS.t0 = now()
    deadline = STATS.t0 + MINUTES * 60
    samples = []
    tasks = [asyncio.create_task(sampler(deadline, samples)), asyncio.create_task(reporter(deadline))]
    await asyncio.gather(*(c.run(deadline) for c in clients))
    await asyncio.gather(*tasks)
    await asyncio.gather(*(c.finish() for c in clients))
    await asyncio.sleep(3)   # sessions ended: their runtimes stop
    after = sample()
    execs = sum(len(m['exec_ms']) for m in STATS.minutes)
    saves = sum(len(m['save_ms']) for m in STATS.minutes)
    errors = {}
    for m in STATS.minutes:
        for k, v in m['errors'].items():
            errors[k] = errors.get(k, 0) + v
    print()
    print(MINUTE_HEAD)
    for k in range(MINUTES):
        print(minute_line(k))
    print()
    print(sample_line(before, 'before'))
    print(sample_line(samples[0], 'first'))
    print(sample_line(samples[-1], 'last'))
    print(sample_line(after, 'ended'), '(3 s after every session was deleted)')
    allx = [x for m in STATS.minutes for x in m['exec_ms']]
    print('total: %d executes (%.1f/s), %d saves, %d errors%s; execute p50 %s p90 %s p99 %s max %s ms' % (
        execs, execs / (MINUTES * 60), saves, sum(errors.values()),
        ' (%s)' % ', '.join('%s %d' % kv for kv in sorted(errors.items())) if errors else '',
        fmt(pct(allx, 50)), fmt(pct(allx, 90)), fmt(pct(allx, 99)), fmt(max(allx, default=None))))
    for e in STATS.error_examples:
        print('  error:', e)
    lines, state = verdict(samples)
    for line in lines:
        print('  ' + line)
    print('verdict: %s; %s' % ('0 errors' if not errors else '%d ERRORS' % sum(errors.values()), {
        None: 'growth not judged (one minute)',
        'grows': 'still growing at the end of the soak (above)',
        'grew then flat': 'grew, then flat to the end (above: bounded, not a leak this run can see)',
        'flat': 'no growth (first minute against last)'}[state]), flush=True)
    return 1 if errors else 0


sys.exit(asyncio.run(main()))
