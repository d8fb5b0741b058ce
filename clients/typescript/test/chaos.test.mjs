// Two users chat 1,000 messages through a proxy that cuts every connection 50-500 ms
// after it opened, and the server restarts once mid-run on the same SQLite file. Each
// side must get every message of the other exactly once, in seq order; history must
// hold exactly the total; every status the senders see must converge to read.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ChatClient, DisconnectedError, TimeoutError } from '../dist/index.js';
import { startServer, startProxy, devToken, until } from './helpers.mjs';

const PER_USER = Number(process.env.CHAOS_MESSAGES_PER_USER ?? 500);
const WINDOW = 8; // sends in flight per user
const DEADLINE_MS = 120_000;

const cleanup = [];

/** Runs a command again when a cut connection dropped it (at most 50 times). */
async function retrying(command) {
  for (let i = 0; ; i++) {
    try {
      return await command();
    } catch (e) {
      if (i >= 50 || !(e instanceof DisconnectedError || e instanceof TimeoutError)) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test(`${2 * PER_USER} messages both ways through a cutting proxy and a server restart`, { timeout: DEADLINE_MS + 60_000 }, async () => {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'chat-client-chaos-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const store = `sqlite:${join(dir, 'chat.db')}`;
  let server = await startServer({ store });
  cleanup.push(() => server.stop());
  const proxy = await startProxy(server.port);
  cleanup.push(() => proxy.close());

  const users = ['alice', 'bob'];
  const side = {};
  for (const user of users) {
    const client = new ChatClient({
      url: `ws://127.0.0.1:${proxy.port}/ws`,
      // Read before every connect, from whichever server runs now (a restarted --dev
      // server has a new secret, so the old token would be refused with 401).
      token: () => devToken(server.base, user),
      WebSocket,
      backoff: { initialMs: 20, maxMs: 400 },
      requestTimeoutMs: 5_000,
    });
    cleanup.push(() => client.close());
    side[user] = {
      client, user, seqs: [], fromOther: new Map(), disconnects: 0, connects: 0, sentSeqs: [], acked: 0, duplicates: 0,
      problems: [],
    };
    client.on('disconnected', () => side[user].disconnects++);
    client.on('connected', () => side[user].connects++);
    client.on('gap_skipped', (e) => side[user].problems.push(`gap_skipped ${JSON.stringify(e)}`));
    client.on('error', (e) => { if (e.context === 'listener') side[user].problems.push(`listener: ${e.error}`); });
    await client.connect();
  }
  const { alice, bob } = side;

  // Friends and a direct conversation, before the chaos starts.
  await alice.client.friendRequest('bob');
  await bob.client.friendAccept('alice');
  const direct = (await alice.client.openDirect('bob')).conversation.id;
  await until(() => bob.client.have(direct) === 0, 5_000, 'bob does not follow the direct conversation');

  for (const s of users.map((u) => side[u])) {
    const other = s.user === 'alice' ? 'bob' : 'alice';
    s.client.on('message', ({ message: m }) => {
      if (m.conversation !== direct) return;
      const prev = s.seqs.at(-1) ?? 0;
      if (m.seq !== prev + 1) s.problems.push(`message seq ${m.seq} after ${prev}`);
      s.seqs.push(m.seq);
      if (m.sender === other) s.fromOther.set(m.body, (s.fromOther.get(m.body) ?? 0) + 1);
    });
  }

  // The receivers read what arrived, a few times a second (retrying through cuts).
  let reading = true;
  const readers = users.map(async (u) => {
    const s = side[u];
    let marked = 0;
    while (reading) {
      const have = s.client.have(direct) ?? 0;
      if (have > marked) {
        try { marked = Math.max(marked, (await s.client.markRead(direct, have)).read_seq); } catch { /* cut: again */ }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  proxy.chaos = true;
  const progress = () => `after ${Math.round((Date.now() - started) / 1000)} s: `
    + users.map((u) => `${u} acked ${side[u].acked}/${PER_USER}, got ${side[u].fromOther.size}/${PER_USER} from the other,`
      + ` ${side[u].disconnects} disconnects, ${side[u].duplicates} sends acknowledged as duplicates after a retry,`
      + ` state ${side[u].client.state}`).join('; ')
    + `; proxy cut ${proxy.stats.cuts} of ${proxy.stats.connections} connections`;

  // Restart the server once, when 40% of the messages are acknowledged.
  let restarted = false;
  const restart = (async () => {
    await until(() => alice.acked + bob.acked >= 0.4 * 2 * PER_USER, DEADLINE_MS, () => `no restart: ${progress()}`);
    await server.stop();
    server = await startServer({ store });
    proxy.retarget(server.port);
    restarted = true;
  })();

  const senders = users.map(async (u) => {
    const s = side[u];
    let next = 0;
    const lane = async () => {
      while (next < PER_USER) {
        const i = next++;
        const reply = await s.client.send(direct, `${u}-${i}`);
        s.sentSeqs.push(reply.message.seq);
        if (reply.duplicate) s.duplicates++;
        s.acked++;
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, lane));
  });

  let timer;
  await Promise.race([
    Promise.all([...senders, restart]),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`sends not done in ${DEADLINE_MS / 1000} s, ${progress()}`)), DEADLINE_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  const left = () => DEADLINE_MS - (Date.now() - started);
  await until(() => alice.fromOther.size === PER_USER && bob.fromOther.size === PER_USER, Math.max(1, left()),
    () => `not every message arrived: ${progress()}`);
  const total = 2 * PER_USER;
  await until(() => alice.client.have(direct) === total && bob.client.have(direct) === total, Math.max(1, left()),
    () => `have did not reach ${total}: ${progress()}`);

  // Statuses converge to read while the chaos goes on: receipts missed while cut off
  // are not replayed, so the senders refresh the watermarks with history, as an app does.
  await until(async () => {
    for (const s of [alice, bob]) {
      try { await s.client.history(direct, { limit: 1 }); } catch { return false; }
    }
    return [alice, bob].every((s) => s.sentSeqs.every((seq) => s.client.statusOf(direct, seq) === 'read'));
  }, Math.max(1, left()), () => `statuses did not converge to read: alice ${alice.client.statusOf(direct, alice.sentSeqs.at(-1))},`
    + ` bob ${bob.client.statusOf(direct, bob.sentSeqs.at(-1))}; ${progress()}`, 200);
  reading = false;
  proxy.chaos = false;
  await Promise.all(readers);
  console.log(`# ${progress()}; restarted: ${restarted}`);

  for (const s of [alice, bob]) {
    const other = s.user === 'alice' ? 'bob' : 'alice';
    assert.deepEqual(s.problems, [], `${s.user}: no out-of-order message, gap skip or listener failure`);
    assert.deepEqual(s.seqs, Array.from({ length: total }, (_, i) => i + 1), `${s.user} got every seq once, in order`);
    for (let i = 0; i < PER_USER; i++) {
      assert.equal(s.fromOther.get(`${other}-${i}`), 1, `${s.user} got ${other}-${i} exactly once`);
    }
    assert.equal(s.fromOther.size, PER_USER);
    assert.equal(new Set(s.sentSeqs).size, PER_USER, `${s.user}'s sends resolved once each with distinct seqs`);
    assert.ok(s.disconnects >= 3, `${s.user} was cut off more than by the restart (${s.disconnects} times)`);
  }
  assert.ok(restarted, 'the server restarted mid-run');
  assert.ok(proxy.stats.cuts >= 5, `the proxy cut connections (${proxy.stats.cuts})`);

  // The store holds exactly the total, each message once, all read.
  const pages = [];
  for (let after = 0; ;) {
    const page = await retrying(() => alice.client.history(direct, { after, limit: alice.client.limits.max_history_page }));
    if (page.messages.length === 0) break;
    pages.push(...page.messages);
    after = page.messages.at(-1).seq;
    assert.equal(page.last_seq, total);
  }
  assert.equal(pages.length, total);
  assert.deepEqual(pages.map((m) => m.seq), Array.from({ length: total }, (_, i) => i + 1));
  assert.equal(new Set(pages.map((m) => m.body)).size, total, 'no body stored twice');
  assert.ok(pages.every((m) => m.status === 'read'), 'history says every message is read');
});
