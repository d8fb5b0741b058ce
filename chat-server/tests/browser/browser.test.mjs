// The demo page in headless Chromium against a real chat-server.
// Run by scripts/browser-test.sh (which builds the server and the page's client, and
// installs what is missing):
//   CHAT_SERVER_BIN=$CARGO_TARGET_DIR/debug/chat-server node --test browser.test.mjs
// With CHAT_BROWSER_TLS=1 the servers serve https and wss with a self-signed certificate
// made here by openssl, and Chromium runs with --ignore-certificate-errors (trusting a
// test CA in a headless Chromium takes an NSS database; this run is about the page
// working over https, not about certificate checks, which the Rust tests cover).
//
// 1. Two users become friends, chat in a room and directly, see typing, members,
//    join notices and the read receipt (a wide window).
// 2. The same page 400 px wide: the friend request names its sender, every form is
//    reachable and usable, the list and the chat are two views.
// 3. A reply made in the page (its "Reply" action, the target above the input, Cancel)
//    shows as a reply in the other user's page, the root's reply count follows live
//    (replies from the page and the HTTP API, a delete) and after a reload, and an
//    attachment shows as a link with its size.
// 4. The server restarts (SIGTERM, then SIGKILL) under open pages, on an SQLite file:
//    the pages reconnect by themselves and show every message exactly once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, request as httpClient } from 'playwright-core';

const TARGET = process.env.CARGO_TARGET_DIR ?? new URL('../../../target', import.meta.url).pathname;
const BIN = process.env.CHAT_SERVER_BIN ?? `${TARGET}/debug/chat-server`;
const TLS = process.env.CHAT_BROWSER_TLS === '1';
const SHOTS = (process.env.CHAT_SCREENSHOTS ?? `${TARGET}/browser`) + (TLS ? '/tls' : '');
const WAIT = { timeout: 10_000 };
/** Long enough for a few reconnect attempts with backoff (250 ms doubling, jittered). */
const RECONNECT_WAIT = { timeout: 30_000 };
let server;
let base;
let browser;
let certDir;
let tlsArgs = [];
/** Every WebSocket URL a page opened. */
const sockets = [];
/** Uncaught exceptions in any page: each test asserts there were none. */
const pageErrors = [];

/** A self-signed certificate for 127.0.0.1: the server's --tls-* arguments. */
function selfSigned() {
  certDir = mkdtempSync(join(tmpdir(), 'chat-browser-tls-'));
  const [cert, key] = [join(certDir, 'cert.pem'), join(certDir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return ['--tls-cert', cert, '--tls-key', key];
}

/** Starts chat-server with `args`; resolves once it logs its address. */
function startServer(args) {
  const proc = spawn(BIN, [...args, '--log-format', 'json', ...tlsArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in 20 s')), 20_000);
    exited.then(({ code, signal }) => reject(new Error(`the server exited with ${code ?? signal}`)));
    createInterface({ input: proc.stderr }).on('line', (line) => {
      try {
        const address = JSON.parse(line)?.fields?.address;
        if (address) { clearTimeout(timer); resolve(`${TLS ? 'https' : 'http'}://${address}`); }
      } catch { /* the dev-mode banner is not JSON */ }
    });
  });
  return started.then((url) => ({ proc, exited, base: url }));
}

/** Stops a server with `signal` and waits (at most 20 s) until it has exited. */
async function stopServer(srv, signal) {
  if (srv.proc.exitCode !== null || srv.proc.signalCode !== null) return;
  srv.proc.kill(signal);
  let timer;
  await Promise.race([
    srv.exited,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`the server did not exit on ${signal}`)), 20_000); }),
  ]).finally(() => clearTimeout(timer));
}

