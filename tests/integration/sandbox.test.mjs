// The sandbox as a user meets it, from inside real kernels: another user's drive,
// the hub's data folder and /etc/shadow cannot be read; host processes cannot be
// seen, signalled or traced; nothing can be mounted; a memory hog and a fork bomb
// are contained (the hub and other kernels keep working, clients are told why);
// writes to /usr stay in the runtime's overlay; network = 0 leaves only lo (the
// rest of the network: netns.test.mjs); the disk
// quota (disk_mb) is a full disk inside, and the drive is not part of it.
// labbook-only, and only when the hub runs as root (it logs "runtimes run in
// sandboxes"); otherwise every test is skipped with the reason.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawKernelSocket, until } from './lib/clients.mjs';

// LABBOOK_IT_SANDBOX_SELFCHECK=1 runs every test against a hub with
// `[runtimes] sandbox = 0`: they must all fail there (that shows they can fail).
const SELFCHECK = process.env.LABBOOK_IT_SANDBOX_SELFCHECK === '1';
const MEMORY_MB = 256;
const PIDS = 64;
const DISK_MB = 64;

const ctx = useServer({
  name: 'sandbox',
  users: ['alice', 'bob'],
  config: [
    ...(SELFCHECK ? ['[runtimes]', 'sandbox = 0', ''] : []),
    '[profile.cpu]', 'max_per_user = 4', 'idle_timeout_s = 0', '',
    '[profile.small]', 'display_name = Small', `memory_mb = ${MEMORY_MB}`, 'idle_timeout_s = 0', '',
    '[profile.fewpids]', 'display_name = Few processes', `pids = ${PIDS}`, 'idle_timeout_s = 0', '',
    '[profile.nonet]', 'display_name = No network', 'network = 0', 'idle_timeout_s = 0', '',
    '[profile.tinydisk]', 'display_name = Tiny disk', `disk_mb = ${DISK_MB}`, 'idle_timeout_s = 0', '',
  ].join('\n') + '\n',
});

const NOT_SANDBOXED = 'the hub does not run runtimes in sandboxes (it must run as root on Linux >= 5.19)';
const skip = IS_LABBOOK ? false : 'the sandbox is labbook-only';

/** Skips `t` unless the hub said at start that it sandboxes runtimes. */
function needSandbox(t) {
  if (SELFCHECK) return false;
  if (ctx.server.log().includes('runtimes run in sandboxes')) return false;
  const why = ctx.server.log().match(/RUNTIMES ARE NOT SANDBOXED[^\n]*/);
  t.skip(why ? `${NOT_SANDBOXED}: ${why[0]}` : NOT_SANDBOXED);
  return true;
}

