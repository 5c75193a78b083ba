// Test harness: starts a real server (labbook's hub, or jupyter_server as a
// reference) in a fresh data directory, hands out per-user tokens, and stops it.
//
// Target selection: LABBOOK_TARGET=labbook (default) or jupyter_server.
// LABBOOK_BIN overrides the labbook binary (default ../../build/labbook).

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { before, after, afterEach } from 'node:test';
import { managersFor } from './clients.mjs';

const SUITE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TMP_DIR = path.join(SUITE_DIR, '.tmp');

export const TARGET = process.env.LABBOOK_TARGET || 'labbook';
if (TARGET !== 'labbook' && TARGET !== 'jupyter_server') {
  throw new Error(`LABBOOK_TARGET must be "labbook" or "jupyter_server", not ${JSON.stringify(TARGET)}`);
}
export const IS_LABBOOK = TARGET === 'labbook';
/**
 * Self-check of the suite: LABBOOK_IT_SELFCHECK=1 with the jupyter_server
 * target runs the labbook-only tests anyway, with "bob" as a second name for
 * the one jupyter_server user. They must fail there; that shows they can fail.
 */
export const SELFCHECK = !IS_LABBOOK && process.env.LABBOOK_IT_SELFCHECK === '1';
/** Whether tests of labbook-only behaviour run (on labbook, or in the self-check). */
export const RUN_LABBOOK_ONLY = IS_LABBOOK || SELFCHECK;
/** Reason used by tests that need two users on a single-user server. */
export const SINGLE_USER_REASON = 'jupyter_server has a single user: isolation between users is labbook-only';

const LABBOOK_BIN = process.env.LABBOOK_BIN
  ? path.resolve(process.env.LABBOOK_BIN)
  : path.resolve(SUITE_DIR, '../../build/labbook');
