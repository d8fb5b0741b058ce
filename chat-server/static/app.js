// The demo client: protocol v1 over one WebSocket. No framework, no build step.
'use strict';

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const S = {
  token: null, me: null, ws: null, hello: null, connectedOnce: false,
  nextId: 1, pending: new Map(),
  convs: new Map(),        // id -> { conv, unread, last, role }
  msgs: new Map(),         // id -> Map(seq -> message)
  held: new Map(),         // id -> highest seq up to which every message is held
  marks: new Map(),        // id -> Map(user -> { delivered_seq, read_seq })
  myRead: new Map(),       // id -> my read watermark
  friends: new Map(),      // user -> status
  online: new Set(),
  typing: new Map(),       // id -> Map(user -> timer)
  active: null, retry: 500, typingSent: 0, dev: false,
};

// ---------- connection ----------

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws?token=${encodeURIComponent(S.token)}`;
}

function setConn(state) {
  $('conn-dot').className = `dot ${state}`;
  $('conn-dot').title = state === 'online' ? 'connected' : state;
}

function connect() {
  setConn('connecting');
  const ws = new WebSocket(wsUrl());
  S.ws = ws;
  let greeted = false;
  ws.onmessage = (e) => {
    let frame;
    try { frame = JSON.parse(e.data); } catch { return; }
    if (frame.type === 'hello') { greeted = true; onHello(frame); return; }
    if (frame.type === 'reply' || frame.type === 'error') { settle(frame); return; }
    onEvent(frame);
  };
  ws.onclose = (e) => {
    for (const [, p] of S.pending) p.reject(new Error('disconnected'));
    S.pending.clear();
    if (S.ws !== ws) return;
    setConn('offline');
    if (!greeted && !S.connectedOnce) {
      showSignin('The server refused this token (wrong, expired, or for another server).');
      return;
    }
    const delay = S.retry;
    S.retry = Math.min(S.retry * 2, 10000);
    $('chat-error').textContent = `Connection lost (${e.code}${e.reason ? ': ' + e.reason : ''}); reconnecting…`;
    setTimeout(() => { if (S.ws === ws) connect(); }, delay);
  };
}

function request(cmd) {
  return new Promise((resolve, reject) => {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) { reject(new Error('not connected')); return; }
    const id = `r${S.nextId++}`;
    S.pending.set(id, { resolve, reject });
    S.ws.send(JSON.stringify({ id, ...cmd }));
  });
}

function settle(frame) {
  const p = S.pending.get(frame.id);
  if (!p) return;
  S.pending.delete(frame.id);
  if (frame.type === 'reply') p.resolve(frame.reply);
  else { const err = new Error(frame.message); err.code = frame.code; p.reject(err); }
}

async function onHello(hello) {
  S.hello = hello;
  S.me = hello.user;
  S.retry = 500;
  setConn('online');
  $('chat-error').textContent = '';
  $('me-name').textContent = hello.display_name ? `${hello.display_name} (${hello.user})` : hello.user;
  $('signin').hidden = true;
  $('app').hidden = false;
  try {
    if (S.connectedOnce) await resume();
    S.connectedOnce = true;
    await refreshAll();
  } catch (err) { showError(err); }
}

// After a reconnect: ask for what was missed, per conversation.
async function resume() {
  const points = [...S.held].map(([conversation, last_seq]) => ({ conversation, last_seq }));
  if (!points.length) return;
  const reply = await request({ type: 'resume', conversations: points });
  for (const r of reply.conversations) {
    if (r.outcome === 'replayed') r.messages.forEach(addMessage);
    else if (r.outcome === 'too_far_behind') { S.msgs.delete(r.conversation); S.held.delete(r.conversation); }
    else forgetConversation(r.conversation);
  }
  if (S.active) {
    if (!S.msgs.has(S.active)) await loadHistory(S.active);
    renderMessages();
    markRead();
  }
}

async function refreshAll() {
  const [list, friends, online, unread] = await Promise.all([
    request({ type: 'list_conversations', limit: 200 }),
    request({ type: 'list_friends' }),
    request({ type: 'online_friends' }),
    request({ type: 'unread_total' }),
  ]);
  for (const s of list.conversations) {
    S.convs.set(s.conversation.id, { conv: s.conversation, unread: s.unread, last: s.last_message, role: s.role });
    S.myRead.set(s.conversation.id, s.watermarks.read_seq);
  }
  S.friends = new Map(friends.friends.map((f) => [f.user, f.status]));
  S.online = new Set(online.users);
  $('unread-total').textContent = unread.unread;
  renderConversations();
  renderFriends();
}

// ---------- events ----------

function onEvent(ev) {
  switch (ev.type) {
    case 'message': {
      const m = ev.message;
      addMessage(m);
      const c = S.convs.get(m.conversation);
      if (!c) { refreshAll().catch(showError); break; }
      c.last = m;
      if (m.sender !== S.me) {
        if (m.conversation === S.active && document.visibilityState === 'visible') markRead();
        else { c.unread += 1; bumpUnread(1); markDelivered(m.conversation, m.seq); }
      }
      clearTyping(m.conversation, m.sender);
      renderConversations();
      if (m.conversation === S.active) renderMessages(true);
      break;
    }
    case 'message_edited':
    case 'message_deleted':
      addMessage(ev.message);
      if (ev.message.conversation === S.active) renderMessages();
      break;
    case 'receipt':
      setMarks(ev.conversation, ev.user, ev);
      if (ev.user === S.me) S.myRead.set(ev.conversation, ev.read_seq);
      if (ev.conversation === S.active) renderMessages();
      break;
    case 'typing':
      if (ev.typing) startTyping(ev.conversation, ev.user); else clearTyping(ev.conversation, ev.user);
      break;
    case 'member_joined':
    case 'member_left':
      setMarks(ev.conversation, ev.user, ev.type === 'member_joined' ? { delivered_seq: 0, read_seq: 0 } : null);
      if (ev.conversation === S.active) notice(`${ev.user} ${ev.type === 'member_joined' ? 'joined' : 'left'}`);
      break;
    case 'conversation_added':
      if (!S.convs.has(ev.conversation.id)) S.convs.set(ev.conversation.id, { conv: ev.conversation, unread: 0, last: null, role: 'member' });
      renderConversations();
      break;
    case 'conversation_removed':
      forgetConversation(ev.conversation);
      break;
    case 'presence':
      if (ev.online) S.online.add(ev.user); else S.online.delete(ev.user);
      renderFriends();
      renderHeader();
      break;
    case 'friend':
      if (ev.friend.status === 'none') S.friends.delete(ev.friend.user); else S.friends.set(ev.friend.user, ev.friend.status);
      renderFriends();
      break;
    default: break;
  }
}

function addMessage(m) {
  let map = S.msgs.get(m.conversation);
  if (!map) { map = new Map(); S.msgs.set(m.conversation, map); }
  map.set(m.seq, m);
  // Advance the contiguous watermark used for resume.
  let held = S.held.get(m.conversation) ?? 0;
  if (held === 0 && map.size && Math.min(...map.keys()) > 1) held = Math.min(...map.keys()) - 1;
  while (map.has(held + 1)) held += 1;
  S.held.set(m.conversation, held);
}

function setMarks(conv, user, marks) {
  let m = S.marks.get(conv);
  if (!m) { m = new Map(); S.marks.set(conv, m); }
  if (marks) m.set(user, { delivered_seq: marks.delivered_seq, read_seq: marks.read_seq });
  else m.delete(user);
}

function forgetConversation(id) {
  S.convs.delete(id); S.msgs.delete(id); S.held.delete(id); S.marks.delete(id);
  if (S.active === id) { S.active = null; renderMessages(); renderHeader(); }
  renderConversations();
}

function bumpUnread(n) {
  const e = $('unread-total');
  e.textContent = Math.max(0, Number(e.textContent) + n);
}

// ---------- typing ----------

function startTyping(conv, user) {
  clearTyping(conv, user);
  let m = S.typing.get(conv);
  if (!m) { m = new Map(); S.typing.set(conv, m); }
  const ttl = S.hello?.limits?.typing_ttl_ms ?? 5000;
  m.set(user, setTimeout(() => clearTyping(conv, user), ttl + 500));
  renderTyping();
}

function clearTyping(conv, user) {
  const m = S.typing.get(conv);
  if (m && m.has(user)) { clearTimeout(m.get(user)); m.delete(user); renderTyping(); }
}

function renderTyping() {
  const users = S.active ? [...(S.typing.get(S.active)?.keys() ?? [])] : [];
  $('typing').textContent = users.length ? `${users.join(', ')} ${users.length > 1 ? 'are' : 'is'} typing…` : '';
}

function onComposerInput() {
  if (!S.active) return;
  const ttl = S.hello?.limits?.typing_ttl_ms ?? 5000;
  const now = Date.now();
  if ($('body').value.trim() && now - S.typingSent > ttl / 2) {
    S.typingSent = now;
    request({ type: 'typing', conversation: S.active, typing: true }).catch(() => {});
  }
}

// ---------- conversations ----------

function titleOf(c) {
  if (!c) return 'No conversation';
  if (c.conv.kind === 'room') return `# ${c.conv.name}`;
  return c.conv.a === S.me ? c.conv.b : c.conv.a;
}

