// The README's example. Against a chat-server started with --dev (which hands out
// tokens at POST /dev/token): node examples/basic.mjs [http://127.0.0.1:8080]
import WebSocket from 'ws';
import { ChatClient } from '../dist/index.js';

const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const getToken = async () => {
  const r = await fetch(`${base}/dev/token`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice' }),
  });
  return (await r.json()).token;
};

const chat = new ChatClient({ url: `${base.replace(/^http/, 'ws')}/ws`, token: getToken, WebSocket });
chat.on('message', ({ message }) => console.log(`${message.sender}: ${message.body}`));
await chat.connect();
const { conversation } = await chat.join('lobby', { create: true });
await chat.send(conversation.id, 'hello from the example');
const { messages } = await chat.history(conversation.id, { limit: 5 });
console.log(`history holds ${messages.length} message(s)`);
chat.close();
