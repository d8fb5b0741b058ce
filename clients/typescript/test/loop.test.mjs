// The client loop against a scripted server (a fake WebSocket class): ordering, gap
// filling, duplicates, resume outcomes, send retries and close codes, including the
// cases a real server rarely produces on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatClient, DisconnectedError } from '../dist/index.js';
import { until } from './helpers.mjs';

const C = '0190f0c0-0000-7000-8000-00000000000c';
const G = '0190f0c0-0000-7000-8000-00000000000a';
const N = '0190f0c0-0000-7000-8000-00000000000e';
const X = '0190f0c0-0000-7000-8000-00000000000f';
const LIMITS = {
  max_frame_bytes: 65536, max_body_bytes: 4096, max_history_page: 100, max_list_page: 200,
  max_resume_gap: 500, max_resume_conversations: 2, status_member_limit: 100,
  presence_room_limit: 500, max_live_conversations: 10000, typing_ttl_ms: 5000,
  commands_per_second: 50, command_burst: 100, max_frames_per_window: 200, flood_window_ms: 1000,
  queue_capacity: 1024, ping_interval_ms: 20000, idle_timeout_ms: 60000, write_timeout_ms: 10000,
};
const msg = (conversation, seq, sender = 'bob') => ({
  id: `m-${conversation.slice(-2)}-${seq}`, conversation, seq, sender, kind: 'user', body: `${sender} ${seq}`,
  created_at: '2025-05-01T12:00:00Z',
});

/**
 * A fake server: `handle(socket, frame)` answers commands (return a reply object, an
 * `{ error }` or `undefined` for no answer); resume and list_conversations default to
 * "nothing new".
 */
function fake(handle) {
  const sockets = [];
  const frames = [];
  class FakeSocket {
    constructor(url) {
      this.url = url; this.readyState = 1; this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
      setTimeout(() => this.push({ type: 'hello', protocol: 1, user: 'alice', limits: LIMITS }), 1);
    }
    push(frame) { if (!this.closed) this.onmessage?.({ data: JSON.stringify(frame) }); }
    send(text) {
      const frame = JSON.parse(text);
      frames.push(frame);
      setTimeout(() => {
        if (this.closed) return;
        let answer = handle(this, frame);
        if (answer === undefined && frame.type === 'resume') {
          answer = { type: 'resumed', conversations: frame.conversations.map((p) => ({ conversation: p.conversation, outcome: 'replayed', messages: [], last_seq: p.last_seq })) };
        }
        if (answer === undefined && frame.type === 'list_conversations') answer = { type: 'conversations', conversations: [] };
        if (answer === undefined) return;
        if (answer.error) this.push({ type: 'error', id: frame.id, code: answer.error, message: answer.error, ...answer.extra });
        else this.push({ type: 'reply', id: frame.id, reply: answer });
      }, 1);
    }
    close(code = 1000, reason = '') { this.drop(code, reason); }
    drop(code, reason = '') {
      if (this.closed) return;
      this.closed = true;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code, reason }), 1);
    }
  }
  return { FakeSocket, sockets, frames, last: () => sockets.at(-1) };
}

test('messages come out in seq order, once each; gaps are filled with history after gapWaitMs', async () => {
  const f = fake((_s, frame) => {
    if (frame.type === 'history') return { type: 'history', conversation: C, messages: [msg(C, 1), msg(C, 2), msg(C, 3)], last_seq: 3, members: [] };
    if (frame.type === 'mark_delivered') return { type: 'marks', conversation: C, delivered_seq: frame.seq, read_seq: 0 };
    return undefined;
  });
  const client = new ChatClient({ url: 'ws://fake/ws', token: 't', WebSocket: f.FakeSocket, gapWaitMs: 40, have: { [C]: 0 } });
  const seqs = [];
  client.on('message', (e) => seqs.push(e.message.seq));
  await client.connect();
  assert.deepEqual(f.frames.find((x) => x.type === 'resume').conversations, [{ conversation: C, last_seq: 0 }]);
  const s = f.last();
  s.push({ type: 'message', message: msg(C, 3) });
  s.push({ type: 'message', message: msg(C, 2) });
  s.push({ type: 'message', message: msg(C, 2) });
  await new Promise((r) => setTimeout(r, 15));
  assert.deepEqual(seqs, [], 'nothing ahead of a gap is delivered');
  assert.equal(f.frames.filter((x) => x.type === 'history').length, 0, 'no history before gapWaitMs');
  await until(() => seqs.length === 3, 2_000, `got ${seqs}`);
  const history = f.frames.filter((x) => x.type === 'history');
  assert.equal(history.length, 1);
  assert.equal(history[0].after, 0);
  s.push({ type: 'message', message: msg(C, 4) });
  s.push({ type: 'message', message: msg(C, 4) });
  s.push({ type: 'message', message: msg(C, 1) });
  await until(() => f.frames.some((x) => x.type === 'mark_delivered' && x.seq === 4), 2_000, 'no automatic mark_delivered');
  assert.deepEqual(seqs, [1, 2, 3, 4]);
  assert.equal(client.have(C), 4);
  assert.equal(f.frames.filter((x) => x.type === 'mark_delivered').length, 1, 'one debounced mark_delivered');
  client.close();
});

