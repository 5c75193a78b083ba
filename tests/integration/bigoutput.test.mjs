// Large outputs arrive whole and byte-exact, through @jupyterlab/services (the v1
// binary protocol) and through a plain JSON-protocol client at the same time.
// jupyter_server drops outputs over its IOPub data rate limit, so its run only
// checks that the client is told; labbook must deliver everything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { managersFor, execute, rawKernelSocket } from './lib/clients.mjs';

const ctx = useServer({ name: 'bigoutput' });

test('a 24 MB output reaches a v1 client and a JSON client whole', async () => {
  const m = managersFor(ctx.server);
  try {
    const kernel = await m.kernels.startNew({ name: 'python3' });
    const raw = rawKernelSocket(ctx.server, 'alice', kernel.id, {
      keep: (msg) => msg.header?.msg_type === 'stream' || msg.header?.msg_type === 'status',
    });
    await raw.opened;
    // Two lines of different letters, so order and content are both checked.
    const mb = 12;
    const code = `print('a' * (${mb} * 1024 * 1024)); print('b' * (${mb} * 1024 * 1024))`;
    const r = await execute(kernel, code, { timeoutMs: 120000 });
    assert.equal(r.reply.content.status, 'ok');
    const want = 'a'.repeat(mb << 20) + '\n' + 'b'.repeat(mb << 20) + '\n';
    if (IS_LABBOOK) {
      assert.equal(r.stdout.length, want.length, 'v1 client: stdout length');
      assert.ok(r.stdout === want, 'v1 client: stdout is byte-exact');
    } else {
      assert.ok(r.stdout.length > 0 || r.iopub.length > 0);
    }
    const parent = r.reply.parent_header.msg_id;
    await raw.waitFor((msg) => msg.header.msg_type === 'status' && msg.content.execution_state === 'idle' &&
      msg.parent_header.msg_id === parent, { timeoutMs: 120000, what: 'idle on the JSON client' });
    const text = raw.msgs.filter((msg) => msg.header.msg_type === 'stream' && msg.parent_header.msg_id === parent)
      .map((msg) => msg.content.text).join('');
    if (IS_LABBOOK) {
      assert.equal(text.length, want.length, 'JSON client: stdout length');
      assert.ok(text === want, 'JSON client: stdout is byte-exact');
    }
    await raw.close();
    await kernel.shutdown();
  } finally {
    await m.dispose();
  }
});
