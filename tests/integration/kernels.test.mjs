// Kernels: kernelspecs, starting a kernel with @jupyterlab/services, what a
// notebook sees from execution (streams, results, errors, rich output, stdin,
// interrupt, restart, shutdown), both WebSocket protocols, and reconnect replay.
// All of it passes on jupyter_server too; nothing here is labbook-only.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { KernelMessage } from '@jupyterlab/services';
import { useServer } from './lib/server.mjs';
import { managersFor, settingsFor, api, execute, rawKernelSocket, sleep, until, withTimeout } from './lib/clients.mjs';

const V1 = 'v1.kernel.websocket.jupyter.org';
// A 1x1 red PNG.
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';

const ctx = useServer({ name: 'kernels' });

test('GET /api/kernelspecs lists python3 with a display name and resources', async () => {
  const r = await api(ctx.server, 'alice', 'GET', '/api/kernelspecs');
  assert.equal(r.status, 200);
  assert.equal(typeof r.body.default, 'string');
  assert.ok(r.body.kernelspecs[r.body.default], 'the default kernelspec is listed');
  const py = r.body.kernelspecs.python3;
  assert.ok(py, `python3 listed; got ${Object.keys(r.body.kernelspecs)}`);
  assert.equal(py.name, 'python3');
  assert.equal(typeof py.spec.display_name, 'string');
  assert.ok(py.spec.display_name.length > 0);
  assert.equal(py.spec.language, 'python');
  assert.equal(typeof py.resources, 'object');
  assert.notEqual(py.resources, null);

  // The same through @jupyterlab/services.
  const m = managersFor(ctx.server);
  try {
    await m.specs.refreshSpecs();
    assert.equal(m.specs.specs.kernelspecs.python3.display_name, py.spec.display_name);
  } finally {
    await m.dispose();
  }
});