/** A TCP port nobody listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  tlsArgs = TLS ? selfSigned() : [];
  server = await startServer(['--dev', '--store', 'memory', '--listen', '127.0.0.1:0']);
  base = server.base;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(TLS ? ['--ignore-certificate-errors'] : [])],
  });
});

after(async () => {
  await browser?.close();
  if (server) await stopServer(server, 'SIGTERM').catch(() => server.proc.kill('SIGKILL'));
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

async function signIn(user, { at = base, width = 1100, height = 720 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.stack ?? e}`));
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(at);
  await page.getByTestId('dev-user').fill(user);
  await page.getByTestId('signin').click();
  await page.getByTestId('me').filter({ hasText: user }).waitFor(WAIT);
  await page.locator('#conn-dot.online').waitFor(WAIT);
  return page;
}

const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png` });

/** Asserts that the element is shown whole inside the page's viewport. */
async function assertInViewport(page, locator, what) {
  await locator.waitFor({ state: 'visible', ...WAIT });
  const box = await locator.boundingBox();
  const { width, height } = page.viewportSize();
  assert.ok(box, `${what}: has a box`);
  assert.ok(box.width > 0 && box.height > 0, `${what}: has a size (${JSON.stringify(box)})`);
  assert.ok(box.x >= 0 && box.x + box.width <= width + 0.5, `${what}: inside the ${width} px width (${JSON.stringify(box)})`);
  assert.ok(box.y >= 0 && box.y + box.height <= height + 0.5, `${what}: inside the ${height} px height (${JSON.stringify(box)})`);
}

/** Asserts that a text element shows all of its text (neither cut nor ellipsized). */
async function assertNotClipped(locator, what) {
  const { scroll, client, text } = await locator.evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth, text: e.textContent }));
  assert.ok(client > 0, `${what}: the name has a width`);
  assert.ok(scroll <= client, `${what}: "${text}" is not clipped (${scroll} px of text in ${client} px)`);
}

/** The bodies of the message elements on a page, in the order shown. */
const shownBodies = (page) => page.locator('[data-testid=message] .body').allTextContents();

