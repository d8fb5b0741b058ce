// Shared by the tests: start the real chat-server, get dev tokens, a cutting TCP proxy.
import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
/** The chat-server binary: CHAT_SERVER_BIN, else the workspace's debug build. */
export const BIN = process.env.CHAT_SERVER_BIN
  ?? `${process.env.CARGO_TARGET_DIR ?? `${here}../../../target`}/debug/chat-server`;

/**
 * Starts chat-server in dev mode on a free loopback port (or `listen`). Resolves with
 * `{ base, address, proc, stop }` once it logged its address.
 */
export async function startServer({ store = 'memory', args = [], listen = '127.0.0.1:0' } = {}) {
  const proc = spawn(BIN, ['--dev', '--store', store, '--listen', listen, '--log-format', 'json', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in 20 s')), 20_000);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited with ${code}`)); });
    createInterface({ input: proc.stderr }).on('line', (line) => {
      try {
        const a = JSON.parse(line)?.fields?.address;
        if (a) { clearTimeout(timer); resolve(a); }
      } catch { /* the dev-mode banner is not JSON */ }
    });
  });
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    proc.once('exit', () => { clearTimeout(kill); resolve(); });
    proc.kill('SIGTERM');
  });
  return { base: `http://${address}`, address, port: Number(address.split(':').pop()), proc, stop };
}

/** A dev token for `user` from the server at `base` (POST /dev/token). */
export async function devToken(base, user) {
  const r = await fetch(`${base}/dev/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }),
  });
  if (!r.ok) throw new Error(`/dev/token answered ${r.status}`);
  return (await r.json()).token;
}

/**
 * A TCP proxy on a free loopback port to `target` (a port, changeable with `retarget`).
 * With `chaos` on, every connection is cut at a random moment 50–500 ms after it opened.
 */
export async function startProxy(targetPort) {
  let target = targetPort;
  const sockets = new Set();
  const stats = { connections: 0, cuts: 0 };
  const proxy = { chaos: false, stats };
  const server = createServer((down) => {
    stats.connections++;
    const up = connect(target, '127.0.0.1');
    sockets.add(down); sockets.add(up);
    const end = () => { clearTimeout(timer); down.destroy(); up.destroy(); sockets.delete(down); sockets.delete(up); };
    const timer = proxy.chaos
      ? setTimeout(() => { stats.cuts++; end(); }, 50 + Math.random() * 450)
      : undefined;
    down.on('error', end); up.on('error', end); down.on('close', end); up.on('close', end);
    down.pipe(up); up.pipe(down);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = server.address().port;
  proxy.retarget = (port) => { target = port; };
  proxy.close = () => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return proxy;
}

/** Waits until `check()` is truthy, polling every `every` ms; throws `message()` after `ms`. */
export async function until(check, ms, message, every = 20) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(typeof message === 'function' ? message() : message);
    await new Promise((r) => setTimeout(r, every));
  }
}
