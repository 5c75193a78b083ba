// A runtime's own network, from inside real kernels (docs/sandbox.md, "Network"):
// with network = 1 a kernel reaches a server "on the internet" (a test network
// namespace made here, the only place its address is routed) but not a service on
// the host's 127.0.0.1, the hub's port, the host's other addresses, a host abstract
// unix socket, or a port another user's runtime listens on; with network = 0 it
// has only lo. Root only (the hub must sandbox runtimes); skipped otherwise.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, until, probe } from './lib/clients.mjs';

const ROOT = process.getuid?.() === 0;
const skip = !IS_LABBOOK ? 'the sandbox is labbook-only' : !ROOT ? 'needs root (network namespaces)' : false;

// The "internet": TEST-NET-3 behind a veth pair into a namespace of ours.
const TAG = String(process.pid % 100000);
const NS = `lbt-it${TAG}`;
const PEER = `lbti${TAG}`;
const HOST_ADDR = '203.0.113.1';
const NET_ADDR = '203.0.113.2';
const NET_PORT = 8080;

const ctx = useServer({
  name: 'netns',
  users: ['alice', 'bob'],
  config: [
    '[runtimes]', 'pool = 0', '',
    '[profile.cpu]', 'max_per_user = 4', 'idle_timeout_s = 0', '',
    '[profile.nonet]', 'display_name = No network', 'network = 0', 'idle_timeout_s = 0', '',
  ].join('\n') + '\n',
});

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
const ipQuiet = (...args) => { try { ip(...args); } catch { /* not there */ } };

let inetServer = null;
const hostServers = [];

function listen(server, ...args) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...args, () => resolve(server));
  });
}

before(async () => {
  if (skip) return;
  ipQuiet('link', 'del', PEER);
  ipQuiet('netns', 'del', NS);
  ip('netns', 'add', NS);
  ip('link', 'add', PEER, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS);
  ip('addr', 'add', `${HOST_ADDR}/24`, 'dev', PEER);
  ip('link', 'set', PEER, 'up');
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'addr', 'add', `${NET_ADDR}/24`, 'dev', 'eth0');
  ip('-n', NS, 'link', 'set', 'eth0', 'up');
  inetServer = spawn('ip', ['netns', 'exec', NS, 'python3', '-c', `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("${NET_ADDR}", ${NET_PORT})); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"internet"); c.close()
`], { stdio: 'ignore' });
  await until(() => {
    try {
      return ip('netns', 'exec', NS, 'ss', '-ltn').toString().includes(`${NET_ADDR}:${NET_PORT}`);
    } catch { return false; }
  }, { timeoutMs: 10000, what: 'the test network\'s server' });
});

after(() => {
  if (skip) return;
  for (const s of hostServers) s.close();
  inetServer?.kill('SIGKILL');
  ipQuiet('link', 'del', PEER);
  ipQuiet('netns', 'del', NS);
});

function needSandbox(t) {
  if (ctx.server.log().includes('runtimes run in sandboxes')) return false;
  t.skip('the hub does not run runtimes in sandboxes');
  return true;
}