test('past eventBuffer messages held behind a gap, the gap is filled at once', async () => {
  const f = fake((_s, frame) => {
    if (frame.type === 'history') return { type: 'history', conversation: C, messages: [msg(C, 1)], last_seq: 4, members: [] };
    return undefined;
  });
  const client = new ChatClient({
    url: 'ws://fake/ws', token: 't', WebSocket: f.FakeSocket, gapWaitMs: 60_000, eventBuffer: 2,
    have: { [C]: 0 }, autoMarkDelivered: false,
  });
  const seqs = [];
  client.on('message', (e) => seqs.push(e.message.seq));
  await client.connect();
  for (const seq of [2, 3]) f.last().push({ type: 'message', message: msg(C, seq) });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(f.frames.filter((x) => x.type === 'history').length, 0, 'two held: still waiting');
  f.last().push({ type: 'message', message: msg(C, 4) });
  await until(() => seqs.length === 4, 2_000, `got ${seqs}`);
  assert.deepEqual(seqs, [1, 2, 3, 4]);
  client.close();
});

test('after a reconnect: resume in chunks; replayed, too_far_behind and not_found; conversations added while away; sends retried with their client_id', async () => {
  let connection = 0;
  let tokens = 0;
  const f = fake((sock, frame) => {
    const second = sock !== f.sockets[0];
    if (frame.type === 'send') {
      if (!second) return undefined; // dropped with the connection
      return { type: 'sent', message: { ...msg(C, 7, 'alice'), client_id: frame.client_id }, duplicate: true };
    }
    if (frame.type === 'unread_total') return second ? { type: 'unread', unread: 0 } : undefined;
    if (frame.type === 'resume' && second) {
      return {
        type: 'resumed', conversations: frame.conversations.map((p) => (
          p.conversation === C ? { conversation: C, outcome: 'replayed', messages: [msg(C, 5), msg(C, 6)], last_seq: 6 }
            : p.conversation === G ? { conversation: G, outcome: 'too_far_behind', messages: [], last_seq: 900 }
              : p.conversation === N ? { conversation: N, outcome: 'not_found', messages: [], last_seq: 0 }
                : { conversation: X, outcome: 'replayed', messages: [msg(X, 1), msg(X, 2)], last_seq: 2 })),
      };
    }
    if (frame.type === 'list_conversations' && second) {
      return { type: 'conversations', conversations: [{ conversation: { id: X, kind: 'room', name: 'x', visibility: 'public', created_by: 'bob', created_at: '2025-05-01T12:00:00Z', last_seq: 2 }, role: 'member', watermarks: { delivered_seq: 0, read_seq: 0 }, last_message: null, unread: 2 }] };
    }
    return undefined;
  });
  const client = new ChatClient({
    url: 'ws://fake/ws', token: () => `token-${++tokens}`, WebSocket: f.FakeSocket,
    have: { [C]: 4, [G]: 0, [N]: 0 }, backoff: { initialMs: 5, maxMs: 20 }, autoMarkDelivered: false,
  });
  const events = [];
  client.on('*', (e) => { if (['message', 'gap_skipped', 'conversation_removed', 'connected'].includes(e.type)) events.push(e); });
  client.on('connected', () => connection++);
  await client.connect();
  assert.equal(f.sockets[0].url, 'ws://fake/ws?token=token-1');
  const resumes1 = f.frames.filter((x) => x.type === 'resume');
  assert.deepEqual(resumes1.map((r) => r.conversations.length), [2, 1], 'chunks of max_resume_conversations');

  const sent = client.send(C, 'while cut');
  const pending = client.listFriends();
  await until(() => f.frames.some((x) => x.type === 'list_friends'), 1_000, 'list_friends not sent');
  f.sockets[0].drop(1006);
  await assert.rejects(pending, DisconnectedError, 'a command in flight rejects when the connection drops');
  const queued = client.unreadTotal(); // issued while disconnected: waits
  await until(() => connection === 2, 2_000, 'no reconnect');
  assert.equal(f.sockets[1].url, 'ws://fake/ws?token=token-2', 'the token is read again');
  const reply = await sent;
  assert.equal(reply.duplicate, true);
  const sends = f.frames.filter((x) => x.type === 'send');
  assert.equal(sends.length, 2);
  assert.equal(sends[0].client_id, sends[1].client_id, 'retried with the same client_id');
  assert.ok(sends[0].client_id.length > 0);
  assert.equal((await queued).unread, 0);

  const resumes2 = f.frames.filter((x) => x.type === 'resume').slice(2);
  assert.deepEqual(resumes2.flatMap((r) => r.conversations), [
    { conversation: C, last_seq: 4 }, { conversation: G, last_seq: 0 }, { conversation: N, last_seq: 0 },
    { conversation: X, last_seq: 0 },
  ], 'known conversations from have, then the one added while away from 0');
  const got = events.filter((e) => e.type === 'message').map((e) => `${e.message.conversation.slice(-1)}${e.message.seq}`);
  assert.deepEqual(got.filter((m) => m[0] === 'c'), ['c5', 'c6', 'c7'], 'the replay, then the own retried send');
  assert.deepEqual(got.filter((m) => m[0] === 'f'), ['f1', 'f2'], 'the conversation added while away, from 0');
  assert.equal(got.length, 5);
  assert.deepEqual(events.filter((e) => e.type === 'gap_skipped').map(({ conversation, from, to }) => [conversation, from, to]), [[G, 1, 900]]);
  assert.equal(client.have(G), 900);
  assert.ok(events.some((e) => e.type === 'conversation_removed' && e.conversation === N));
  assert.equal(client.have(N), undefined);
  assert.deepEqual(client.haves(), { [C]: 7, [G]: 900, [X]: 2 });
  client.close();
});

