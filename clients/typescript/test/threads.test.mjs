// Replies, threads and attachments end to end against the real chat-server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient, ChatError } from '../dist/index.js';
import { startServer, devToken, until } from './helpers.mjs';

let server;
const clients = [];

before(async () => { server = await startServer(); });
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

function client(user) {
  const c = new ChatClient({ url: `ws://${server.address}/ws`, token: () => devToken(server.base, user), WebSocket });
  clients.push(c);
  return c;
}

/** The error a promise rejects with (fails when it resolves). */
async function refusal(promise) {
  try {
    const value = await promise;
    assert.fail(`expected a refusal, got ${JSON.stringify(value)}`);
  } catch (e) {
    return e;
  }
}

const photo = { url: 'https://files.example.com/u/alice/photo.png', mime_type: 'image/png', size: 48213, name: 'photo.png' };

test('a reply with an attachment round-trips, and a thread is read', async () => {
  const alice = client('alice');
  const bob = client('bob');
  await alice.connect();
  await bob.connect();
  const { conversation } = await alice.join('threads-room', { create: true });
  const id = conversation.id;
  await bob.join(id);
  const bobGot = [];
  bob.on('message', (e) => bobGot.push(e.message));

  const root = await alice.send(id, 'root'); // 1
  assert.equal(root.message.reply_to, undefined, 'a message that is no reply has no reply_to');
  assert.equal(root.message.thread, undefined);
  assert.equal(root.message.attachments, undefined, 'no attachments: the field is absent');
  await alice.send(id, 'elsewhere in the room'); // 2

  // A reply with an attachment and an existing caller's options (clientId) together.
  const reply = await bob.send(id, 'a reply', { clientId: 'reply-1', replyTo: 1, attachments: [photo] }); // 3
  assert.equal(reply.type, 'sent');
  assert.equal(reply.duplicate, false);
  assert.equal(reply.message.seq, 3);
  assert.equal(reply.message.client_id, 'reply-1');
  assert.equal(reply.message.reply_to, 1);
  assert.equal(reply.message.thread, 1);
  assert.deepEqual(reply.message.attachments, [photo]);
  // Retried with the same client id: the original, counted once.
  const again = await bob.send(id, 'a reply', { clientId: 'reply-1', replyTo: 1, attachments: [photo] });
  assert.equal(again.duplicate, true);
  assert.equal(again.message.seq, 3);

  // A reply to the reply joins the root's thread; attachments alone, no text.
  const nested = await alice.send(id, '', { replyTo: 3, attachments: [{ ...photo, name: 'second.png' }] }); // 4
  assert.equal(nested.message.body, '');
  assert.equal(nested.message.reply_to, 3);
  assert.equal(nested.message.thread, 1, 'a reply to a reply is in the root\'s thread');
  await alice.send(id, 'not in the thread'); // 5
  // The other member gets it as a message event, fields intact.
  await until(() => bobGot.some((m) => m.seq === 4), 5_000, `bob got ${bobGot.map((m) => m.seq)}`);
  const seen = bobGot.find((m) => m.seq === 4);
  assert.equal(seen.reply_to, 3);
  assert.equal(seen.thread, 1);
  assert.deepEqual(seen.attachments, [{ ...photo, name: 'second.png' }]);

  // The ordinary history carries the new fields; the root its reply count.
  const page = await alice.history(id);
  assert.deepEqual(page.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
  assert.equal(page.messages[0].reply_count, 2, 'two replies in the root\'s thread');
  assert.equal(page.messages[1].reply_count, undefined, 'no replies: no count');
  assert.deepEqual(page.messages[2].attachments, [photo]);

  // The thread: the root and its replies, ascending, paged by seq.
  const thread = await bob.history(id, { thread: 1 });
  assert.equal(thread.type, 'history');
  assert.equal(thread.conversation, id);
  assert.deepEqual(thread.messages.map((m) => m.seq), [1, 3, 4]);
  assert.deepEqual(thread.messages.map((m) => m.thread), [undefined, 1, 1]);
  const newest = await bob.history(id, { thread: 1, limit: 2 });
  assert.deepEqual(newest.messages.map((m) => m.seq), [3, 4], 'the newest page of the thread');
  const older = await bob.history(id, { thread: 1, before: 3 });
  assert.deepEqual(older.messages.map((m) => m.seq), [1], 'the page before 3');
  const later = await bob.history(id, { thread: 1, after: 1, limit: 1 });
  assert.deepEqual(later.messages.map((m) => m.seq), [3], 'the page after 1');
  const alone = await bob.history(id, { thread: 2 });
  assert.deepEqual(alone.messages.map((m) => m.seq), [2], 'a message without replies is a thread of one');

  // A thread is named by its root.
  const notRoot = await refusal(bob.history(id, { thread: 3 }));
  assert.ok(notRoot instanceof ChatError, String(notRoot));
  assert.equal(notRoot.code, 'invalid');
  const noSuch = await refusal(bob.history(id, { thread: 99 }));
  assert.equal(noSuch.code, 'not_found');

  // A deleted reply keeps its place in the thread but loses its attachments and its count.
  const gone = await alice.delete(id, 4);
  assert.equal(gone.message.thread, 1);
  assert.equal(gone.message.attachments, undefined, 'a tombstone has no attachments');
  const rest = await bob.history(id, { thread: 1 });
  assert.deepEqual(rest.messages.map((m) => m.seq), [1, 3, 4]);
  assert.equal(rest.messages[0].reply_count, 1);
  // Edit changes only the body.
  const edited = await bob.edit(id, 3, 'a reply, edited');
  assert.equal(edited.message.reply_to, 1);
  assert.deepEqual(edited.message.attachments, [photo]);
});

test('too many attachments are too_large, a reply to a missing message not_found, a bad attachment invalid', async () => {
  const carol = client('carol');
  await carol.connect();
  const { conversation } = await carol.join('threads-errors', { create: true });
  const id = conversation.id;
  await carol.send(id, 'one'); // 1

  const eleven = Array.from({ length: 11 }, (_, i) => ({ ...photo, name: `f${i}.png` }));
  const tooMany = await refusal(carol.send(id, 'many files', { attachments: eleven }));
  assert.ok(tooMany instanceof ChatError, String(tooMany));
  assert.equal(tooMany.code, 'too_large');
  assert.equal(tooMany.command, 'send');
  const ten = await carol.send(id, 'ten files', { attachments: eleven.slice(0, 10) }); // 2
  assert.equal(ten.message.attachments.length, 10, 'ten is the default maximum');

  const missing = await refusal(carol.send(id, 'to nothing', { replyTo: 99 }));
  assert.equal(missing.code, 'not_found');
  await carol.delete(id, 1);
  const deleted = await refusal(carol.send(id, 'to a tombstone', { replyTo: 1 }));
  assert.equal(deleted.code, 'not_found', 'a deleted message cannot be replied to');

  const ftp = await refusal(carol.send(id, 'x', { attachments: [{ ...photo, url: 'ftp://files.example.com/a' }] }));
  assert.equal(ftp.code, 'invalid');
  const mime = await refusal(carol.send(id, 'x', { attachments: [{ ...photo, mime_type: 'png' }] }));
  assert.equal(mime.code, 'invalid');
  const blank = await refusal(carol.send(id, 'x', { attachments: [{ ...photo, name: '  ' }] }));
  assert.equal(blank.code, 'invalid');
  const longName = await refusal(carol.send(id, 'x', { attachments: [{ ...photo, name: 'n'.repeat(256) }] }));
  assert.equal(longName.code, 'too_large');
  const empty = await refusal(carol.send(id, '', {}));
  assert.equal(empty.code, 'invalid', 'without attachments the body may not be empty');
  // An empty attachments list sends as before.
  const plain = await carol.send(id, 'plain', { attachments: [] });
  assert.equal(plain.message.seq, 3);
  assert.equal(carol.have(id), 3, 'the refused sends took no seq');
});