function peerOf(c) {
  if (!c || c.conv.kind !== 'direct') return null;
  return c.conv.a === S.me ? c.conv.b : c.conv.a;
}

async function openConversation(id) {
  S.active = id;
  $('body').disabled = false;
  $('send').disabled = false;
  renderConversations();
  renderHeader();
  renderTyping();
  if (!S.msgs.has(id) || !S.marks.has(id)) await loadHistory(id);
  renderMessages(true);
  markRead();
  $('body').focus();
}

async function loadHistory(id, before) {
  const reply = await request({ type: 'history', conversation: id, limit: 50, ...(before ? { before } : {}) });
  reply.messages.forEach((m) => addMessage(m));
  const marks = new Map();
  for (const mm of reply.members) marks.set(mm.user, { delivered_seq: mm.delivered_seq, read_seq: mm.read_seq });
  if (reply.members.length) S.marks.set(id, marks);
  const map = S.msgs.get(id);
  if (!map) S.msgs.set(id, new Map());
  $('older').hidden = !(reply.messages.length === 50 && Math.min(...reply.messages.map((m) => m.seq)) > 1);
}

async function loadOlder() {
  const map = S.msgs.get(S.active);
  if (!map || !map.size) return;
  const box = $('messages');
  const height = box.scrollHeight;
  await loadHistory(S.active, Math.min(...map.keys()));
  renderMessages();
  box.scrollTop = box.scrollHeight - height;
}