test('two users become friends, chat in a room and directly, see typing and the read receipt', async () => {
  const alice = await signIn('alice');
  const bob = await signIn('bob');
  // Empty states say what to do.
  await alice.getByTestId('friends-empty').filter({ hasText: 'Add one above' }).waitFor(WAIT);
  await alice.getByTestId('conversations-empty').filter({ hasText: 'Join a room' }).waitFor(WAIT);
  await alice.getByTestId('messages-empty').filter({ hasText: 'join a room' }).waitFor(WAIT);
  await alice.getByTestId('conn-state').filter({ hasText: 'Connected' }).waitFor(WAIT);
  await shot(alice, '01-signed-in');

  // The room-name rule of docs/protocol.md, checked before anything is sent.
  const title = alice.getByTestId('chat-title');
  for (const [name, rule] of [
    [' lobby', 'no leading or trailing spaces'],
    ['é'.repeat(33), '1 to 64 bytes'], // 33 characters, 66 bytes
    ['a/b', 'letters, digits, spaces and - _ . # only'],
  ]) {
    await alice.getByTestId('room-name').fill(name);
    await alice.getByTestId('join-room').click();
    await alice.getByTestId('room-hint').filter({ hasText: rule }).waitFor(WAIT);
    assert.equal(await alice.getByTestId('room-name').getAttribute('aria-invalid'), 'true', name);
    assert.equal(await title.textContent(), 'No conversation', `${JSON.stringify(name)} joined nothing`);
  }
  await alice.getByTestId('room-name').fill('café #1'); // letters beyond ASCII, '#' and a space
  await alice.getByTestId('join-room').click();
  await title.filter({ hasText: '# café #1' }).waitFor(WAIT);
  await alice.getByTestId('messages-empty').filter({ hasText: 'No messages yet' }).waitFor(WAIT);

  // Friends: alice asks, bob accepts, both see each other online.
  await alice.getByTestId('friend-name').fill('bob');
  await alice.getByTestId('add-friend').click();
  const request = bob.locator('[data-testid=friend][data-user=alice][data-status=request_received]');
  await request.waitFor(WAIT);
  await assertInViewport(bob, request.locator('.name'), 'the name in the friend request');
  await assertNotClipped(request.locator('.name'), 'the name in the friend request');
  await shot(bob, '02-friend-request');
  await request.getByTestId('accept').click();
  await alice.locator('[data-testid=friend][data-user=bob][data-status=friends] .dot.online').waitFor(WAIT);
  await bob.locator('[data-testid=friend][data-user=alice][data-status=friends] .dot.online').waitFor(WAIT);
  await shot(alice, '03-friends');

  // A room: alice joins, then bob (alice sees him join and in the members, online);
  // alice types (bob sees it) and sends (bob receives it).
  for (const page of [alice, bob]) {
    await page.getByTestId('room-name').fill('lobby');
    await page.getByTestId('join-room').click();
    await page.getByTestId('chat-title').filter({ hasText: '# lobby' }).waitFor(WAIT);
  }
  await alice.getByTestId('notice').filter({ hasText: 'bob joined' }).waitFor(WAIT);
  await alice.locator('[data-testid=member][data-user=bob][data-online=true]').waitFor(WAIT);
  await bob.locator('[data-testid=member][data-user=alice][data-online=true]').waitFor(WAIT);
  await bob.getByTestId('members-summary').filter({ hasText: '2 members · 2 online' }).waitFor(WAIT);
  await alice.getByTestId('body').type('hello ');
  await bob.getByTestId('typing').filter({ hasText: 'alice is typing' }).waitFor(WAIT);
  await shot(bob, '04-typing');
  await alice.getByTestId('body').type('room');
  await alice.getByTestId('send').click();
  await bob.getByTestId('message').filter({ hasText: 'hello room' }).waitFor(WAIT);
  await bob.getByTestId('typing').filter({ hasText: /^$/ }).waitFor(WAIT);
  await shot(bob, '05-room-message');
  // The list shows each conversation's last message and its time.
  const lobby = bob.locator('[data-testid=conversation][data-title="# lobby"]');
  await lobby.getByTestId('last').filter({ hasText: 'alice: hello room' }).waitFor(WAIT);
  assert.match(await lobby.getByTestId('when').textContent(), /\d/, 'the last message has a time');
  await alice.locator('[data-testid=conversation][data-title="# lobby"]').getByTestId('last')
    .filter({ hasText: 'you: hello room' }).waitFor(WAIT);
  // The join notice stays in the timeline once messages came after it.
  assert.equal(await alice.getByTestId('notice').filter({ hasText: 'bob joined' }).count(), 1);
  await shot(alice, '05-room-notice');

  // A direct message: bob sees it unread, opens it, alice sees it read.
  await alice.locator('[data-testid=friend][data-user=bob]').getByTestId('message-friend').click();
  await alice.getByTestId('chat-title').filter({ hasText: 'bob' }).waitFor(WAIT);
  assert.ok(await alice.getByTestId('members-panel').isHidden(), 'a direct conversation lists no members');
  await alice.getByTestId('body').fill('hi bob, just us');
  await alice.getByTestId('send').click();
  const mine = alice.getByTestId('message').filter({ hasText: 'hi bob, just us' });
  await mine.waitFor(WAIT);
  const direct = bob.locator('[data-testid=conversation][data-title=alice]');
  await direct.getByTestId('unread').filter({ hasText: '1' }).waitFor(WAIT);
  await mine.getByTestId('status').filter({ hasText: 'delivered' }).waitFor(WAIT);
  await shot(bob, '06-direct-unread');
  await direct.click();
  await bob.getByTestId('message').filter({ hasText: 'hi bob, just us' }).waitFor(WAIT);
  await mine.getByTestId('status').filter({ hasText: 'read' }).waitFor(WAIT);
  await shot(alice, '07-read-receipt');
  assert.equal(await direct.getByTestId('unread').count(), 0, 'opening the conversation clears its unread badge');
  assert.equal(await bob.getByTestId('unread-total').textContent(), '0');

  // The page and its WebSockets used the scheme the server serves, and the page's
  // client is the module the server serves.
  assert.ok(alice.url().startsWith(base), alice.url());
  assert.ok(sockets.length >= 2, `the pages opened WebSockets: ${sockets}`);
  for (const url of sockets) {
    assert.ok(url.startsWith(TLS ? 'wss://' : 'ws://'), url);
  }
  const client = await alice.evaluate(async () => {
    const r = await fetch('/chat-client.js');
    return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
  });
  assert.equal(client.status, 200);
  assert.match(client.type, /^text\/javascript/);
  assert.match(client.text, /^\/\/ Generated by scripts\/build-web.sh from clients\/typescript/);
  assert.match(client.text, /export class ChatClient/);
  assert.deepEqual(pageErrors, []);
  await alice.context().close();
  await bob.context().close();
});

