// Close code 4003 (an administrator's kick) ends the client for good; the README's
// example runs against the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { ChatClient, DisconnectedError } from '../dist/index.js';
import { startServer, devToken, until } from './helpers.mjs';

const KEY = 'test-internal-api-key';
let server;
before(async () => { server = await startServer({ args: ['--internal-api-key', KEY] }); });
after(async () => { await server?.stop(); });

test('4003 (kicked): no reconnect, state closed, a kicked event, pending sends rejected', async () => {
  let sockets = 0;
  // Counts the connections the client opens.
  class CountingWebSocket extends WebSocket {
    constructor(url) { super(url); sockets++; }
  }
  const bob = new ChatClient({
    url: `ws://${server.address}/ws`, token: () => devToken(server.base, 'bob'),
    WebSocket: CountingWebSocket, backoff: { initialMs: 10, maxMs: 50 },
  });
  const events = [];
  bob.on('*', (e) => { if (['kicked', 'disconnected', 'state'].includes(e.type)) events.push(e); });
  await bob.connect();
  assert.equal(sockets, 1);

  const r = await fetch(`${server.base}/api/v1/admin/users/bob/disconnect`, {
    method: 'POST', headers: { 'x-internal-api-key': KEY },
  });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { disconnected: 1 });
  await until(() => bob.state === 'closed', 5_000, `bob's state is ${bob.state}`);
  const kicked = events.find((e) => e.type === 'kicked');
  assert.ok(kicked, JSON.stringify(events));
  const disconnected = events.find((e) => e.type === 'disconnected');
  assert.equal(disconnected.code, 4003);
  assert.equal(disconnected.reconnectInMs, null);

  // Ten times the longest backoff later, still no second connection.
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(sockets, 1, 'the client did not reconnect');
  assert.equal(bob.state, 'closed');
  await assert.rejects(bob.send('0190f0c0-0000-7000-8000-000000000001', 'too late'), DisconnectedError);
  await assert.rejects(bob.connect(), DisconnectedError);
});

test('the other close codes reconnect: a server restart (1001) is followed by a new connection', async () => {
  const own = await startServer();
  try {
    let current = own;
    const carol = new ChatClient({
      url: `ws://${own.address}/ws`, token: () => devToken(current.base, 'carol'),
      WebSocket, backoff: { initialMs: 20, maxMs: 200 },
    });
    const codes = [];
    let connects = 0;
    carol.on('disconnected', (e) => codes.push(e.code));
    carol.on('connected', () => connects++);
    await carol.connect();
    await own.stop();
    current = await startServer({ listen: own.address });
    try {
      await until(() => connects === 2, 10_000, `no reconnect: ${codes}`);
      assert.equal(codes[0], 1001, `the server's shutdown closes with 1001: ${codes}`);
      assert.equal(carol.state, 'open');
      assert.equal((await carol.unreadTotal()).type, 'unread');
    } finally {
      carol.close();
      await current.stop();
    }
  } finally {
    await own.stop();
  }
});

test('a token refused at the handshake (401): the token is read again and the client connects', async () => {
  let calls = 0;
  const disconnects = [];
  const dan = new ChatClient({
    url: `ws://${server.address}/ws`,
    token: async () => (++calls === 1 ? 'not-a-token' : devToken(server.base, 'dan')),
    WebSocket, backoff: { initialMs: 10, maxMs: 50 },
  });
  dan.on('disconnected', (e) => disconnects.push(e));
  try {
    const hello = await dan.connect();
    assert.equal(hello.user, 'dan');
    assert.equal(calls, 2);
    assert.equal(disconnects.length, 1);
    assert.match(disconnects[0].reason, /401/);
    assert.ok(disconnects[0].reconnectInMs >= 5 && disconnects[0].reconnectInMs <= 10, String(disconnects[0].reconnectInMs));
  } finally {
    dan.close();
  }
});

test('the README example runs', async () => {
  const example = fileURLToPath(new URL('../examples/basic.mjs', import.meta.url));
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, [example, server.base], { timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`)); else resolve(stdout);
    });
  });
  assert.equal(out, 'alice: hello from the example\nhistory holds 1 message(s)\n');
});