function markRead() {
  const id = S.active;
  const map = S.msgs.get(id);
  if (!id || !map || !map.size) return;
  const last = Math.max(...map.keys());
  if ((S.myRead.get(id) ?? 0) >= last) return;
  S.myRead.set(id, last);
  const c = S.convs.get(id);
  if (c && c.unread) { bumpUnread(-c.unread); c.unread = 0; renderConversations(); }
  request({ type: 'mark_read', conversation: id, seq: last }).catch(() => {});
}

const deliveredQueue = new Map();
function markDelivered(conv, seq) {
  const queued = deliveredQueue.get(conv) ?? 0;
  if (seq <= queued) return;
  const first = !deliveredQueue.has(conv);
  deliveredQueue.set(conv, seq);
  if (first) {
    setTimeout(() => {
      const s = deliveredQueue.get(conv);
      deliveredQueue.delete(conv);
      request({ type: 'mark_delivered', conversation: conv, seq: s }).catch(() => {});
    }, 50);
  }
}

// ---------- rendering ----------

function renderHeader() {
  const c = S.convs.get(S.active);
  $('chat-title').textContent = titleOf(c);
  const peer = peerOf(c);
  $('chat-sub').textContent = peer ? (S.online.has(peer) ? 'online' : 'offline') : '';
}