test('400 px wide: the friend request names its sender, and every form is reachable and works', async () => {
  const narrow = { width: 400, height: 760 };
  const carol = await signIn('carol-from-accounting', narrow);
  const dave = await signIn('dave', narrow);

  // The list is the first view; the chat is not squeezed beside it.
  assert.ok(await dave.getByTestId('chat').isHidden(), 'the chat is its own view at 400 px');
  await dave.getByTestId('friends-empty').waitFor(WAIT);
  await dave.getByTestId('conversations-empty').waitFor(WAIT);
  for (const id of ['room-name', 'join-room', 'friend-name', 'add-friend']) {
    await assertInViewport(dave, dave.getByTestId(id), id);
  }
  await shot(dave, '400-01-list-empty');

  // carol-from-accounting asks dave; dave sees her whole name beside Accept and Decline.
  await carol.getByTestId('friend-name').fill('dave');
  await carol.getByTestId('add-friend').click();
  await carol.locator('[data-testid=friend][data-user=dave][data-status=request_sent]').waitFor(WAIT);
  const request = dave.locator('[data-testid=friend][data-user="carol-from-accounting"][data-status=request_received]');
  await request.waitFor(WAIT);
  await assertInViewport(dave, request.locator('.name'), 'the name in the friend request');
  await assertNotClipped(request.locator('.name'), 'the name in the friend request');
  await assertInViewport(dave, request.getByTestId('accept'), 'Accept');
  await assertInViewport(dave, request.getByTestId('decline'), 'Decline');
  await shot(dave, '400-02-friend-request');
  await request.getByTestId('accept').click();
  await carol.locator('[data-testid=friend][data-user=dave][data-status=friends] .dot.online').waitFor(WAIT);

  // carol joins a room: the chat replaces the list, with a back button and a usable composer.
  await carol.getByTestId('room-name').fill('narrow');
  await carol.getByTestId('join-room').click();
  await carol.getByTestId('chat-title').filter({ hasText: '# narrow' }).waitFor(WAIT);
  assert.ok(await carol.getByTestId('sidebar').isHidden(), 'the list is hidden while the chat is shown');
  for (const id of ['back', 'chat-title', 'body', 'send', 'leave-room']) {
    await assertInViewport(carol, carol.getByTestId(id), id);
  }
  await carol.getByTestId('messages-empty').filter({ hasText: 'No messages yet' }).waitFor(WAIT);
  await dave.getByTestId('room-name').fill('narrow');
  await dave.getByTestId('join-room').click();
  await dave.getByTestId('chat-title').filter({ hasText: '# narrow' }).waitFor(WAIT);
  await carol.getByTestId('notice').filter({ hasText: 'dave joined' }).waitFor(WAIT);
  await carol.locator('[data-testid=member][data-user=dave][data-online=true]').waitFor(WAIT);
  await carol.getByTestId('body').fill('hello from 400 px');
  await carol.getByTestId('send').click();
  await dave.getByTestId('message').filter({ hasText: 'hello from 400 px' }).waitFor(WAIT);
  await assertInViewport(dave, dave.getByTestId('message').filter({ hasText: 'hello from 400 px' }), 'the message');
  await shot(carol, '400-03-room');

  // dave leaves: carol sees it in the timeline and the members; the notices stay.
  await dave.getByTestId('leave-room').click();
  await dave.getByTestId('sidebar').waitFor({ state: 'visible', ...WAIT });
  await carol.getByTestId('notice').filter({ hasText: 'dave left' }).waitFor(WAIT);
  await carol.locator('[data-testid=member][data-user=dave]').waitFor({ state: 'detached', ...WAIT });
  await carol.getByTestId('body').fill('still here');
  await carol.getByTestId('send').click();
  await carol.getByTestId('message').filter({ hasText: 'still here' }).getByTestId('status').waitFor(WAIT);
  assert.equal(await carol.getByTestId('notice').filter({ hasText: 'dave joined' }).count(), 1);
  assert.equal(await carol.getByTestId('notice').filter({ hasText: 'dave left' }).count(), 1);
  assert.deepEqual(await carol.getByTestId('notice').allTextContents(), ['dave joined', 'dave left']);
  await shot(carol, '400-04-notices');

  // Back to the list, which shows the room's last message.
  await carol.getByTestId('back').click();
  await carol.getByTestId('sidebar').waitFor({ state: 'visible', ...WAIT });
  assert.ok(await carol.getByTestId('chat').isHidden(), 'back shows the list alone');
  const room = carol.locator('[data-testid=conversation][data-title="# narrow"]');
  await room.getByTestId('last').filter({ hasText: 'you: still here' }).waitFor(WAIT);
  await assertInViewport(carol, room, 'the conversation in the list');
  await shot(carol, '400-05-list');
  assert.deepEqual(pageErrors, []);
  await carol.context().close();
  await dave.context().close();
});

