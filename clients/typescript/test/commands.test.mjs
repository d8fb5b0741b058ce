// Typed commands, replies and errors end to end against the real chat-server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ChatClient, ChatError, DisconnectedError } from '../dist/index.js';
import { startServer, devToken, until } from './helpers.mjs';

let server;
const clients = [];

before(async () => { server = await startServer(); });
after(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

function client(user, options = {}) {
  const c = new ChatClient({
    url: `ws://${server.address}/ws`, token: () => devToken(server.base, user), WebSocket, ...options,
  });
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

test('commands resolve to typed replies, refusals reject with a ChatError and the connection stays usable', async () => {
  const alice = client('alice');
  const bob = client('bob');
  const states = [];
  alice.on('state', (e) => states.push(e.state));
  const hello = await alice.connect();
  assert.equal(hello.type, 'hello');
  assert.equal(hello.protocol, 1);
  assert.equal(alice.user, 'alice');
  assert.equal(alice.state, 'open');
  assert.deepEqual(states, ['connecting', 'open']);
  assert.equal(alice.limits.max_history_page, hello.limits.max_history_page);
  await bob.connect();

  // Rooms.
  const room = await alice.createRoom('commands-room');
  assert.equal(room.type, 'room');
  assert.equal(room.conversation.name, 'commands-room');
  assert.equal(room.joined, true);
  const taken = await refusal(alice.createRoom('commands-room'));
  assert.ok(taken instanceof ChatError, String(taken));
  assert.equal(taken.code, 'conflict');
  assert.equal(taken.command, 'create_room');
  const id = room.conversation.id;
  const joined = await bob.join('commands-room');
  assert.equal(joined.conversation.id, id);
  assert.equal(joined.joined, true);
  assert.equal((await bob.join(id)).joined, false, 'joining again by id answers joined: false');
  const members = await alice.members(id, { limit: 10 });
  assert.deepEqual(members.members.map((m) => [m.user, m.role]), [['alice', 'owner'], ['bob', 'member']]);

  // Messages: bob receives alice's message as an event; alice's own comes from the reply.
  const bobGot = [];
  bob.on('message', (e) => bobGot.push(e.message));
  const aliceGot = [];
  alice.on('message', (e) => aliceGot.push(e.message));
  const sent = await alice.send(id, 'first', { clientId: 'm-1' });
  assert.equal(sent.type, 'sent');
  assert.equal(sent.message.seq, 1);
  assert.equal(sent.duplicate, false);
  const again = await alice.send(id, 'first', { clientId: 'm-1' });
  assert.equal(again.duplicate, true);
  assert.equal(again.message.id, sent.message.id);
  await until(() => bobGot.length === 1, 5_000, 'bob did not get the message event');
  assert.equal(bobGot[0].body, 'first');
  assert.deepEqual(aliceGot.map((m) => m.seq), [1], 'the own message is delivered once');

  const edited = await alice.edit(id, 1, 'first, edited');
  assert.equal(edited.type, 'message');
  assert.equal(edited.message.body, 'first, edited');
  const notYours = await refusal(bob.edit(id, 1, 'mine now'));
  assert.ok(notYours instanceof ChatError);
  assert.equal(notYours.code, 'forbidden');
  const tooLarge = await refusal(alice.send(id, 'x'.repeat(alice.limits.max_body_bytes + 1)));
  assert.equal(tooLarge.code, 'too_large');
  const unknown = await refusal(alice.history('0190f0c0-0000-7000-8000-00000000dead'));
  assert.ok(unknown instanceof ChatError);
  assert.equal(unknown.code, 'not_found');

  // Still usable after the errors.
  const s2 = await alice.send(id, 'second');
  assert.equal(s2.message.seq, 2);
  const deleted = await alice.delete(id, 2);
  assert.ok(deleted.message.deleted_at);
  const history = await bob.history(id);
  assert.equal(history.type, 'history');
  assert.deepEqual(history.messages.map((m) => m.seq), [1, 2]);
  assert.equal(history.last_seq, 2);

  // Receipts: bob reads, alice's status of seq 1 becomes read (from the receipt event).
  const marks = await bob.markRead(id, 2);
  assert.deepEqual([marks.type, marks.delivered_seq, marks.read_seq], ['marks', 2, 2]);
  await until(() => alice.statusOf(id, 1) === 'read', 5_000, `alice's status stayed ${alice.statusOf(id, 1)}`);
  const delivered = await alice.markDelivered(id, 2);
  assert.equal(delivered.delivered_seq, 2);

  // Typing reaches the other member.
  const typing = [];
  bob.on('typing', (e) => typing.push(e));
  assert.equal((await alice.typing(id, true)).type, 'ok');
  await until(() => typing.some((e) => e.user === 'alice' && e.typing), 5_000, 'no typing event');

  // Lists and counts.
  const list = await bob.listConversations({ limit: 10 });
  assert.equal(list.type, 'conversations');
  assert.ok(list.conversations.some((c) => c.conversation.id === id));
  assert.equal((await bob.unreadTotal()).unread, 0);

  // Friends and direct conversations.
  const notFriends = await refusal(alice.openDirect('bob'));
  assert.equal(notFriends.code, 'not_friends');
  const friendEvents = [];
  bob.on('friend', (e) => friendEvents.push(e.friend));
  assert.equal((await alice.friendRequest('bob')).friend.status, 'request_sent');
  await until(() => friendEvents.some((f) => f.user === 'alice' && f.status === 'request_received'), 5_000, 'no friend event');
  assert.equal((await refusal(alice.friendRequest('bob'))).code, 'conflict');
  assert.equal((await refusal(bob.friendCancel('alice'))).code, 'not_found');
  assert.equal((await bob.friendAccept('alice')).friend.status, 'friends');
  const friends = await alice.listFriends();
  assert.deepEqual(friends.friends.map((f) => [f.user, f.status]), [['bob', 'friends']]);
  assert.deepEqual((await alice.onlineFriends()).users, ['bob']);
  const added = [];
  bob.on('conversation_added', (e) => added.push(e.conversation.id));
  const direct = await alice.openDirect('bob');
  assert.equal(direct.type, 'direct');
  assert.deepEqual([direct.conversation.a, direct.conversation.b], ['alice', 'bob']);
  await until(() => added.includes(direct.conversation.id), 5_000, 'bob did not get conversation_added');
  assert.equal(bob.have(direct.conversation.id), 0);
  await alice.send(direct.conversation.id, 'just us');
  await until(() => bob.have(direct.conversation.id) === 1, 5_000, 'bob did not get the direct message');
  await until(() => alice.statusOf(direct.conversation.id, 1) === 'delivered', 5_000,
    `the automatic mark_delivered did not reach alice: ${alice.statusOf(direct.conversation.id, 1)}`);
  assert.equal((await alice.block('mallory')).friend.status, 'blocked');
  assert.equal((await alice.unblock('mallory')).friend.status, 'none');
  assert.equal((await refusal(alice.friendDecline('carol'))).code, 'not_found');
  assert.equal((await alice.friendRemove('bob')).friend.status, 'none');

  // Raw resume, refresh_token, invite, leave.
  const resumed = await bob.resume([{ conversation: id, last_seq: 1 }]);
  assert.equal(resumed.conversations[0].outcome, 'replayed');
  assert.deepEqual(resumed.conversations[0].messages.map((m) => m.seq), [2]);
  assert.equal((await alice.refreshToken()).type, 'token_refreshed');
  const invited = await alice.invite(id, 'carol');
  assert.equal(invited.joined, false);
  assert.equal((await bob.leave(id)).type, 'ok');
  assert.equal(bob.have(id), undefined, 'a left room is no longer followed');
  assert.equal((await refusal(bob.history(id))).code, 'forbidden');
});

test('a listener that throws does not stop the client nor the other listeners', async () => {
  const carol = client('carol');
  const dave = client('dave');
  await carol.connect();
  await dave.connect();
  const errors = [];
  dave.on('error', (e) => errors.push(e));
  dave.on('message', () => { throw new Error('listener bug'); });
  const got = [];
  dave.on('message', (e) => got.push(e.message.seq));
  const { conversation } = await carol.join('listeners', { create: true });
  await dave.join('listeners');
  for (let i = 0; i < 3; i++) await carol.send(conversation.id, `m${i}`);
  await until(() => got.length === 3, 5_000, `dave got ${got}`);
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(errors.length, 3);
  assert.equal(errors[0].context, 'listener');
  assert.equal(errors[0].error.message, 'listener bug');
});

test('close() rejects pending commands with DisconnectedError and ends in state closed', async () => {
  const erin = client('erin');
  await erin.connect();
  const pending = erin.listFriends();
  erin.close();
  const e = await refusal(pending);
  assert.ok(e instanceof DisconnectedError, String(e));
  assert.equal(erin.state, 'closed');
  assert.ok((await refusal(erin.unreadTotal())) instanceof DisconnectedError);
});
