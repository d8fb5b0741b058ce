// Two users chat through the demo page in headless Chromium.
// Run by scripts/browser-test.sh (which builds the server and installs what is missing):
//   CHAT_SERVER_BIN=target/debug/chat-server node --test browser.test.mjs
// With CHAT_BROWSER_TLS=1 the server serves https and wss with a self-signed certificate
// made here by openssl, and Chromium runs with --ignore-certificate-errors (trusting a
// test CA in a headless Chromium takes an NSS database; this run is about the page
// working over https, not about certificate checks, which the Rust tests cover).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const BIN = process.env.CHAT_SERVER_BIN ?? '../../../target/debug/chat-server';
const TLS = process.env.CHAT_BROWSER_TLS === '1';
const SHOTS = (process.env.CHAT_SCREENSHOTS ?? '../../../target/browser') + (TLS ? '/tls' : '');
const WAIT = { timeout: 10_000 };
let server;
let base;
let browser;
let certDir;
/** Every WebSocket URL a page opened. */
const sockets = [];

/** A self-signed certificate for 127.0.0.1: the server's --tls-* arguments. */
function selfSigned() {
  certDir = mkdtempSync(join(tmpdir(), 'chat-browser-tls-'));
  const [cert, key] = [join(certDir, 'cert.pem'), join(certDir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return ['--tls-cert', cert, '--tls-key', key];
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const tls = TLS ? selfSigned() : [];
  server = spawn(BIN, ['--dev', '--store', 'memory', '--listen', '127.0.0.1:0', '--log-format', 'json', ...tls], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in 20 s')), 20_000);
    server.on('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    createInterface({ input: server.stderr }).on('line', (line) => {
      try {
        const address = JSON.parse(line)?.fields?.address;
        if (address) { clearTimeout(timer); resolve(`${TLS ? 'https' : 'http'}://${address}`); }
      } catch { /* the dev-mode banner is not JSON */ }
    });
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(TLS ? ['--ignore-certificate-errors'] : [])],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

async function signIn(user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw e; });
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(base);
  await page.getByTestId('dev-user').fill(user);
  await page.getByTestId('signin').click();
  await page.getByTestId('me').filter({ hasText: user }).waitFor(WAIT);
  await page.locator('#conn-dot.online').waitFor(WAIT);
  return page;
}

const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png` });

test('two users become friends, chat in a room and directly, see typing and the read receipt', async () => {
  const alice = await signIn('alice');
  const bob = await signIn('bob');
  await shot(alice, '01-signed-in');

  // Friends: alice asks, bob accepts, both see each other online.
  await alice.getByTestId('friend-name').fill('bob');
  await alice.getByTestId('add-friend').click();
  const request = bob.locator('[data-testid=friend][data-user=alice][data-status=request_received]');
  await request.waitFor(WAIT);
  await shot(bob, '02-friend-request');
  await request.getByTestId('accept').click();
  await alice.locator('[data-testid=friend][data-user=bob][data-status=friends] .dot.online').waitFor(WAIT);
  await bob.locator('[data-testid=friend][data-user=alice][data-status=friends] .dot.online').waitFor(WAIT);
  await shot(alice, '03-friends');

  // A room: both join, alice types (bob sees it) and sends (bob receives it).
  for (const page of [alice, bob]) {
    await page.getByTestId('room-name').fill('lobby');
    await page.getByTestId('join-room').click();
    await page.getByTestId('chat-title').filter({ hasText: '# lobby' }).waitFor(WAIT);
  }
  await alice.getByTestId('body').type('hello ');
  await bob.getByTestId('typing').filter({ hasText: 'alice is typing' }).waitFor(WAIT);
  await shot(bob, '04-typing');
  await alice.getByTestId('body').type('room');
  await alice.getByTestId('send').click();
  await bob.getByTestId('message').filter({ hasText: 'hello room' }).waitFor(WAIT);
  await bob.getByTestId('typing').filter({ hasText: /^$/ }).waitFor(WAIT);
  await shot(bob, '05-room-message');

  // A direct message: bob sees it unread, opens it, alice sees it read.
  await alice.locator('[data-testid=friend][data-user=bob]').getByTestId('message-friend').click();
  await alice.getByTestId('chat-title').filter({ hasText: 'bob' }).waitFor(WAIT);
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

  // The page and its WebSockets used the scheme the server serves.
  assert.ok(alice.url().startsWith(base), alice.url());
  assert.ok(sockets.length >= 2, `the pages opened WebSockets: ${sockets}`);
  for (const url of sockets) {
    assert.ok(url.startsWith(TLS ? 'wss://' : 'ws://'), url);
  }
});