test('a reply made in the page shows as a reply for the other user, with the root\'s reply count and attachments', async () => {
  const gina = await signIn('gina');
  const hank = await signIn('hank');
  for (const page of [gina, hank]) {
    await page.getByTestId('room-name').fill('threads');
    await page.getByTestId('join-room').click();
    await page.getByTestId('chat-title').filter({ hasText: '# threads' }).waitFor(WAIT);
  }
  await gina.getByTestId('body').fill('which day works?');
  await gina.getByTestId('send').click();
  const question = (page) => page.locator('[data-testid=message][data-seq="1"]');
  await question(hank).filter({ hasText: 'which day works?' }).waitFor(WAIT);

  // hank picks the message to reply to: the target shows above the input; Cancel drops it.
  const bar = hank.getByTestId('reply-bar');
  assert.ok(await bar.isHidden(), 'no reply target at first');
  await question(hank).getByTestId('reply').click();
  await bar.filter({ hasText: '#1' }).filter({ hasText: 'gina: which day works?' }).waitFor(WAIT);
  await assertInViewport(hank, bar, 'the reply target');
  await hank.getByTestId('reply-cancel').click();
  await bar.waitFor({ state: 'hidden', ...WAIT });
  await question(hank).getByTestId('reply').click();
  await bar.waitFor({ state: 'visible', ...WAIT });
  await hank.getByTestId('body').fill('thursday');
  await hank.getByTestId('send').click();
  await bar.waitFor({ state: 'hidden', ...WAIT });
  await shot(hank, 'reply-1-sent');

  // Both pages show it as a reply to #1, and the root's count, gina's live.
  for (const [who, page] of [['hank', hank], ['gina', gina]]) {
    const reply = page.locator('[data-testid=message][data-seq="2"]');
    await reply.filter({ hasText: 'thursday' }).waitFor(WAIT);
    assert.equal(await reply.getAttribute('data-reply-to'), '1', `${who}: the reply names the message it answers`);
    const line = await reply.getByTestId('reply-to').textContent();
    assert.match(line, /↪ replying to #1/, `${who}: ${line}`);
    assert.match(line, /which day works\?/, `${who}: the line quotes the message: ${line}`);
    await question(page).getByTestId('reply-count').filter({ hasText: '1 reply' }).waitFor(WAIT);
    assert.equal(await question(page).getByTestId('reply-to').count(), 0, `${who}: the root replies to nothing`);
  }
  await shot(gina, 'reply-2-received');

  // A reply with an attachment from elsewhere (the HTTP API): shown as a link with its
  // size, and the count follows in both pages.
  const api = await httpClient.newContext({ ignoreHTTPSErrors: true });
  try {
    const token = (await (await api.post(`${base}/dev/token`, { data: { user: 'hank' } })).json()).token;
    const auth = { authorization: `Bearer ${token}` };
    const room = (await (await api.post(`${base}/api/v1/rooms/threads/join`, { headers: auth })).json()).conversation.id;
    const file = { url: 'https://files.example.com/plan.pdf', mime_type: 'application/pdf', size: 48213, name: 'plan.pdf' };
    const r = await api.post(`${base}/api/v1/conversations/${room}/messages`, {
      headers: auth, data: { body: 'the plan', client_id: 'api-plan', reply_to: 2, attachments: [file] },
    });
    assert.equal(r.status(), 200, await r.text());
    for (const page of [gina, hank]) {
      const third = page.locator('[data-testid=message][data-seq="3"]');
      await third.filter({ hasText: 'the plan' }).waitFor(WAIT);
      await third.getByTestId('reply-to').filter({ hasText: '#2' }).waitFor(WAIT);
      const link = third.getByTestId('attachment').locator('a');
      assert.equal(await link.textContent(), 'plan.pdf');
      assert.equal(await link.getAttribute('href'), 'https://files.example.com/plan.pdf');
      await third.getByTestId('attachment').filter({ hasText: '47.1 KB' }).waitFor(WAIT);
      // A reply to a reply counts in the thread's root.
      await question(page).getByTestId('reply-count').filter({ hasText: '2 replies' }).waitFor(WAIT);
    }
    await gina.locator('[data-testid=conversation][data-title="# threads"]').getByTestId('last')
      .filter({ hasText: 'hank: 📎 plan.pdf the plan' }).waitFor(WAIT);
    await shot(gina, 'reply-3-attachment');

    // A fresh page reads the count from history, without counting anything twice.
    await gina.reload();
    await gina.locator('#conn-dot.online').waitFor(WAIT);
    await gina.locator('[data-testid=conversation][data-title="# threads"]').click();
    await question(gina).getByTestId('reply-count').filter({ hasText: '2 replies' }).waitFor(WAIT);
    await gina.locator('[data-testid=message][data-seq="3"]').getByTestId('reply-to')
      .filter({ hasText: 'hank: thursday' }).waitFor(WAIT);
    assert.equal(await gina.locator('[data-testid=message][data-reply-to]').count(), 2, 'two replies shown');

    // gina replies from the reloaded page (the text first, then the target): counted
    // live in hank's page, and in hers.
    await gina.getByTestId('body').fill('thursday it is');
    await question(gina).getByTestId('reply').click();
    assert.equal(await gina.getByTestId('body').inputValue(), 'thursday it is', 'picking a target keeps the text');
    await gina.getByTestId('send').click();
    for (const page of [gina, hank]) {
      await page.locator('[data-testid=message][data-seq="4"][data-reply-to="1"]').waitFor(WAIT);
      await question(page).getByTestId('reply-count').filter({ hasText: '3 replies' }).waitFor(WAIT);
    }

    // A deleted reply stays in place but no longer counts (message_deleted).
    const d = await api.delete(`${base}/api/v1/conversations/${room}/messages/3`, { headers: auth });
    assert.equal(d.status(), 200, await d.text());
    for (const page of [gina, hank]) {
      await page.locator('[data-testid=message][data-seq="3"].deleted').waitFor(WAIT);
      assert.equal(await page.locator('[data-testid=message][data-seq="3"]').getByTestId('attachment').count(), 0);
      await question(page).getByTestId('reply-count').filter({ hasText: '2 replies' }).waitFor(WAIT);
    }
    await shot(hank, 'reply-4-deleted');
  } finally {
    await api.dispose();
  }
  assert.deepEqual(pageErrors, []);
  await gina.context().close();
  await hank.context().close();
});

test('the server restarts under open pages: they reconnect by themselves and show every message once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-browser-restart-'));
  const port = await freePort();
  // A fixed secret: the pages' tokens stay valid across the restarts.
  const secret = 'browser-test-secret-of-at-least-32-bytes';
  const args = ['--dev', '--jwt-secret', secret, '--store', `sqlite:${join(dir, 'chat.db')}`,
    '--listen', `127.0.0.1:${port}`];
  let srv = await startServer(args);
  const at = srv.base;
  const api = await httpClient.newContext({ ignoreHTTPSErrors: true });
  try {
    const erin = await signIn('erin', { at });
    const frank = await signIn('frank', { at });
    for (const page of [erin, frank]) {
      await page.getByTestId('room-name').fill('restart');
      await page.getByTestId('join-room').click();
      await page.getByTestId('chat-title').filter({ hasText: '# restart' }).waitFor(WAIT);
    }
    const token = (await (await api.post(`${at}/dev/token`, { data: { user: 'frank' } })).json()).token;
    const room = (await (await api.post(`${at}/api/v1/rooms/restart/join`, {
      headers: { authorization: `Bearer ${token}` },
    })).json()).conversation.id;
    const expected = [];
    const sendInPage = async (body) => {
      expected.push(body);
      await frank.getByTestId('body').fill(body);
      await frank.getByTestId('send').click();
    };
    const sendByApi = async (body) => {
      expected.push(body);
      const r = await api.post(`${at}/api/v1/conversations/${room}/messages`, {
        headers: { authorization: `Bearer ${token}` }, data: { body, client_id: `api-${body}` },
      });
      assert.equal(r.status(), 200, await r.text());
    };
    await sendInPage('before 1');
    await sendInPage('before 2');
    await erin.getByTestId('message').filter({ hasText: 'before 2' }).waitFor(WAIT);

    for (const signal of ['SIGTERM', 'SIGKILL']) {
      await stopServer(srv, signal);
      await erin.getByTestId('conn-state').filter({ hasText: /reconnecting/i }).waitFor(WAIT);
      // frank writes while the server is down: the page holds it as pending.
      await sendInPage(`written while down (${signal})`);
      await frank.locator('[data-testid=message][data-pending]').filter({ hasText: `written while down (${signal})` }).waitFor(WAIT);
      await shot(erin, `restart-${signal}-1-down`);
      await shot(frank, `restart-${signal}-2-pending`);
      srv = await startServer(args);
      // At once, before the pages' next attempt: erin is likely still away and gets
      // these by resume; whatever she does not, she gets live.
      await sendByApi(`after ${signal} 1`);
      await sendByApi(`after ${signal} 2`);
      for (const page of [erin, frank]) {
        await page.locator('#conn-dot.online').waitFor(RECONNECT_WAIT);
        await page.getByTestId('conn-state').filter({ hasText: 'Connected' }).waitFor(WAIT);
      }
      await sendInPage(`after ${signal} 3`);
      await sendByApi(`after ${signal} 4`);
    }

    for (const [who, page] of [['erin', erin], ['frank', frank]]) {
      await page.getByTestId('message').filter({ hasText: expected[expected.length - 1] }).waitFor(WAIT);
      await page.locator('[data-testid=message][data-pending]').waitFor({ state: 'detached', ...WAIT });
      const shown = await shownBodies(page);
      for (const body of expected) {
        assert.equal(shown.filter((b) => b === body).length, 1, `${who} shows "${body}" once: ${JSON.stringify(shown)}`);
      }
      assert.equal(shown.length, expected.length, `${who} shows nothing else: ${JSON.stringify(shown)}`);
      const seqs = await page.locator('[data-testid=message]').evaluateAll((es) => es.map((e) => Number(e.dataset.seq)));
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), `${who} shows seq 1, 2, 3, … in order`);
      await shot(page, `restart-3-${who}-after`);
    }
    assert.deepEqual(pageErrors, []);
    await erin.context().close();
    await frank.context().close();
  } finally {
    await api.dispose();
    await stopServer(srv, 'SIGTERM').catch(() => srv.proc.kill('SIGKILL'));
    rmSync(dir, { recursive: true, force: true });
  }
});