test('resume_required resumes that conversation from have', async () => {
  let required = false;
  const f = fake((_s, frame) => {
    if (frame.type === 'resume' && required) {
      assert.deepEqual(frame.conversations, [{ conversation: C, last_seq: 2 }]);
      return { type: 'resumed', conversations: [{ conversation: C, outcome: 'replayed', messages: [msg(C, 3)], last_seq: 3 }] };
    }
    return undefined;
  });
  const client = new ChatClient({ url: 'ws://fake/ws', token: 't', WebSocket: f.FakeSocket, have: { [C]: 2 }, autoMarkDelivered: false });
  const seqs = [];
  client.on('message', (e) => seqs.push(e.message.seq));
  await client.connect();
  assert.deepEqual(seqs, []);
  required = true;
  f.last().push({ type: 'resume_required', conversation: C });
  await until(() => seqs.length === 1, 2_000, 'no resume after resume_required');
  assert.deepEqual(seqs, [3]);
  client.close();
});

test('close codes: 4001 reads the token again at once, 4029 backs off longer, backoff grows with jitter up to maxMs', async () => {
  let tokens = 0;
  const f = fake(() => undefined);
  const client = new ChatClient({ url: 'ws://fake/ws', token: async () => `t${++tokens}`, WebSocket: f.FakeSocket, backoff: { initialMs: 10, maxMs: 1000 } });
  const waits = [];
  client.on('disconnected', (e) => waits.push([e.code, e.reconnectInMs]));
  await client.connect();
  const connected = () => new Promise((resolve) => { const off = client.on('connected', () => { off(); resolve(); }); });
  let next = connected();
  f.last().drop(4001, 'token_expired');
  await next;
  assert.equal(tokens, 2);
  assert.ok(waits[0][1] <= 10, `4001 reconnects after the initial delay: ${waits}`);
  next = connected();
  f.last().drop(4029, 'flood');
  await next;
  assert.ok(waits[1][1] >= 80, `4029 waits at least 8 initial delays: ${waits}`);
  // Attempts that fail before hello: the delay doubles (with jitter: half to all of it).
  const failing = new ChatClient({ url: 'ws://fake/ws', token: () => { throw new Error('no token'); }, WebSocket: f.FakeSocket, backoff: { initialMs: 10, maxMs: 40 } });
  const delays = [];
  failing.on('error', () => {});
  failing.on('disconnected', (e) => delays.push(e.reconnectInMs));
  void failing.connect().catch(() => {});
  await until(() => delays.length >= 5, 2_000, `delays ${delays}`);
  failing.close();
  assert.ok(delays[0] >= 5 && delays[0] <= 10, `${delays}`);
  assert.ok(delays[1] >= 10 && delays[1] <= 20, `${delays}`);
  assert.ok(delays[2] >= 20 && delays[2] <= 40, `${delays}`);
  assert.ok(delays[4] >= 20 && delays[4] <= 40, `capped at maxMs: ${delays}`);
  client.close();
});

test('in a page a relative URL takes the page\'s host and scheme; an empty token adds no parameter', async () => {
  const f = fake(() => undefined);
  globalThis.location = { href: 'https://chat.example.com/app/index.html' };
  try {
    const a = new ChatClient({ url: '/ws', token: 'abc', WebSocket: f.FakeSocket });
    await a.connect();
    assert.equal(f.last().url, 'wss://chat.example.com/ws?token=abc');
    a.close();
    const b = new ChatClient({ url: '/ws', token: '', WebSocket: f.FakeSocket });
    await b.connect();
    assert.equal(f.last().url, 'wss://chat.example.com/ws');
    b.close();
  } finally {
    delete globalThis.location;
  }
});