/** Starts a kernel of `spec` for `user`; returns its id. */
async function startKernel(user, spec = 'python3') {
  const r = await api(ctx.server, user, 'POST', '/api/kernels', { name: spec });
  assert.equal(r.status, 201, `start ${spec} for ${user}: ${r.text}`);
  await until(async () => (await api(ctx.server, user, 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
    { timeoutMs: 30000, what: `${spec} kernel of ${user} idle` });
  return r.body.id;
}

const isReply = (id) => (m) => m.header?.msg_type === 'execute_reply' && m.parent_header?.msg_id === id;
const isIdle = (id) => (m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' && m.parent_header?.msg_id === id;
const streams = (c, id, name) => c.msgs.filter((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === id &&
  m.content.name === name).map((m) => m.content.text).join('');

/** Runs `code` on client `c` (already open); resolves with {reply, stdout, stderr} once idle. */
async function runOn(c, code, timeoutMs = 30000) {
  const id = c.execute(code).header.msg_id;
  const what = JSON.stringify(code.slice(0, 60));
  const reply = await c.waitFor(isReply(id), { timeoutMs, what: `execute_reply to ${what}` });
  await c.waitFor(isIdle(id), { timeoutMs, what: `idle after ${what}` });
  return { reply, stdout: streams(c, id, 'stdout'), stderr: streams(c, id, 'stderr') };
}

/** Runs `code` in `user`'s kernel `id` over a fresh raw WebSocket client. */
async function run(user, id, code, timeoutMs) {
  const c = rawKernelSocket(ctx.server, user, id);
  await c.opened;
  try {
    return await runOn(c, code, timeoutMs);
  } finally {
    await c.close();
  }
}

/**
 * Runs Python `code` that leaves its findings in a dict `R`; returns R (printed
 * as JSON after a marker). Fails with the kernel's error if the code raised.
 */
async function probe(user, id, code, timeoutMs) {
  const r = await run(user, id, `import json as _j\nR = {}\n${code}\nprint("@@R@@" + _j.dumps(R))`, timeoutMs);
  assert.equal(r.reply.content.status, 'ok', `probe raised: ${r.reply.content.ename}: ${r.reply.content.evalue}\n${r.stderr}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('@@R@@'));
  assert.ok(line, `probe printed its result: ${r.stdout}`);
  return JSON.parse(line.slice(5));
}

/** Python: R[key] = what reading `path` gives: 'ERR <errno name>' or the bytes read (as text, first 200). */
const PY_READ = `
import os, errno
def _read(p):
    try:
        if os.path.isdir(p):
            return 'DIR ' + ' '.join(sorted(os.listdir(p)))
        with open(p, 'rb') as f:
            return 'FILE ' + f.read(200).decode('latin-1')
    except OSError as e:
        return 'ERR ' + errno.errorcode.get(e.errno, str(e.errno))
`;

const deleteKernel = (user, id) => api(ctx.server, user, 'DELETE', `/api/kernels/${id}`);

describe('files', { skip }, () => {
  test("alice's kernel cannot read bob's drive, the hub's data or /etc/shadow; her own drive is at /content/drive/MyDrive", async (t) => {
    if (needSandbox(t)) return;
    const s = ctx.server;
    const SECRET = `BOB-SECRET-${process.pid}-${Date.now()}`;
    const put = await api(s, 'bob', 'PUT', '/api/contents/secret-bob.txt', { type: 'file', format: 'text', content: SECRET });
    assert.equal(put.status, 201, put.text);
    assert.ok(fs.readFileSync(path.join(s.drive('bob'), 'secret-bob.txt'), 'utf8').includes(SECRET), "bob's file is on the host");
    const MINE = `ALICE-OWN-${Date.now()}`;
    assert.equal((await api(s, 'alice', 'PUT', '/api/contents/mine.txt', { type: 'file', format: 'text', content: MINE })).status, 201);
    assert.ok(fs.statSync('/etc/shadow').size > 0, "the host's /etc/shadow is not empty (else the check below says nothing)");

    const bobHost = path.join(s.drive('bob'), 'secret-bob.txt');
    const paths = [
      bobHost,
      s.drive('bob'),
      path.join(s.dataDir, 'drive'),
      s.dataDir,
      path.join(s.dataDir, 'labbook.db'),
      path.join(s.dataDir, 'labbook.ini'),
      '/content/drive/MyDrive/../bob/secret-bob.txt',
      '/content/drive/MyDrive/../../bob/secret-bob.txt',
      '/content/drive/bob/secret-bob.txt',
      `/content/drive/MyDrive/../../../${bobHost}`,
      `/content/drive/..${bobHost}`,
      `/proc/1/root${bobHost}`,
      `/proc/self/root${bobHost}`,
      `/proc/1/cwd/drive/bob/secret-bob.txt`,
      `/proc/1/root${s.dataDir}/labbook.db`,
      '/etc/shadow',
      '/etc/gshadow',
    ];
    const alice = await startKernel('alice');
    const R = await probe('alice', alice, `${PY_READ}
R['paths'] = {p: _read(p) for p in ${JSON.stringify(paths)}}
R['cwd'] = os.getcwd()
R['mine'] = _read('/content/drive/MyDrive/mine.txt')
with open('/content/drive/MyDrive/from-kernel.txt', 'w') as f:
    f.write('written in the kernel ' + ${JSON.stringify(MINE)})
# Any file anywhere named like bob's (the whole tree but /proc, /sys, /usr)?
R['found'] = []
for top in os.listdir('/'):
    if top in ('proc', 'sys', 'usr', 'dev'):
        continue
    for d, dirs, files in os.walk('/' + top):
        if 'secret-bob.txt' in files:
            R['found'].append(os.path.join(d, 'secret-bob.txt'))
for d, dirs, files in os.walk('/proc/1/root/', topdown=True):
    dirs[:] = [x for x in dirs if d != '/proc/1/root/' or x not in ('proc', 'sys', 'usr', 'dev')]
    if 'secret-bob.txt' in files:
        R['found'].append(os.path.join(d, 'secret-bob.txt'))
`, 60000);
    t.diagnostic(`alice's kernel saw: ${JSON.stringify(R.paths)}`);
    const leaks = Object.entries(R.paths).filter(([, v]) => v.includes(SECRET) || v.includes('SQLite format') ||
      v.includes('secret-bob.txt') || v.includes('labbook.db') || /^DIR .*\b(alice|bob)\b/.test(v));
    assert.deepEqual(leaks, [], `alice's kernel reads what is not hers: ${JSON.stringify(R.paths, null, 1)}`);
    assert.deepEqual(R.found, [], "bob's file is nowhere in alice's sandbox");
    for (const f of ['/etc/shadow', '/etc/gshadow']) {
      assert.ok(R.paths[f] === 'FILE ' || R.paths[f].startsWith('ERR '), `${f} is empty or unreadable: ${JSON.stringify(R.paths[f])}`);
    }
    assert.equal(R.cwd, '/content');
    assert.equal(R.mine, `FILE ${MINE}`, 'her own drive file (written through the API) is at /content/drive/MyDrive');
    const got = await api(s, 'alice', 'GET', '/api/contents/from-kernel.txt?content=1');
    assert.equal(got.status, 200, 'a file written in the kernel appears through the API');
    assert.equal(got.body.content, `written in the kernel ${MINE}`);
    assert.equal((await api(s, 'bob', 'GET', '/api/contents/from-kernel.txt')).status, 404, "...and not in bob's drive");
    await deleteKernel('alice', alice);
  });
});

describe('identities', { skip }, () => {
  test('each runtime runs as its own unprivileged host identity (root inside, a distinct uid range outside)', async (t) => {
    if (needSandbox(t)) return;
    const ids = [await startKernel('alice'), await startKernel('alice'), await startKernel('bob')];
    const users = ['alice', 'alice', 'bob'];
    const maps = [];
    for (let i = 0; i < ids.length; i++) {
      const R = await probe(users[i], ids[i], `import os\nR['map'] = open('/proc/self/uid_map').read().split()\nR['uid'] = os.getuid()`);
      assert.equal(R.uid, 0, 'root inside');
      maps.push(R.map.map(Number));
    }
    for (const [inside, outside, count] of maps) {
      assert.equal(inside, 0);
      assert.ok(outside >= 100000, `an unprivileged range outside: ${outside}`);
      assert.equal(count, 65536);
    }
    const bases = maps.map((m) => m[1]);
    assert.equal(new Set(bases).size, 3, `three runtimes, three ranges: ${bases}`);
    for (let i = 0; i < ids.length; i++) await deleteKernel(users[i], ids[i]);
  });
});

describe('processes and mounts', { skip }, () => {
  test('host processes cannot be seen, signalled or traced; nothing can be mounted or unmounted', async (t) => {
    if (needSandbox(t)) return;
    const s = ctx.server;
    const hub = s.pid;
    const bob = await startKernel('bob'); // its agent and kernel must not be visible either
    const alice = await startKernel('alice');
    const R = await probe('alice', alice, `
import os, errno, ctypes, subprocess
def _en(e): return errno.errorcode.get(e, str(e))
R['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
cmds = []
for p in R['pids']:
    try:
        with open('/proc/%d/cmdline' % p, 'rb') as f:
            cmds.append(f.read().replace(b'\\0', b' ').decode('latin-1'))
    except OSError:
        pass
R['cmdlines'] = cmds
ps = subprocess.run(['ps', 'aux'], capture_output=True, text=True)
R['ps'] = ps.stdout + ps.stderr
try:
    os.kill(${hub}, 0)
    R['kill0'] = 'ok'
except OSError as e:
    R['kill0'] = _en(e.errno)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
rc = libc.ptrace(0x4206, ${hub}, None, None)  # PTRACE_SEIZE: does not stop the tracee
R['ptrace'] = 'ok' if rc == 0 else _en(ctypes.get_errno())
if rc == 0:  # let go of it again (a traced hub would stop at its next signal)
    libc.ptrace(0x4207, ${hub}, None, None)  # PTRACE_INTERRUPT
    os.waitpid(${hub}, 0x40000000)  # __WALL
    libc.ptrace(17, ${hub}, None, None)  # PTRACE_DETACH
# Into a folder of our own (should the sandbox leak, the host's /mnt stays as it is).
mnt = '/tmp/labbook-it-mnt-%d' % os.getpid()
os.makedirs(mnt, exist_ok=True)
m = subprocess.run(['mount', '-t', 'tmpfs', 'x', '/mnt'], capture_output=True, text=True)
R['mount_cmd'] = [m.returncode, m.stderr.strip()]
if m.returncode == 0:
    subprocess.run(['umount', '/mnt'])
rc = libc.mount(b'x', mnt.encode(), b'tmpfs', 0, None)
R['mount_sys'] = 'ok' if rc == 0 else _en(ctypes.get_errno())
with open('/proc/self/mounts') as f:
    R['mnt_mounts'] = [l for l in f if l.startswith('x ') and 'tmpfs' in l]
if rc == 0:
    libc.umount2(mnt.encode(), 2)
rc = libc.umount2(b'/content/drive/MyDrive', 2)  # MNT_DETACH
R['umount'] = 'ok' if rc == 0 else _en(ctypes.get_errno())
u = subprocess.run(['unshare', '-Urm', 'true'], capture_output=True, text=True)
R['unshare'] = [u.returncode, u.stderr.strip()]
R['hostname'] = os.uname().nodename
try:
    R['init_environ'] = open('/proc/1/environ', 'rb').read().decode('latin-1')
except OSError as e:
    R['init_environ'] = 'ERR ' + _en(e.errno)
`);
    t.diagnostic(`inside: pids ${R.pids}, kill ${R.kill0}, ptrace ${R.ptrace}, mount ${R.mount_cmd} / ${R.mount_sys}, umount ${R.umount}, unshare ${R.unshare}`);
    assert.ok(R.pids.length <= 12, `only a handful of processes are visible: ${R.pids}`);
    assert.ok(!R.pids.includes(hub), `the hub's pid ${hub} is not among ${R.pids}`);
    // PID 1 is the sandbox's init (a fork of alice's agent, renamed labbook-init);
    // nothing of the hub's, of bob's runtime, or of the host's paths may show.
    const host = (c) => /\bserve\b.*--data/.test(c) || c.includes(bob) || c.includes(' agent ') ||
      c.includes(s.dataDir);
    assert.deepEqual(R.cmdlines.filter(host), [], 'no host process or host path is visible');
    assert.ok(R.cmdlines.some((c) => c.startsWith('labbook-init')), `PID 1 is labbook-init: ${R.cmdlines}`);
    assert.deepEqual(R.ps.split('\n').filter(host), [], `ps aux shows host processes:\n${R.ps}`);
    assert.ok(R.ps.split('\n').filter((l) => l.trim()).length <= 13, `ps aux shows a handful:\n${R.ps}`);
    assert.equal(R.kill0, 'ESRCH', "kill(hub, 0) finds no such process");
    assert.ok(['ESRCH', 'EPERM'].includes(R.ptrace), `ptrace(SEIZE, hub) fails: ${R.ptrace}`);
    assert.notEqual(R.mount_cmd[0], 0, `mount -t tmpfs x /mnt fails: ${R.mount_cmd}`);
    assert.equal(R.mount_sys, 'EPERM', 'mount(2) fails');
    assert.ok(['EPERM', 'EINVAL'].includes(R.umount), `umount of the drive fails: ${R.umount}`);
    assert.notEqual(R.unshare[0], 0, `unshare -Urm fails: ${R.unshare}`);
    assert.deepEqual(R.mnt_mounts, [], 'no tmpfs got mounted');
    assert.equal(R.hostname, 'labbook');
    assert.equal(R.init_environ, 'ERR EACCES', "init's environment (the hub's) cannot be read");
    // The hub is alive and serving.
    assert.equal((await api(s, 'alice', 'GET', '/api/status')).status, 200);
    process.kill(hub, 0);
    await deleteKernel('alice', alice);
    await deleteKernel('bob', bob);
  });
});

describe('limits', { skip }, () => {
  test(`a memory hog (memory_mb = ${MEMORY_MB}) dies with the reason, told to every client; the hub and bob's kernel carry on`, async (t) => {
    if (needSandbox(t)) return;
    const s = ctx.server;
    const bob = await startKernel('bob');
    assert.equal((await run('bob', bob, 'bobs_var = 4242')).reply.content.status, 'ok');
    const hog = await startKernel('alice', 'python3-small');
    const clients = [rawKernelSocket(s, 'alice', hog), rawKernelSocket(s, 'alice', hog)];
    try {
      await Promise.all(clients.map((c) => c.opened));
      // The limit holds for small things: a 64 MiB buffer is fine.
      assert.equal((await runOn(clients[1], 'small = b"x" * (64 << 20); del small')).reply.content.status, 'ok');
      const from = clients.map((c) => c.msgs.length);
      // 1 GiB, four times the limit, 16 MiB at a time.
      const hogId = clients[0].execute('hog = []\nfor _ in range(64):\n    hog.append(b"x" * (16 << 20))').header.msg_id;
      const down = (m) => m.channel === 'iopub' && m.header?.msg_type === 'status' &&
        ['restarting', 'dead'].includes(m.content?.execution_state);
      const first = await clients[0].waitFor((m) => down(m) || isReply(hogId)(m),
        { from: from[0], timeoutMs: 30000, what: 'status restarting or dead' });
      assert.ok(down(first), `the hog got 1 GiB and its cell ended: ${JSON.stringify(first.content)}`);
      const seen = await Promise.all(clients.map((c, i) => c.waitFor(down,
        { from: from[i], timeoutMs: 10000, what: `client ${i}: status restarting or dead` })));
      t.diagnostic(`clients were told: ${seen.map((m) => `${m.content.execution_state}: ${m.content.reason}`).join('; ')}`);
      for (const m of seen) {
        assert.match(m.content.reason ?? '', /memory/i, `reason: ${JSON.stringify(m.content)}`);
        assert.match(m.content.reason, new RegExp(`limit ${MEMORY_MB} MiB`), `the reason names the limit: ${m.content.reason}`);
      }
      // The hub keeps serving; bob's kernel keeps its variables.
      assert.equal((await api(s, 'bob', 'GET', '/api/status')).status, 200);
      const b = await run('bob', bob, 'print(bobs_var)');
      assert.equal(b.stdout.trim(), '4242');
      process.kill(s.pid, 0);
      // alice's runtime comes back (without the hog).
      if (seen[0].content.execution_state === 'restarting') {
        await until(async () => (await api(s, 'alice', 'GET', `/api/kernels/${hog}`)).body?.execution_state === 'idle',
          { timeoutMs: 30000, what: 'the hog kernel restarted' });
        const again = await runOn(clients[1], 'print("hog" in globals())');
        assert.equal(again.stdout.trim(), 'False');
      }
    } finally {
      for (const c of clients) await c.close();
    }
    await deleteKernel('alice', hog);
    await deleteKernel('bob', bob);
  });

  test(`a fork bomb (pids = ${PIDS}) is contained; the hub and bob's kernel keep working`, async (t) => {
    if (needSandbox(t)) return;
    const s = ctx.server;
    const bob = await startKernel('bob');
    assert.equal((await run('bob', bob, 'bobs_var = 777')).reply.content.status, 'ok');
    const bomb = await startKernel('alice', 'python3-fewpids');
    const c = rawKernelSocket(s, 'alice', bomb);
    await c.opened;
    try {
      const from = c.msgs.length;
      // Children sleep; the parent forks until the limit says no, then kills them.
      const r = await runOn(c, `
import os, time, signal, errno
kids, err = [], None
for _ in range(1000):
    try:
        p = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if p == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(p)
print("forked", len(kids), err)
for p in kids:
    os.kill(p, signal.SIGKILL)
for p in kids:
    os.waitpid(p, 0)
`, 60000).catch((e) => ({ error: e }));
      t.diagnostic(`python bomb: ${r.error ? r.error.message : r.stdout.trim()}`);
      if (!r.error) {
        const m = r.stdout.match(/forked (\d+) (\S+)/);
        assert.ok(m, `the bomb printed its count: ${r.stdout} ${r.stderr}`);
        assert.ok(Number(m[1]) < PIDS, `at most ${PIDS} processes: forked ${m[1]}`);
        assert.equal(m[2], 'EAGAIN', 'fork is refused with EAGAIN at the limit');
        // And a shell fork bomb, ended by timeout (which kills its process group).
        const sh = await runOn(c, "!timeout -s KILL 5 bash -c ':(){ :|:& };:' 2>/dev/null; echo bomb-done", 60000)
          .catch((e) => ({ error: e }));
        t.diagnostic(`shell bomb: ${sh.error ? sh.error.message : sh.stdout.trim()}`);
        if (!sh.error) assert.match(sh.stdout, /bomb-done/);
      }
      // The offending kernel either still answers or was restarted with a reason.
      const restarted = c.msgs.slice(from).find((m) => m.header?.msg_type === 'status' &&
        ['restarting', 'dead'].includes(m.content?.execution_state));
      t.diagnostic(`the bomb's kernel: ${restarted ? `${restarted.content.execution_state}: ${restarted.content.reason}` : 'kept running'}`);
      if (restarted) {
        assert.match(restarted.content.reason ?? '', /process limit|died/i, `reason: ${JSON.stringify(restarted.content)}`);
      } else {
        assert.ok(!r.error, `the bomb's cell ended: ${r.error?.message}`);
      }
      await until(async () => (await api(s, 'alice', 'GET', `/api/kernels/${bomb}`)).body?.execution_state === 'idle',
        { timeoutMs: 30000, what: 'the bomb kernel idle' });
      const after = await runOn(c, 'print(6 * 7)');
      assert.equal(after.stdout.trim(), '42', 'the offending kernel answers');
      // The hub keeps serving (and can start a new kernel); bob's kernel keeps its variables.
      assert.equal((await api(s, 'bob', 'GET', '/api/status')).status, 200);
      assert.equal((await run('bob', bob, 'print(bobs_var)')).stdout.trim(), '777');
      const fresh = await startKernel('bob');
      assert.equal((await run('bob', fresh, 'print(1 + 1)')).stdout.trim(), '2');
      await deleteKernel('bob', fresh);
    } finally {
      await c.close();
    }
    await deleteKernel('alice', bomb);
    await deleteKernel('bob', bob);
  });
});

describe('overlay and network', { skip }, () => {
  test("pip install and writes to /usr succeed inside, in the runtime's overlay; the host's /usr is unchanged", async (t) => {
    if (needSandbox(t)) return;
    const tag = `labbook_it_probe_${process.pid}`;
    const usrFile = `/usr/${tag}.txt`;
    assert.ok(!fs.existsSync(usrFile), `${usrFile} does not exist on the host before`);
    let where = null;
    // Should the sandbox leak (or in the self-check), leave the host's /usr clean.
    t.after(() => {
      fs.rmSync(usrFile, { force: true });
      if (!where) return;
      const dir = path.dirname(where);
      fs.rmSync(where, { force: true });
      fs.rmSync(path.join(dir, `${tag}-1.0.dist-info`), { recursive: true, force: true });
      for (const f of fs.existsSync(path.join(dir, '__pycache__')) ? fs.readdirSync(path.join(dir, '__pycache__')) : []) {
        if (f.startsWith(`${tag}.`)) fs.rmSync(path.join(dir, '__pycache__', f), { force: true });
      }
    });
    const alice = await startKernel('alice');
    // A minimal wheel, installed offline with Debian's pip (as root inside).
    const R = await probe('alice', alice, `
import os, subprocess, zipfile, sys, importlib
with open('${usrFile}', 'w') as f:
    f.write('inside')
R['usr'] = open('${usrFile}').read()
whl = '/tmp/${tag}-1.0-py3-none-any.whl'
di = '${tag}-1.0.dist-info/'
with zipfile.ZipFile(whl, 'w') as z:
    z.writestr('${tag}.py', 'VALUE = 42\\n')
    z.writestr(di + 'METADATA', 'Metadata-Version: 2.1\\nName: ${tag}\\nVersion: 1.0\\n')
    z.writestr(di + 'WHEEL', 'Wheel-Version: 1.0\\nGenerator: it\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')
    z.writestr(di + 'RECORD', '')
p = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', '--no-deps',
                    '--break-system-packages', '--root-user-action=ignore', whl], capture_output=True, text=True)
R['pip'] = [p.returncode, (p.stdout + p.stderr)[-800:]]
importlib.invalidate_caches()
import ${tag}
R['value'] = ${tag}.VALUE
R['where'] = ${tag}.__file__
`, 90000);
    where = R.where;
    assert.equal(R.usr, 'inside', 'a write to /usr succeeds inside');
    assert.equal(R.pip[0], 0, `pip install succeeds inside: ${R.pip[1]}`);
    assert.equal(R.value, 42);
    assert.ok(R.where.startsWith('/usr/'), `installed into the system: ${R.where}`);
    assert.ok(!fs.existsSync(usrFile), `the host's ${usrFile} does not exist`);
    assert.ok(!fs.existsSync(R.where), `the host has no ${R.where}`);
    // ...and the overlay is the runtime's own: bob's kernel does not see it.
    const bob = await startKernel('bob');
    const B = await probe('bob', bob, `import os\nR['usr'] = os.path.exists('${usrFile}')\nR['mod'] = os.path.exists(${JSON.stringify(R.where)})`);
    assert.deepEqual(B, { usr: false, mod: false }, "another runtime does not see alice's overlay");
    await deleteKernel('alice', alice);
    await deleteKernel('bob', bob);
  });

  test(`disk_mb = ${DISK_MB}: writing past it fails inside with "No space left on device"; the drive and the host are not limited by it`, async (t) => {
    if (needSandbox(t)) return;
    const alice = await startKernel('alice', 'python3-tinydisk');
    const R = await probe('alice', alice, `
import os, errno
def fill(path, mb):
    n = 0
    try:
        with open(path, 'wb') as f:
            for _ in range(mb):
                f.write(b'x' * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
                n += 1
        return [n, None]
    except OSError as e:
        return [n, errno.errorcode.get(e.errno, str(e.errno)), str(e)]
R['content'] = fill('/content/big.bin', ${DISK_MB * 2})
os.remove('/content/big.bin')
R['usr'] = fill('/usr/local/big.bin', ${DISK_MB * 2})
os.remove('/usr/local/big.bin')
R['drive'] = fill('/content/drive/MyDrive/big.bin', ${DISK_MB + 16})
R['after'] = fill('/content/small.bin', 8)
`, 120000);
    assert.equal(R.content[1], 'ENOSPC', `/content is full at the quota: ${JSON.stringify(R.content)}`);
    assert.ok(R.content[0] >= DISK_MB * 0.7 && R.content[0] < DISK_MB, `about ${DISK_MB} MiB fit: ${R.content[0]}`);
    assert.ok(/No space left on device/.test(R.content[2]), R.content[2]);
    assert.equal(R.usr[1], 'ENOSPC', `the overlay's writes count too: ${JSON.stringify(R.usr)}`);
    assert.deepEqual(R.drive, [DISK_MB + 16, null], 'the drive is not part of the quota');
    assert.deepEqual(R.after, [8, null], 'space freed inside is usable again');
    fs.rmSync(path.join(ctx.server.drive('alice'), 'big.bin'), { force: true });
    // The figures show the quota and what is used of it.
    const fig = await until(async () => {
      const r = await api(ctx.server, 'alice', 'GET', `/api/runtimes/${alice}`);
      return r.body?.disk?.used > 4 << 20 ? r.body : null;
    }, { timeoutMs: 15000, what: 'disk figures' });
    assert.equal(fig.disk.quota, DISK_MB << 20);
    assert.ok(fig.disk.used < DISK_MB << 20, JSON.stringify(fig.disk));
    await deleteKernel('alice', alice);
    // Its disk goes with it: nothing of the runtime stays mounted on the host.
    await until(() => !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(`/runtimes/${alice}/`),
      { timeoutMs: 10000, what: "the runtime's disk unmounted" });
  });

  test('network = 0 leaves only lo; neither it nor network = 1 reaches the hub\'s port (netns.test.mjs: what network = 1 reaches)', async (t) => {
    if (needSandbox(t)) return;
    const s = ctx.server;
    const code = `
import os, socket, errno, subprocess
R['ifaces'] = sorted(os.listdir('/sys/class/net'))
ip = subprocess.run(['ip', '-o', 'addr'], capture_output=True, text=True)
R['ip'] = ip.stdout
sock = socket.socket()
sock.settimeout(5)
try:
    sock.connect(('127.0.0.1', ${s.port}))
    R['connect'] = 'ok'
except OSError as e:
    R['connect'] = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
sock.close()
`;
    const off = await startKernel('alice', 'python3-nonet');
    const on = await startKernel('bob');
    const R = await probe('alice', off, code);
    const C = await probe('bob', on, code);
    assert.deepEqual(R.ifaces, ['lo'], `only lo: ${R.ifaces}`);
    const addrs = R.ip.split('\n').filter((l) => l.trim()).map((l) => l.split(/\s+/)[1]);
    assert.deepEqual([...new Set(addrs)], ['lo'], `ip addr shows only lo:\n${R.ip}`);
    assert.equal(R.connect, 'ECONNREFUSED', "the hub's port cannot be reached without network");
    assert.equal(C.connect, 'ECONNREFUSED', "with network = 1 the runtime has a loopback of its own too");
    await deleteKernel('alice', off);
    await deleteKernel('bob', on);
  });
});