function renderConversations() {
  const ul = $('conversations');
  ul.replaceChildren();
  const items = [...S.convs.values()].sort((x, y) => {
    const tx = x.last ? x.last.created_at : x.conv.created_at;
    const ty = y.last ? y.last.created_at : y.conv.created_at;
    return ty.localeCompare(tx);
  });
  for (const c of items) {
    const li = el('li', `conv${c.conv.id === S.active ? ' active' : ''}`);
    li.dataset.testid = 'conversation';
    li.dataset.title = titleOf(c);
    li.append(el('span', 'name', titleOf(c)));
    if (c.unread > 0) { const b = el('span', 'badge', String(c.unread)); b.dataset.testid = 'unread'; li.append(b); }
    li.onclick = () => openConversation(c.conv.id).catch(showError);
    ul.append(li);
  }
}

function renderFriends() {
  const ul = $('friends');
  ul.replaceChildren();
  const labels = { friends: '', request_sent: 'request sent', request_received: 'wants to be friends', blocked: 'blocked' };
  for (const [user, status] of [...S.friends].sort()) {
    const li = el('li');
    li.dataset.testid = 'friend';
    li.dataset.user = user;
    li.dataset.status = status;
    const dot = el('span', `dot ${S.online.has(user) ? 'online' : 'offline'}`);
    dot.title = S.online.has(user) ? 'online' : 'offline';
    li.append(dot, el('span', 'name', user));
    if (labels[status]) li.append(el('span', 'muted small', labels[status]));
    const act = (label, type, testid, cls) => {
      const b = el('button', `small ${cls ?? ''}`, label);
      b.dataset.testid = testid;
      b.onclick = () => request({ type, user }).then((r) => {
        if (r.friend) { if (r.friend.status === 'none') S.friends.delete(user); else S.friends.set(user, r.friend.status); }
        renderFriends();
      }).catch(showError);
      li.append(b);
    };
    if (status === 'request_received') { act('Accept', 'friend_accept', 'accept'); act('Decline', 'friend_decline', 'decline', 'quiet'); }
    if (status === 'request_sent') act('Cancel', 'friend_cancel', 'cancel', 'quiet');
    if (status === 'blocked') act('Unblock', 'unblock', 'unblock', 'quiet');
    if (status === 'friends') {
      const b = el('button', 'small', 'Message');
      b.dataset.testid = 'message-friend';
      b.onclick = () => request({ type: 'open_direct', user }).then((r) => {
        S.convs.set(r.conversation.id, S.convs.get(r.conversation.id) ?? { conv: r.conversation, unread: 0, last: null, role: 'member' });
        return openConversation(r.conversation.id);
      }).catch(showError);
      li.append(b);
    }
    ul.append(li);
  }
}

function statusOf(m) {
  const marks = S.marks.get(m.conversation);
  if (!marks) return null;
  const others = [...marks].filter(([u]) => u !== m.sender).map(([, w]) => w);
  if (!others.length) return 'sent';
  if (others.every((w) => w.read_seq >= m.seq)) return 'read';
  if (others.every((w) => w.delivered_seq >= m.seq)) return 'delivered';
  return 'sent';
}