describe('a kernel driven by @jupyterlab/services', () => {
  let m;
  let kernel;
  const sockets = [];
  // Records each WebSocket the library opens, to see the negotiated subprotocol.
  class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
  }

  before(async () => {
    m = managersFor(ctx.server, 'alice', { WebSocket: RecordingWebSocket });
    kernel = await m.kernels.startNew({ name: 'python3' });
    await until(() => kernel.connectionStatus === 'connected', { what: 'kernel websocket connected' });
    const info = await kernel.info;
    assert.equal(info.language_info.name, 'python');
  });

  after(async () => {
    if (kernel && !kernel.isDisposed) kernel.dispose();
    await m?.dispose();
  });

  test('the connection uses the binary v1.kernel.websocket.jupyter.org subprotocol', () => {
    assert.ok(sockets.length >= 1);
    assert.equal(sockets[sockets.length - 1].protocol, V1);
  });

  test('kernel is listed by GET /api/kernels and GET /api/kernels/{id}', async () => {
    const list = await api(ctx.server, 'alice', 'GET', '/api/kernels');
    assert.equal(list.status, 200);
    assert.ok(list.body.some((k) => k.id === kernel.id && k.name === 'python3'));
    const one = await api(ctx.server, 'alice', 'GET', `/api/kernels/${kernel.id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.id, kernel.id);
    assert.ok(['idle', 'busy', 'starting'].includes(one.body.execution_state), one.body.execution_state);
  });

  test('print() arrives as stdout stream text', async () => {
    const r = await execute(kernel, 'print("hello"); print("world")');
    assert.equal(r.reply.content.status, 'ok');
    assert.equal(r.stdout, 'hello\nworld\n');
    assert.ok(r.iopub.some((x) => x.header.msg_type === 'status' && x.content.execution_state === 'busy'));
    assert.ok(r.iopub.some((x) => x.header.msg_type === 'execute_input' && x.content.code.includes('hello')));
  });

  test('1+1 gives an execute_result of "2"', async () => {
    const r = await execute(kernel, '1+1');
    assert.equal(r.reply.content.status, 'ok');
    const res = r.outputs.filter((o) => o.output_type === 'execute_result');
    assert.equal(res.length, 1);
    assert.equal(res[0].data['text/plain'], '2');
    assert.equal(res[0].execution_count, r.reply.content.execution_count);
  });

  test('1/0 gives a ZeroDivisionError with a traceback', async () => {
    // stop_on_error false: after an error ipykernel aborts the requests that
    // reach it before its event loop turns again, so the next test's execute,
    // sent milliseconds after this reply, was sometimes answered 'aborted'
    // (as it would be on jupyter_server).
    const r = await execute(kernel, '1/0', { stopOnError: false });
    assert.equal(r.reply.content.status, 'error');
    assert.equal(r.reply.content.ename, 'ZeroDivisionError');
    const err = r.outputs.find((o) => o.output_type === 'error');
    assert.ok(err, 'an error output on iopub');
    assert.equal(err.ename, 'ZeroDivisionError');
    assert.match(err.evalue, /division by zero/);
    assert.ok(Array.isArray(err.traceback) && err.traceback.length > 0);
    assert.match(err.traceback.join('\n'), /ZeroDivisionError/);
  });

  test('display() of HTML and a PNG gives display_data', async () => {
    const code = [
      'import base64',
      'from IPython.display import display, HTML, Image',
      'display(HTML("<b>bold</b>"))',
      `display(Image(data=base64.b64decode("${PNG_B64}")))`,
    ].join('\n');
    const r = await execute(kernel, code);
    assert.equal(r.reply.content.status, 'ok');
    const dd = r.outputs.filter((o) => o.output_type === 'display_data');
    assert.equal(dd.length, 2);
    assert.equal(dd[0].data['text/html'], '<b>bold</b>');
    assert.equal(dd[1].data['image/png'].replace(/\s/g, ''), PNG_B64);
  });

  test('!echo runs a shell command and shows its output', async () => {
    const r = await execute(kernel, '!echo hi');
    assert.equal(r.reply.content.status, 'ok');
    assert.equal(r.stdout.trim(), 'hi');
  });

  test('input() is answered through stdin', async () => {
    let prompt = null;
    const r = await execute(kernel, 'name = input("name?")\nprint("got", name)', {
      onStdin: (msg, future) => {
        assert.equal(msg.header.msg_type, 'input_request');
        prompt = msg.content.prompt;
        future.sendInputReply({ status: 'ok', value: 'Ada Lovelace' }, msg.header);
      },
    });
    assert.equal(prompt, 'name?');
    assert.equal(r.reply.content.status, 'ok');
    assert.equal(r.stdout, 'got Ada Lovelace\n');
  });

  test('unicode output survives the round trip', async () => {
    const r = await execute(kernel, 'print("héllo 世界 🚀")\n"ünï"');
    assert.equal(r.stdout, 'héllo 世界 🚀\n');
    const res = r.outputs.find((o) => o.output_type === 'execute_result');
    assert.equal(res.data['text/plain'], "'ünï'");
  });

  test('interrupt stops time.sleep(60) quickly with KeyboardInterrupt', async () => {
    const t0 = Date.now();
    const future = kernel.requestExecute({ code: 'import time; time.sleep(60)' });
    const iopub = [];
    future.onIOPub = (msg) => iopub.push(msg);
    await until(() => iopub.some((x) => x.header.msg_type === 'execute_input'), { what: 'cell to start' });
    await sleep(300);
    await kernel.interrupt();
    const reply = await withTimeout(future.done, 15000, 'interrupted cell');
    assert.equal(reply.content.status, 'error');
    assert.equal(reply.content.ename, 'KeyboardInterrupt');
    assert.ok(Date.now() - t0 < 15000);
    // The kernel still works afterwards.
    const r = await execute(kernel, '2*21');
    assert.equal(r.outputs.find((o) => o.output_type === 'execute_result').data['text/plain'], '42');
  });

  test('a second client on the same kernel sees the first client\'s output', async () => {
    const other = m.kernels.connectTo({ model: { id: kernel.id, name: kernel.name } });
    try {
      await until(() => other.connectionStatus === 'connected', { what: 'second connection' });
      await other.info;
      const seen = [];
      other.iopubMessage.connect((_, msg) => seen.push(msg));
      const r = await execute(kernel, 'print("for both")\n3*3');
      assert.equal(r.stdout, 'for both\n');
      const parent = r.reply.parent_header.msg_id;
      await until(() => seen.some((x) => x.header.msg_type === 'status' &&
        x.content.execution_state === 'idle' && x.parent_header.msg_id === parent), { what: 'idle on second client' });
      const mine = seen.filter((x) => x.parent_header.msg_id === parent);
      const text = mine.filter((x) => x.header.msg_type === 'stream').map((x) => x.content.text).join('');
      assert.equal(text, 'for both\n');
      const res = mine.find((x) => x.header.msg_type === 'execute_result');
      assert.equal(res?.content.data['text/plain'], '9');
    } finally {
      other.dispose();
    }
  });

  test('restart clears variables', async () => {
    let r = await execute(kernel, 'x_before_restart = 42\nx_before_restart');
    assert.equal(r.outputs.find((o) => o.output_type === 'execute_result').data['text/plain'], '42');
    await kernel.restart();
    await until(() => kernel.connectionStatus === 'connected' && kernel.status === 'idle', {
      what: 'kernel idle after restart', timeoutMs: 30000,
    });
    r = await execute(kernel, 'x_before_restart');
    assert.equal(r.reply.content.status, 'error');
    assert.equal(r.reply.content.ename, 'NameError');
    assert.equal(r.reply.content.execution_count, 1, 'execution count starts again at 1');
  });

  test('shutdown removes the kernel', async () => {
    const id = kernel.id;
    await kernel.shutdown();
    const list = await api(ctx.server, 'alice', 'GET', '/api/kernels');
    assert.equal(list.status, 200);
    assert.ok(!list.body.some((k) => k.id === id), 'kernel no longer listed');
    const one = await api(ctx.server, 'alice', 'GET', `/api/kernels/${id}`);
    assert.equal(one.status, 404);
  });
});

describe('raw WebSocket clients', () => {
  let kernelId;

  before(async () => {
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(r.status, 201);
    kernelId = r.body.id;
    assert.equal(typeof kernelId, 'string');
  });

  after(async () => {
    if (kernelId) await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernelId}`);
  });

  test('plain JSON protocol (no subprotocol): execute_request gets JSON replies', async () => {
    const c = rawKernelSocket(ctx.server, 'alice', kernelId);
    try {
      await c.opened;
      assert.equal(c.ws.protocol, '', 'no subprotocol was selected');
      const req = c.execute('print("json ok")\n6*7');
      const id = req.header.msg_id;
      const reply = await c.waitFor((x) => x.header?.msg_type === 'execute_reply' && x.parent_header?.msg_id === id,
        { what: 'execute_reply', timeoutMs: 30000 });
      assert.equal(reply.channel, 'shell');
      assert.equal(reply.content.status, 'ok');
      await c.waitFor((x) => x.header?.msg_type === 'status' && x.content.execution_state === 'idle' &&
        x.parent_header?.msg_id === id, { what: 'idle' });
      const mine = c.msgs.filter((x) => x.parent_header?.msg_id === id);
      const stream = mine.filter((x) => x.header.msg_type === 'stream');
      assert.equal(stream.map((x) => x.content.text).join(''), 'json ok\n');
      assert.ok(stream.every((x) => x.channel === 'iopub'));
      const res = mine.find((x) => x.header.msg_type === 'execute_result');
      assert.equal(res.content.data['text/plain'], '42');
      assert.equal(res.parent_header.session, c.sessionId);
    } finally {
      await c.close();
    }
  });

  test('binary v1 protocol: frames decode into the expected messages', async () => {
    const { serializer } = settingsFor(ctx.server);
    const tok = ctx.server.tokens.alice;
    const session = crypto.randomUUID();
    const ws = new WebSocket(`${ctx.server.wsUrl}/api/kernels/${kernelId}/channels?session_id=${session}&token=${tok}`, [V1]);
    const got = [];
    ws.on('message', (data, isBinary) => {
      assert.ok(isBinary, 'v1 frames are binary');
      const buf = Buffer.from(data);
      got.push(serializer.deserialize(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), V1));
    });
    try {
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      assert.equal(ws.protocol, V1);
      const msg = KernelMessage.createMessage({
        msgType: 'execute_request', channel: 'shell', session,
        content: { code: 'print("v1 ok")', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      });
      ws.send(serializer.serialize(msg, V1));
      await until(() => got.some((x) => x.channel === 'shell' && x.header.msg_type === 'execute_reply' &&
        x.parent_header.msg_id === msg.header.msg_id), { what: 'v1 execute_reply', timeoutMs: 30000 });
      await until(() => got.some((x) => x.header.msg_type === 'status' && x.content.execution_state === 'idle' &&
        x.parent_header.msg_id === msg.header.msg_id), { what: 'v1 idle' });
      const text = got.filter((x) => x.channel === 'iopub' && x.header.msg_type === 'stream' &&
        x.parent_header.msg_id === msg.header.msg_id).map((x) => x.content.text).join('');
      assert.equal(text, 'v1 ok\n');
    } finally {
      ws.close();
    }
  });

  test('reconnecting with the same session_id replays the outputs missed meanwhile', async () => {
    const session = crypto.randomUUID();
    const a = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session });
    await a.opened;
    const req = a.execute('import time\nfor i in range(5):\n    print(i)\n    time.sleep(0.4)');
    const id = req.header.msg_id;
    const streamOf = (c) => c.msgs.filter((x) => x.header?.msg_type === 'stream' && x.parent_header?.msg_id === id)
      .map((x) => x.content.text).join('');
    await a.waitFor((x) => x.header?.msg_type === 'stream' && x.parent_header?.msg_id === id,
      { what: 'first output', timeoutMs: 30000 });
    await a.close();
    const before = streamOf(a);
    assert.ok(before.startsWith('0\n') && before.length < '0\n1\n2\n3\n4\n'.length,
      `disconnected before the cell finished (had ${JSON.stringify(before)})`);
    await sleep(2000);

    const b = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session });
    try {
      await b.opened;
      await b.waitFor((x) => x.header?.msg_type === 'execute_reply' && x.parent_header?.msg_id === id,
        { what: 'replayed execute_reply', timeoutMs: 10000 });
      await sleep(300);
      // Nothing lost, nothing twice.
      assert.equal(before + streamOf(b), '0\n1\n2\n3\n4\n');
    } finally {
      await b.close();
    }
  });
});