const JUPYTER_PYTHON = process.env.JUPYTER_PYTHON || '/usr/bin/python3';
const START_TIMEOUT_MS = 30000;
const STOP_TIMEOUT_MS = 10000;

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs the labbook CLI; `input` (a string) is its stdin. Returns its stdout. */
export function labbookCli(args, { input, uid } = {}) {
  return execFileSync(LABBOOK_BIN, args, {
    encoding: 'utf8',
    input,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: 20000,
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
}

/**
 * Starts a server. Returns
 * {target, baseUrl, wsUrl, tokens: {user: token}, passwords: {user: pw}, users,
 *  dataDir, drive(user), logFile, log(), pid, proc, stop(), restart()}.
 * On jupyter_server only the first user exists (tokens has only that key).
 *
 * Options:
 * - users: user names, each with a token ('alice', 'bob' by default);
 * - passwords: {name: password}: labbook only, each set with
 *   `labbook user passwd NAME` reading stdin (a name not in `users` is created
 *   with `labbook user add NAME --password-stdin` and gets no token);
 * - config: INI text, written to DIR/labbook.ini and passed as --config
 *   (labbook only; ignored on jupyter_server);
 * - env: extra environment variables for the server process (both targets),
 *   e.g. JUPYTER_PATH for extra kernelspecs.
 */
export async function startServer({ users = ['alice', 'bob'], name = 'server', passwords = {}, config, env: extraEnv = {}, runAs } = {}) {
  fs.mkdirSync(TMP_DIR, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-it-'));
  // runAs (a uid, from root): the hub and the CLI run as that user, rootless.
  const as = runAs === undefined ? {} : { uid: runAs, gid: runAs };
  if (runAs !== undefined) fs.chownSync(dataDir, runAs, runAs);
  const stamp = `${name}-${process.pid}-${Date.now()}`;
  const logFile = path.join(TMP_DIR, `${stamp}.log`);
  const tokens = {};
  let drive;
  let argv;
  let env = { ...process.env, ...extraEnv };

  if (IS_LABBOOK) {
    if (!fs.existsSync(LABBOOK_BIN)) {
      throw new Error(`labbook binary not found at ${LABBOOK_BIN}: build it or set LABBOOK_BIN`);
    }
    for (const u of users) {
      labbookCli(['user', 'add', u, '--data', dataDir], as);
      const tok = labbookCli(['user', 'token', u, '--data', dataDir], as).trim();
      if (!tok || /\s/.test(tok)) throw new Error(`"labbook user token ${u}" printed ${JSON.stringify(tok)}`);
      tokens[u] = tok;
    }
    for (const [u, pw] of Object.entries(passwords)) {
      if (users.includes(u)) labbookCli(['user', 'passwd', u, '--data', dataDir], { input: `${pw}\n` });
      else labbookCli(['user', 'add', u, '--password-stdin', '--data', dataDir], { input: `${pw}\n` });
    }
    drive = (u) => path.join(dataDir, 'drive', u);
    // No pool of pre-started runtimes unless a test asks for one (pool.test.mjs):
    // the other suites count and time their own runtimes.
    const poolOff = /^\s*pool\s*=/m.test(config ?? '') ? '' : '[runtimes]\npool = 0\n\n';
    // Nor privilege separation unless asked for (privsep.test.mjs): the suites write
    // files into drives as root, which a hub running as its own user could not change.
    const rootHub = /^\s*user\s*=/m.test(config ?? '') || runAs !== undefined ? '' : '[server]\nuser = root\n\n';
    const configFile = path.join(dataDir, 'labbook.ini');
    fs.writeFileSync(configFile, rootHub + poolOff + (config ?? ''));
    if (runAs !== undefined) fs.chownSync(configFile, runAs, runAs);
    const configArgs = ['--config', configFile];
    argv = (port) => [LABBOOK_BIN, 'serve', ...configArgs, '--data', dataDir, '--port', String(port), '--bind', '127.0.0.1'];
  } else {
    const u = users[0];
    tokens[u] = crypto.randomBytes(24).toString('hex');
    const root = path.join(dataDir, 'drive', u);
    fs.mkdirSync(root, { recursive: true });
    if (SELFCHECK) for (const other of users.slice(1)) tokens[other] = tokens[u];
    drive = (user) => {
      if (!(user in tokens)) throw new Error(`jupyter_server has only user ${u}`);
      return root;
    };
    // Keep jupyter's runtime/config files inside the temp dir, never in $HOME.
    env = {
      ...env,
      JUPYTER_RUNTIME_DIR: path.join(dataDir, 'jupyter-runtime'),
      JUPYTER_CONFIG_DIR: path.join(dataDir, 'jupyter-config'),
      IPYTHONDIR: path.join(dataDir, 'ipython'),
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
    };
    argv = (port) => {
      const a = [JUPYTER_PYTHON, '-m', 'jupyter_server',
        `--ServerApp.token=${tokens[u]}`, `--port=${port}`, '--port-retries=0', '--ip=127.0.0.1',
        `--ServerApp.root_dir=${root}`, '--no-browser', '--ServerApp.open_browser=False'];
      if (process.getuid && process.getuid() === 0) a.push('--allow-root');
      return a;
    };
  }

  const anyToken = tokens[users[0]];
  const server = {
    target: TARGET,
    users: Object.keys(tokens),
    tokens,
    passwords: IS_LABBOOK ? { ...passwords } : {},
    dataDir,
    drive,
    logFile,
    baseUrl: '',
    wsUrl: '',
    port: 0,
    proc: null,
    /** The server process's pid (null when it is not running). */
    get pid() { return server.proc ? server.proc.pid : null; },
    /** The server's stderr/stdout so far. */
    log() {
      try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; }
    },
    /**
     * Stops the server with SIGTERM; throws if it takes over 10 s or fails. labbook
     * leaves its runtimes running for its next start: unless keepRuntimes, they are
     * stopped too (their agents, found by this data dir in their command line).
     */
    async stop({ keepRuntimes = false } = {}) {
      const p = server.proc;
      if (!p) {
        if (!keepRuntimes) await server.killRuntimes();
        return;
      }
      server.proc = null;
      if (p.exitCode !== null || p.signalCode !== null) {
        throw new Error(`server had already exited (code ${p.exitCode}, signal ${p.signalCode})`);
      }
      const exited = new Promise((r) => p.once('exit', (code, sig) => r({ code, sig })));
      p.kill('SIGTERM');
      let timer;
      const res = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r(null), STOP_TIMEOUT_MS); })]);
      clearTimeout(timer);
      if (res === null) {
        p.kill('SIGKILL');
        await exited;
        if (!keepRuntimes) await server.killRuntimes();
        throw new Error(`server did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM`);
      }
      if (!keepRuntimes) await server.killRuntimes();
    },
    /** Host pids of processes whose command line names this server's data dir. */
    runtimeProcs() {
      const mark = path.join(dataDir, 'runtimes') + '/';
      return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
        try {
          return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(mark) &&
            !/\) Z /.test(fs.readFileSync(`/proc/${d}/stat`, 'utf8'));
        } catch { return false; }
      }).map(Number);
    },
    /** Stops runtimes the server left running (SIGTERM, then SIGKILL after 5 s). */
    async killRuntimes() {
      if (!IS_LABBOOK) return;
      const pids = server.runtimeProcs();
      for (const pid of pids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
      const deadline = Date.now() + 5000;
      while (server.runtimeProcs().length && Date.now() < deadline) await sleep(100);
      for (const pid of server.runtimeProcs()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    },
    /** Stops and starts the server again on the same data dir and port. */
    async restart() {
      await server.stop({ keepRuntimes: true });
      await launch(server.port);
    },
    /**
     * Sends the server process `signal` (a crash: SIGKILL) and waits for it to exit,
     * leaving its runtimes running; start() brings it back on the same port.
     */
    async kill(signal = 'SIGKILL') {
      const p = server.proc;
      if (!p) throw new Error('server is not running');
      server.proc = null;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await exited;
    },
    /** Starts the server again on the same data dir and port after kill(). */
    async start() {
      await launch(server.port);
    },
  };

  async function launch(port) {
    const out = fs.openSync(logFile, 'a');
    fs.writeSync(out, `\n=== ${argv(port).join(' ')}\n`);
    const p = spawn(argv(port)[0], argv(port).slice(1), {
      env: runAs === undefined ? env : { ...env, HOME: dataDir },
      stdio: ['ignore', out, out],
      ...as,
    });
    fs.closeSync(out);
    server.proc = p;
    server.port = port;
    server.baseUrl = `http://127.0.0.1:${port}`;
    server.wsUrl = `ws://127.0.0.1:${port}`;
    let exitInfo = null;
    p.once('exit', (code, sig) => { exitInfo = { code, sig }; });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exitInfo) {
        server.proc = null;
        throw new Error(`server exited during start (code ${exitInfo.code}, signal ${exitInfo.sig}):\n${server.log()}`);
      }
      try {
        const r = await fetch(`${server.baseUrl}/api/status`, {
          headers: { Authorization: `token ${anyToken}` },
          signal: AbortSignal.timeout(2000),
        });
        await r.arrayBuffer();
        if (r.status === 200) return;
      } catch { /* not listening yet */ }
      await sleep(100);
    }
    await server.stop().catch(() => {});
    throw new Error(`server did not answer GET /api/status with 200 within ${START_TIMEOUT_MS / 1000} s:\n${server.log()}`);
  }

  await launch(await freePort());
  return server;
}