function renderMessages(scroll) {
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  [...box.querySelectorAll('.msg')].forEach((n) => n.remove());
  const map = S.msgs.get(S.active);
  if (!S.active || !map) { $('older').hidden = true; return; }
  for (const m of [...map.values()].sort((a, b) => a.seq - b.seq)) {
    const mine = m.sender === S.me;
    const div = el('div', `msg${mine ? ' mine' : ''}${m.kind === 'system' ? ' system' : ''}${m.deleted_at ? ' deleted' : ''}`);
    div.dataset.testid = 'message';
    div.dataset.seq = m.seq;
    const meta = el('div', 'meta');
    meta.append(el('span', 'sender', mine ? 'you' : m.sender));
    const time = new Date(m.created_at);
    meta.append(el('span', 'time', time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) + (m.edited_at ? ' · edited' : '')));
    div.append(meta, el('div', 'body', m.deleted_at ? 'message deleted' : m.body));
    if (mine && m.kind === 'user' && !m.deleted_at) {
      const st = statusOf(m);
      if (st) {
        const s = el('div', `meta status ${st}`, st === 'read' ? '✓✓ read' : st === 'delivered' ? '✓✓ delivered' : '✓ sent');
        s.dataset.testid = 'status';
        div.append(s);
      }
    }
    box.append(div);
  }
  if (scroll || atBottom) box.scrollTop = box.scrollHeight;
}

function notice(text) {
  const div = el('div', 'msg system', text);
  div.dataset.testid = 'notice';
  $('messages').append(div);
}

function showError(err) {
  $('chat-error').textContent = err.code ? `${err.message} (${err.code})` : String(err.message ?? err);
}

function showSignin(message) {
  S.ws = null;
  sessionStorage.removeItem('chat-token');
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message ?? '';
}

// ---------- wiring ----------

$('signin-form').onsubmit = async (e) => {
  e.preventDefault();
  $('signin-error').textContent = '';
  let token = $('token').value.trim();
  const devUser = $('dev-user').value.trim();
  if (!token && S.dev && devUser) {
    const r = await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: devUser }) });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { $('signin-error').textContent = body.message ?? `sign-in failed (${r.status})`; return; }
    token = body.token;
  }
  if (!token) { $('signin-error').textContent = S.dev ? 'Enter a user name or a token.' : 'Paste a token.'; return; }
  S.token = token;
  sessionStorage.setItem('chat-token', token);
  connect();
};

$('signout').onclick = () => { const ws = S.ws; S.ws = null; ws?.close(); location.reload(); showSignin(); };

$('room-form').onsubmit = async (e) => {
  e.preventDefault();
  const name = $('room-name').value.trim();
  if (!name) return;
  try {
    const r = await request({ type: 'join', room: name, create: true });
    S.convs.set(r.conversation.id, S.convs.get(r.conversation.id) ?? { conv: r.conversation, unread: 0, last: null, role: 'member' });
    $('room-name').value = '';
    await openConversation(r.conversation.id);
  } catch (err) { showError(err); }
};

$('friend-form').onsubmit = async (e) => {
  e.preventDefault();
  const user = $('friend-name').value.trim();
  if (!user) return;
  try {
    const r = await request({ type: 'friend_request', user });
    S.friends.set(user, r.friend.status);
    $('friend-name').value = '';
    renderFriends();
  } catch (err) { showError(err); }
};

$('composer').onsubmit = async (e) => {
  e.preventDefault();
  const body = $('body').value;
  if (!S.active || !body.trim()) return;
  const client_id = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
  $('body').value = '';
  S.typingSent = 0;
  try {
    const r = await request({ type: 'send', conversation: S.active, body, client_id });
    addMessage(r.message);
    const c = S.convs.get(S.active);
    if (c) c.last = r.message;
    renderMessages(true);
    renderConversations();
  } catch (err) { $('body').value = body; showError(err); }
};

$('body').addEventListener('input', onComposerInput);
$('body').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('composer').requestSubmit(); }
});
$('older').onclick = () => loadOlder().catch(showError);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') markRead(); });

(async () => {
  try {
    const cfg = await (await fetch('/config.json')).json();
    S.dev = !!cfg.dev;
  } catch { S.dev = false; }
  if (S.dev) {
    $('dev-label').hidden = false;
    $('signin-hint').textContent = 'Development mode: sign in with any user name, or paste a token.';
  }
  const saved = sessionStorage.getItem('chat-token');
  if (saved) { S.token = saved; connect(); }
})();
