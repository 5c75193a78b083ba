// Server-side execution (issue 3): while a notebook's cells run, the hub records
// their outputs into the .ipynb, so what a cell printed while no browser was
// connected is in the notebook when it is opened again. labbook-only.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawKernelSocket, until, makeMsg } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'server-side recording is labbook-only';
const ctx = useServer({ name: 'recording' });

const notebook = (cells) => ({
  nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' } },
  cells: cells.map(([id, source]) => ({ cell_type: 'code', id, source, metadata: {}, outputs: [], execution_count: null })),
});

test('output printed after the browser closed is in the notebook when it is opened again', { skip }, async () => {
  const code = 'import time\nfor i in range(4):\n    print("step", i, flush=True)\n    time.sleep(0.5)\n6 * 7';
  const put = await api(ctx.server, 'alice', 'PUT', '/api/contents/train.ipynb', {
    type: 'notebook', format: 'json', content: notebook([['c-setup', 'x = 1'], ['c-train', code], ['c-other', 'print("untouched")']]),
  });
  assert.ok(put.status === 201 || put.status === 200, JSON.stringify(put.body));
  const sess = await api(ctx.server, 'alice', 'POST', '/api/sessions', { path: 'train.ipynb', name: 'train.ipynb', type: 'notebook', kernel: { name: 'python3' } });
  assert.equal(sess.status, 201, JSON.stringify(sess.body));
  const kernelId = sess.body.kernel.id;

  // A browser runs the cell and closes as soon as the first line is out.
  const c = rawKernelSocket(ctx.server, 'alice', kernelId);
  await c.opened;
  const req = makeMsg('execute_request', { code, silent: false, store_history: true, user_expressions: {},
    allow_stdin: false, stop_on_error: true }, { session: c.sessionId });
  req.metadata = { cellId: 'c-train' };
  c.send(req);
  await c.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, { what: 'first output' });
  await c.close();

  // Later, with nobody connected, the notebook holds everything the cell produced.
  const cell = await until(async () => {
    const nb = await api(ctx.server, 'alice', 'GET', '/api/contents/train.ipynb?content=1');
    const cl = nb.body.content.cells.find((x) => x.id === 'c-train');
    const text = cl.outputs.filter((o) => o.output_type === 'stream').map((o) => o.text).join('');
    return text.includes('step 3') && cl.outputs.some((o) => o.output_type === 'execute_result') ? cl : null;
  }, { timeoutMs: 20000, what: 'the outputs to be recorded in the notebook' });
  const text = cell.outputs.filter((o) => o.output_type === 'stream').map((o) => o.text).join('');
  assert.equal(text, 'step 0\nstep 1\nstep 2\nstep 3\n');
  const result = cell.outputs.find((o) => o.output_type === 'execute_result');
  assert.equal(result.data['text/plain'], '42');
  assert.equal(typeof cell.execution_count, 'number');
  // The other cells are as they were.
  const nb = await api(ctx.server, 'alice', 'GET', '/api/contents/train.ipynb?content=1');
  const other = nb.body.content.cells.find((x) => x.id === 'c-other');
  assert.deepEqual(other.outputs, []);
  assert.equal(other.source, 'print("untouched")');
  await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${sess.body.id}`);
});