/**
 * Best-effort cleanup: shuts down every kernel of every user, so no kernel
 * outlives the suite even if the server leaves them running.
 */
async function shutdownAllKernels(server) {
  for (const tok of Object.values(server.tokens)) {
    try {
      const r = await fetch(`${server.baseUrl}/api/kernels`, {
        headers: { Authorization: `token ${tok}` }, signal: AbortSignal.timeout(5000),
      });
      if (r.status !== 200) continue;
      for (const k of await r.json()) {
        await fetch(`${server.baseUrl}/api/kernels/${k.id}`, {
          method: 'DELETE', headers: { Authorization: `token ${tok}` }, signal: AbortSignal.timeout(10000),
        }).then((x) => x.arrayBuffer()).catch(() => {});
      }
    } catch { /* server may be gone */ }
  }
}

/**
 * Registers before/after/afterEach hooks in the current file or suite: one
 * server for all its tests, its log printed after each failing test, and the
 * server stopped (a slow stop fails the suite) and its data dir removed at the end.
 * Returns an object whose fields are filled in once the server is up
 * (top-level before() hooks of a file do not wait for each other: use it in tests).
 */
export function useServer(opts = {}) {
  const holder = {
    server: null,
    cached: {},
    /** @jupyterlab/services managers for `user`, made once, disposed at the end. */
    managers(user = 'alice') {
      if (!holder.cached[user]) holder.cached[user] = managersFor(holder.server, user);
      return holder.cached[user];
    },
  };
  before(async () => {
    holder.server = await startServer(opts);
  });
  let failed = false;
  afterEach((t) => {
    if (t.passed === false) failed = true;
    if (t.passed === false && holder.server) {
      const log = holder.server.log();
      process.stderr.write(`\n----- server log for failed test "${t.name}" (${holder.server.logFile}) -----\n`);
      process.stderr.write(log.length > 20000 ? '...\n' + log.slice(-20000) : log);
      process.stderr.write('\n----- end of server log -----\n');
    }
  });
  after(async () => {
    for (const m of Object.values(holder.cached)) await m.dispose();
    const s = holder.server;
    if (!s) return;
    if (s.proc) await shutdownAllKernels(s);
    try {
      await s.stop();
      if (!failed) fs.rmSync(s.logFile, { force: true }); // keep logs of failed runs only
    } catch (err) {
      process.stderr.write(`\n----- server log (${s.logFile}) -----\n${s.log().slice(-20000)}\n-----\n`);
      throw err;
    } finally {
      fs.rmSync(s.dataDir, { recursive: true, force: true });
    }
  });
  return holder;
}