async function startKernel(user, spec = 'python3') {
  const r = await api(ctx.server, user, 'POST', '/api/kernels', { name: spec });
  assert.equal(r.status, 201, `start ${spec} for ${user}: ${r.text}`);
  await until(async () => (await api(ctx.server, user, 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
    { timeoutMs: 30000, what: `${spec} kernel of ${user} idle` });
  return r.body.id;
}

/** Python: R[key] = 'ok <reply>' or the error's name, for a TCP connect to (addr, port). */
const PY_CONNECT = `
import socket, errno
def _connect(addr, port, timeout=2):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        s.settimeout(0.5)
        try:
            return 'ok ' + s.recv(16).decode()
        except socket.timeout:
            return 'ok'
    except socket.timeout:
        return 'timeout'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
def _abstract(name):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect('\\0' + name)
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
    finally:
        s.close()
`;

describe('a runtime\'s own network', { skip }, () => {
  test('network = 1 reaches the internet, not the host\'s loopback, the hub, its addresses, its abstract sockets or another runtime', async (t) => {
    if (needSandbox(t)) return;
    const s = ctx.server;
    // Host services a runtime must not reach: on 127.0.0.1, on every address, abstract.
    const lo = await listen(net.createServer((c) => c.end('host-lo')), 0, '127.0.0.1');
    const any = await listen(net.createServer((c) => c.end('host-any')), 0, '0.0.0.0');
    const abstractName = `labbook-it-netns-${process.pid}`;
    const abs = await listen(net.createServer((c) => c.end('abstract')), `\0${abstractName}`);
    hostServers.push(lo, any, abs);
    const loPort = lo.address().port;
    const anyPort = any.address().port;
    // The host reaches them itself (so the refusals below mean something).
    const hostAddrs = execFileSync('ip', ['-o', '-4', 'addr'], { encoding: 'utf8' }).split('\n')
      .map((l) => l.match(/inet (\d+\.\d+\.\d+\.\d+)\//)?.[1]).filter((a) => a && !a.startsWith('127.'));
    assert.ok(hostAddrs.includes(HOST_ADDR), `the host has ${HOST_ADDR}: ${hostAddrs}`);

    const bob = await startKernel('bob');
    const BOB_PORT = 47001;
    const B = await probe(s, 'bob', bob, `
import socket, subprocess, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', ${BOB_PORT})); srv.listen(8)
def _serve():
    while True:
        c, _ = srv.accept(); c.sendall(b'bob'); c.close()
threading.Thread(target=_serve, daemon=True).start()
R['addr'] = subprocess.run(['ip', '-o', '-4', 'addr', 'show', 'eth0'], capture_output=True, text=True).stdout.split()[3].split('/')[0]
`);
    const alice = await startKernel('alice');
    const R = await probe(s, 'alice', alice, `${PY_CONNECT}
R['ifaces'] = sorted(os.listdir('/sys/class/net'))
R['internet'] = _connect('${NET_ADDR}', ${NET_PORT})
R['lo'] = _connect('127.0.0.1', ${loPort})
R['hub'] = _connect('127.0.0.1', ${s.port})
R['host'] = {a: _connect(a, ${anyPort}) for a in ${JSON.stringify(hostAddrs)}}
R['abstract'] = _abstract('${abstractName}')
R['bob'] = _connect('${B.addr}', ${BOB_PORT})
R['bob_self'] = _connect('127.0.0.1', ${BOB_PORT})
`, { timeoutMs: 60000 });
    // bob's server is up: bob's own kernel reaches it.
    const B2 = await probe(s, 'bob', bob, `${PY_CONNECT}\nR['self'] = _connect('127.0.0.1', ${BOB_PORT})`);
    assert.equal(B2.self, 'ok bob', "bob's kernel reaches its own server");
    assert.deepEqual(R.ifaces, ['eth0', 'lo'], `a veth and lo: ${R.ifaces}`);
    assert.equal(R.internet, 'ok internet', 'a server on the (test) internet answers');
    assert.equal(R.lo, 'ECONNREFUSED', "the host's 127.0.0.1 is not the runtime's");
    assert.equal(R.hub, 'ECONNREFUSED', "the hub's port is out of reach");
    for (const [a, got] of Object.entries(R.host)) {
      assert.ok(!got.startsWith('ok'), `the host's address ${a} is out of reach: ${got}`);
    }
    assert.equal(R.abstract, 'ECONNREFUSED', "the host's abstract sockets are not the runtime's");
    assert.ok(!R.bob.startsWith('ok'), `bob's runtime (${B.addr}) is out of reach: ${R.bob}`);
    assert.equal(R.bob_self, 'ECONNREFUSED', "bob's port is not on alice's loopback");
    await api(s, 'alice', 'DELETE', `/api/kernels/${alice}`);
    await api(s, 'bob', 'DELETE', `/api/kernels/${bob}`);
  });

  test('network = 0 has only lo: the internet is out of reach too', async (t) => {
    if (needSandbox(t)) return;
    const k = await startKernel('alice', 'python3-nonet');
    const R = await probe(ctx.server, 'alice', k, `${PY_CONNECT}
R['ifaces'] = sorted(os.listdir('/sys/class/net'))
R['internet'] = _connect('${NET_ADDR}', ${NET_PORT})
`);
    assert.deepEqual(R.ifaces, ['lo']);
    assert.equal(R.internet, 'ENETUNREACH', 'no route out');
    await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${k}`);
  });
});
