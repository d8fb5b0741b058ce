// The demo page: protocol v1 through the TypeScript client (./chat-client.js, built from
// clients/typescript by scripts/build-web.sh). The client keeps the connection: it
// reconnects with backoff and jitter, resumes every conversation, fills gaps, retries
// sends with their client_id and delivers each message once, in seq order. This file
// only draws what the client reports. No framework, no build step of its own.
import { ChatClient } from './chat-client.js';

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const HISTORY_PAGE = 50;

const S = {
  client: null, token: null, me: null, dev: false, everConnected: false,
  convs: new Map(),        // id -> { conv, unread, last, lastSeq }
  msgs: new Map(),         // id -> Map(seq -> message)
  loaded: new Set(),       // ids whose newest history page was loaded
  pending: new Map(),      // id -> Map(client_id -> { body, at }): sends not yet acknowledged
  notices: new Map(),      // id -> [{ after, text }]: join/leave notices, placed after seq `after`
  marks: new Map(),        // id -> Map(user -> { delivered_seq, read_seq })
  members: new Map(),      // id -> Map(user -> role)
  myRead: new Map(),       // id -> my read watermark
  friends: new Map(),      // user -> status
  online: new Set(),       // users known to be online
  heard: new Set(),        // users whose presence was told since connecting (besides friends)
  typing: new Map(),       // id -> Map(user -> timer)
  through: new Map(),      // id -> Map(seq -> the seq up to which that root's reply_count counts replies)
  replyTo: null,           // the message the composer replies to: { conversation, seq }
  active: null, typingSent: 0, reconnectAt: 0, reconnectTicker: null,
};

// ---------- the room-name rule (docs/protocol.md §3 Rooms; chat-core validate_room_name) ----------

const ROOM_NAME_MAX_BYTES = 64;
// Rust's char::is_alphanumeric: the Alphabetic property or a Numeric category (Nd, Nl, No).
const ROOM_NAME_CHARS = /^[\p{Alphabetic}\p{N} \-_.#]*$/u;
// What uuid::Uuid::parse_str takes without characters a name cannot hold: 32 hex digits,
// or the hyphenated form. Such a string is an id, never a name.
const ID_SHAPE = /^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

/** What is wrong with a room name, in chat-core's words, or null when it is valid. */
function roomNameProblem(name) {
  const bytes = new TextEncoder().encode(name).length;
  if (bytes < 1 || bytes > ROOM_NAME_MAX_BYTES) return `a room name has 1 to ${ROOM_NAME_MAX_BYTES} bytes`;
  // Rust's str::trim: White_Space at either end.
  if (/^\p{White_Space}|\p{White_Space}$/u.test(name)) return 'a room name has no leading or trailing spaces';
  if (!ROOM_NAME_CHARS.test(name)) return 'a room name holds letters, digits, spaces and - _ . # only';
  return null;
}

const ROOM_HINT = $('room-hint').innerHTML;
function checkRoomInput() {
  const value = $('room-name').value;
  const problem = value === '' || ID_SHAPE.test(value) ? null : roomNameProblem(value);
  $('room-name').setAttribute('aria-invalid', problem ? 'true' : 'false');
  $('room-hint').classList.toggle('bad', !!problem);
  if (problem) $('room-hint').textContent = `${problem}.`;
  else $('room-hint').innerHTML = ROOM_HINT;
  return problem;
}

// ---------- connection ----------

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws`;
}

function setConn(state, text) {
  $('conn-dot').className = `dot ${state}`;
  $('conn-dot').title = text;
  const line = $('conn-state');
  line.className = `conn small ${state}`;
  line.dataset.state = S.client?.state ?? 'idle';
  line.textContent = text;
}

function stopTicker() {
  clearInterval(S.reconnectTicker);
  S.reconnectTicker = null;
}

function start(token) {
  S.token = token;
  S.everConnected = false;
  const client = new ChatClient({ url: wsUrl(), token: () => S.token });
  S.client = client;
  client.on('state', ({ state }) => {
    if (state !== 'reconnecting') stopTicker();
    if (S.pending.get(S.active)?.size) renderMessages();
    renderMembers();
    if (state === 'connecting') setConn('connecting', S.everConnected ? 'Reconnecting…' : 'Connecting…');
    else if (state === 'open') setConn('connecting', 'Catching up…');
    else if (state === 'closed') setConn('offline', 'Disconnected.');
  });
  client.on('disconnected', ({ code, reason, reconnectInMs }) => {
    if (!S.everConnected) {
      // The first connection failed: most likely the token was refused (a browser does
      // not show the 401), or the server is not there. Back to the sign-in form.
      showSignin('Could not connect with this token (wrong, expired, for another server, or the server is down).');
      return;
    }
    if (reconnectInMs === null) return;
    const why = `${code}${reason ? ` ${reason}` : ''}`;
    S.reconnectAt = Date.now() + reconnectInMs;
    const tick = () => {
      const left = Math.max(0, S.reconnectAt - Date.now());
      setConn('offline', `Connection lost (${why}); reconnecting in ${(left / 1000).toFixed(1)} s…`);
    };
    stopTicker();
    tick();
    S.reconnectTicker = setInterval(tick, 200);
  });
  client.on('kicked', ({ reason }) => showSignin(`Signed out by the server${reason ? ` (${reason})` : ''}.`));
  client.on('connected', ({ hello, reconnected }) => onConnected(hello, reconnected));
  client.on('message', ({ message }) => onMessage(message));
  client.on('message_edited', ({ message }) => onChanged(message));
  client.on('message_deleted', ({ message }) => onChanged(message));
  client.on('receipt', onReceipt);
  client.on('typing', (ev) => (ev.typing ? startTyping(ev.conversation, ev.user) : clearTyping(ev.conversation, ev.user)));
  client.on('member_joined', (ev) => onMembership(ev, true));
  client.on('member_left', (ev) => onMembership(ev, false));
  client.on('conversation_added', ({ conversation }) => {
    if (!S.convs.has(conversation.id)) S.convs.set(conversation.id, summary(conversation));
    renderConversations();
  });
  client.on('conversation_removed', ({ conversation }) => forgetConversation(conversation));
  client.on('presence', ({ user, online }) => {
    S.heard.add(user);
    if (online) S.online.add(user); else S.online.delete(user);
    renderFriends();
    renderHeader();
    renderMembers();
  });
  client.on('friend', ({ friend }) => setFriend(friend));
  client.on('gap_skipped', ({ conversation }) => {
    // Too far behind to resume: the newest page replaces what was held.
    S.msgs.delete(conversation);
    S.loaded.delete(conversation);
    if (conversation === S.active) loadHistory(conversation).then(() => renderMessages(true)).catch(showError);
  });
  client.on('error', ({ context, error }) => {
    if (context !== 'listener') return;
    console.error(error);
    showError(error);
  });
  setConn('connecting', 'Connecting…');
  client.connect().catch(() => { /* closed before connecting: the sign-in form says why */ });
}

async function onConnected(hello, reconnected) {
  S.everConnected = true;
  S.me = hello.user;
  setConn('online', 'Connected.');
  $('me-name').textContent = hello.display_name ? `${hello.display_name} (${hello.user})` : hello.user;
  $('signin').hidden = true;
  $('app').hidden = false;
  // Presence told on an earlier connection may be stale now.
  S.heard = new Set();
  S.online = new Set();
  try {
    await refreshAll();
    if (reconnected && S.active) {
      // Messages missed while away came back as message events; edits, deletions,
      // receipts and members did not: read the open conversation again.
      await loadHistory(S.active);
      if (isRoom(S.active)) await loadMembers(S.active);
      renderMessages();
      markRead();
    }
  } catch (err) { showError(err); }
}

function summary(conv, extra = {}) {
  return { conv, unread: 0, last: null, lastSeq: conv.last_seq ?? 0, ...extra };
}

async function refreshAll() {
  const c = S.client;
  const [list, friends, online, unread] = await Promise.all([
    c.listConversations({ limit: c.limits?.max_list_page ?? 200 }),
    c.listFriends(),
    c.onlineFriends(),
    c.unreadTotal(),
  ]);
  const seen = new Set();
  for (const s of list.conversations) {
    seen.add(s.conversation.id);
    S.convs.set(s.conversation.id, summary(s.conversation, {
      unread: s.unread, last: s.last_message, lastSeq: s.conversation.last_seq,
    }));
    S.myRead.set(s.conversation.id, s.watermarks.read_seq);
  }
  S.friends = new Map(friends.friends.map((f) => [f.user, f.status]));
  // Friends' presence as it is now; co-members' as their presence events told it.
  for (const f of friends.friends) S.online.delete(f.user);
  for (const u of online.users) S.online.add(u);
  $('unread-total').textContent = unread.unread;
  renderConversations();
  renderFriends();
  renderHeader();
  renderMembers();
}

// ---------- events ----------

function onMessage(m) {
  const held = S.msgs.get(m.conversation);
  const isNew = !held?.has(m.seq);
  addMessage(m);
  if (isNew) {
    // A new message counts no replies yet; a reply counts in its root's reply_count (the
    // server does not push the count again).
    const through = throughOf(m.conversation);
    if (!through.has(m.seq)) through.set(m.seq, m.seq);
    if (m.thread) countReply(m.conversation, m.thread, m.seq, 1);
  }
  if (m.client_id) S.pending.get(m.conversation)?.delete(m.client_id);
  let c = S.convs.get(m.conversation);
  if (!c) {
    refreshAll().catch(showError);
    return;
  }
  if (!c.last || m.seq >= c.last.seq) c.last = m;
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  if (isNew && m.sender !== S.me) {
    if (m.conversation === S.active && document.visibilityState === 'visible') markRead();
    else if (m.seq > (S.myRead.get(m.conversation) ?? 0)) { c.unread += 1; bumpUnread(1); }
  }
  clearTyping(m.conversation, m.sender);
  renderConversations();
  if (m.conversation === S.active) renderMessages(true);
}

function onChanged(m) {
  const held = S.msgs.get(m.conversation);
  const before = held?.get(m.seq);
  if (before) {
    // The page keeps the reply count up to date itself: keep it over the event's.
    if (before.reply_count !== undefined) m.reply_count = before.reply_count;
    else delete m.reply_count;
    held.set(m.seq, m);
    // A deleted reply stays in its thread but no longer counts.
    if (m.deleted_at && !before.deleted_at && m.thread) countReply(m.conversation, m.thread, m.seq, -1);
  }
  if (S.replyTo?.conversation === m.conversation && S.replyTo.seq === m.seq && m.deleted_at) setReplyTo(null);
  const c = S.convs.get(m.conversation);
  if (c?.last?.seq === m.seq) { c.last = m; renderConversations(); }
  if (m.conversation === S.active) renderMessages();
}

function onReceipt(ev) {
  setMarks(ev.conversation, ev.user, ev);
  if (ev.user === S.me) S.myRead.set(ev.conversation, ev.read_seq);
  if (ev.conversation === S.active) renderMessages();
}

function onMembership(ev, joined) {
  setMarks(ev.conversation, ev.user, joined ? { delivered_seq: 0, read_seq: 0 } : null);
  const members = S.members.get(ev.conversation);
  if (members) { if (joined) members.set(ev.user, ev.role); else members.delete(ev.user); }
  // The notice stays in the timeline, after the newest message known now.
  const c = S.convs.get(ev.conversation);
  const after = Math.max(c?.lastSeq ?? 0, ...(S.msgs.get(ev.conversation)?.keys() ?? []));
  let list = S.notices.get(ev.conversation);
  if (!list) S.notices.set(ev.conversation, (list = []));
  list.push({ after, text: `${ev.user} ${joined ? 'joined' : 'left'}` });
  if (ev.conversation === S.active) { renderMessages(true); renderMembers(); }
}

function throughOf(conv) {
  let t = S.through.get(conv);
  if (!t) { t = new Map(); S.through.set(conv, t); }
  return t;
}

/** Adds `delta` to the reply count of the held root `root` for the reply at `seq`, once. */
function countReply(conv, root, seq, delta) {
  const r = S.msgs.get(conv)?.get(root);
  if (!r) return; // not loaded: its count is read with it
  const through = throughOf(conv);
  const counted = through.get(root) ?? root;
  if (delta > 0) {
    if (seq <= counted) return; // already in the count the server gave
    through.set(root, seq);
  } else if (seq > counted) {
    return; // never counted
  }
  const n = Math.max(0, (r.reply_count ?? 0) + delta);
  if (n) r.reply_count = n; else delete r.reply_count;
}

function addMessage(m) {
  let map = S.msgs.get(m.conversation);
  if (!map) { map = new Map(); S.msgs.set(m.conversation, map); }
  map.set(m.seq, m);
}

function setMarks(conv, user, marks) {
  let m = S.marks.get(conv);
  if (!m) { m = new Map(); S.marks.set(conv, m); }
  if (marks) m.set(user, { delivered_seq: marks.delivered_seq, read_seq: marks.read_seq });
  else m.delete(user);
}

function setFriend(friend) {
  if (friend.status === 'none') S.friends.delete(friend.user); else S.friends.set(friend.user, friend.status);
  renderFriends();
}

function forgetConversation(id) {
  for (const map of [S.convs, S.msgs, S.marks, S.members, S.notices, S.pending, S.myRead, S.through]) map.delete(id);
  S.loaded.delete(id);
  if (S.active === id) closeConversation();
  renderConversations();
}

function bumpUnread(n) {
  const e = $('unread-total');
  e.textContent = Math.max(0, Number(e.textContent) + n);
}

// ---------- typing ----------

function typingTtl() { return S.client?.limits?.typing_ttl_ms ?? 5000; }

function startTyping(conv, user) {
  clearTyping(conv, user);
  let m = S.typing.get(conv);
  if (!m) { m = new Map(); S.typing.set(conv, m); }
  m.set(user, setTimeout(() => clearTyping(conv, user), typingTtl() + 500));
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
  if (!S.active || S.client?.state !== 'open') return;
  const now = Date.now();
  if ($('body').value.trim() && now - S.typingSent > typingTtl() / 2) {
    S.typingSent = now;
    S.client.typing(S.active, true).catch(() => {});
  }
}

// ---------- conversations ----------

function isRoom(id) { return S.convs.get(id)?.conv.kind === 'room'; }

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
  if (S.active !== id) setReplyTo(null);
  S.active = id;
  $('app').classList.add('show-chat');
  $('body').disabled = false;
  $('send').disabled = false;
  renderConversations();
  renderHeader();
  renderTyping();
  renderMessages(true);
  renderMembers();
  const loads = [];
  if (!S.loaded.has(id)) loads.push(loadHistory(id));
  if (isRoom(id) && !S.members.has(id)) loads.push(loadMembers(id));
  await Promise.all(loads);
  if (S.active !== id) return;
  renderMessages(true);
  renderMembers();
  markRead();
  if (matchMedia('(min-width: 701px)').matches) $('body').focus();
}

function closeConversation() {
  setReplyTo(null);
  S.active = null;
  $('app').classList.remove('show-chat');
  $('body').disabled = true;
  $('send').disabled = true;
  renderConversations();
  renderHeader();
  renderTyping();
  renderMessages();
  renderMembers();
}

async function loadHistory(id, before) {
  const reply = await S.client.history(id, { limit: HISTORY_PAGE, ...(before ? { before } : {}) });
  if (!S.msgs.has(id)) S.msgs.set(id, new Map());
  reply.messages.forEach(addMessage);
  // Each message's reply_count counts the replies up to the page's last_seq.
  const through = throughOf(id);
  for (const m of reply.messages) through.set(m.seq, reply.last_seq);
  if (reply.members.length) {
    S.marks.set(id, new Map(reply.members.map((m) => [m.user, { delivered_seq: m.delivered_seq, read_seq: m.read_seq }])));
  }
  const c = S.convs.get(id);
  if (c) c.lastSeq = Math.max(c.lastSeq, reply.last_seq);
  if (!before) S.loaded.add(id);
}

async function loadMembers(id) {
  const all = new Map();
  const limit = S.client.limits?.max_list_page ?? 200;
  let after;
  // A room may be large: read pages until a short one (at most 10 pages here).
  for (let page = 0; page < 10; page++) {
    const reply = await S.client.members(id, { limit, ...(after ? { after } : {}) });
    for (const m of reply.members) all.set(m.user, m.role);
    if (reply.members.length < limit) break;
    after = reply.members[reply.members.length - 1].user;
  }
  S.members.set(id, all);
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
  if (!id || !map || !map.size || document.visibilityState !== 'visible') return;
  const last = Math.max(...map.keys());
  if ((S.myRead.get(id) ?? 0) >= last) return;
  S.myRead.set(id, last);
  const c = S.convs.get(id);
  if (c && c.unread) { bumpUnread(-c.unread); c.unread = 0; renderConversations(); }
  S.client?.markRead(id, last).catch(() => {});
}

// ---------- rendering ----------

function shortTime(iso) {
  const t = new Date(iso);
  const now = new Date();
  if (t.toDateString() === now.toDateString()) return t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const opts = t.getFullYear() === now.getFullYear() ? { day: 'numeric', month: 'short' } : { dateStyle: 'short' };
  return t.toLocaleDateString([], opts);
}

function renderHeader() {
  const c = S.convs.get(S.active);
  $('chat-title').textContent = titleOf(c);
  const peer = peerOf(c);
  $('chat-sub').textContent = peer ? (S.online.has(peer) ? 'online' : 'offline') : '';
  $('leave').hidden = !(c && c.conv.kind === 'room');
}

// Whether a user is online: 'online', 'offline', or 'unknown'. The server tells friends'
// presence (online_friends, then presence events) but a co-member's only when it changes:
// one who is not a friend and was online before this connection stays unknown.
function presenceOf(user) {
  if (user === S.me) return S.client?.state === 'open' ? 'online' : 'offline';
  if (S.online.has(user)) return 'online';
  return S.friends.get(user) === 'friends' || S.heard.has(user) ? 'offline' : 'unknown';
}

const PRESENCE_TITLE = {
  online: 'online',
  offline: 'offline',
  unknown: 'not known: not a friend, and has not come or gone since you connected',
};

function renderMembers() {
  const panel = $('members-panel');
  const members = S.active && isRoom(S.active) ? S.members.get(S.active) : null;
  panel.hidden = !members;
  if (!members) return;
  // Past presence_room_limit co-members get no presence: show no online state then.
  const live = members.size <= (S.client?.limits?.presence_room_limit ?? Infinity);
  const rank = { online: 0, offline: 1, unknown: 2 };
  const users = [...members.keys()].map((user) => ({ user, presence: presenceOf(user) }))
    .sort((a, b) => (rank[a.presence] - rank[b.presence]) || a.user.localeCompare(b.user));
  const count = (p) => users.filter((u) => u.presence === p).length;
  let summary = `${members.size} member${members.size === 1 ? '' : 's'}`;
  if (live) summary += ` · ${count('online')} online${count('unknown') ? ` · ${count('unknown')} unknown` : ''}`;
  $('members-summary').textContent = summary;
  const ul = $('members');
  ul.replaceChildren();
  for (const { user, presence } of users) {
    const li = el('li');
    li.dataset.testid = 'member';
    li.dataset.user = user;
    if (live) {
      li.dataset.online = presence === 'unknown' ? 'unknown' : String(presence === 'online');
      const dot = el('span', `dot ${presence}`);
      dot.title = PRESENCE_TITLE[presence];
      li.append(dot);
    }
    li.append(el('span', 'name', user === S.me ? `${user} (you)` : user));
    if (members.get(user) === 'owner') li.append(el('span', 'muted small', 'owner'));
    ul.append(li);
  }
}

function lastLine(c) {
  const m = c.last;
  if (!m) return 'No messages yet';
  const who = m.kind === 'system' ? '' : `${m.sender === S.me ? 'you' : m.sender}: `;
  if (m.deleted_at) return `${who}message deleted`;
  const files = m.attachments?.length ? `📎 ${m.attachments.length === 1 ? m.attachments[0].name : `${m.attachments.length} files`}` : '';
  return who + ([files, m.body.replace(/\s+/g, ' ')].filter(Boolean).join(' '));
}

function renderConversations() {
  const ul = $('conversations');
  ul.replaceChildren();
  const items = [...S.convs.values()].sort((x, y) => {
    const tx = x.last ? x.last.created_at : x.conv.created_at;
    const ty = y.last ? y.last.created_at : y.conv.created_at;
    return ty.localeCompare(tx);
  });
  $('conversations-empty').hidden = items.length > 0;
  for (const c of items) {
    const li = el('li', `conv${c.conv.id === S.active ? ' active' : ''}`);
    li.dataset.testid = 'conversation';
    li.dataset.title = titleOf(c);
    li.append(el('span', 'name', titleOf(c)));
    const when = el('time', 'when', c.last ? shortTime(c.last.created_at) : '');
    when.dataset.testid = 'when';
    if (c.last) { when.dateTime = c.last.created_at; when.title = new Date(c.last.created_at).toLocaleString(); }
    li.append(when);
    const last = el('span', `last${c.last ? '' : ' none'}`, lastLine(c));
    last.dataset.testid = 'last';
    li.append(last);
    if (c.unread > 0) { const b = el('span', 'badge', String(c.unread)); b.dataset.testid = 'unread'; li.append(b); }
    li.onclick = () => openConversation(c.conv.id).catch(showError);
    ul.append(li);
  }
}

function renderFriends() {
  const ul = $('friends');
  ul.replaceChildren();
  const labels = { friends: '', request_sent: 'request sent', request_received: 'wants to be friends', blocked: 'blocked' };
  $('friends-empty').hidden = S.friends.size > 0;
  for (const [user, status] of [...S.friends].sort()) {
    const li = el('li', 'friend');
    li.dataset.testid = 'friend';
    li.dataset.user = user;
    li.dataset.status = status;
    const dot = el('span', `dot ${S.online.has(user) ? 'online' : 'offline'}`);
    dot.title = S.online.has(user) ? 'online' : 'offline';
    const name = el('span', 'name', user);
    name.title = user;
    li.append(dot, name);
    if (labels[status]) li.append(el('span', 'what muted small', labels[status]));
    const actions = el('span', 'actions');
    const act = (label, run, testid, cls) => {
      const b = el('button', `small ${cls ?? ''}`, label);
      b.dataset.testid = testid;
      b.onclick = () => run(user).then((r) => setFriend(r.friend)).catch(showError);
      actions.append(b);
    };
    const c = S.client;
    if (status === 'request_received') {
      act('Accept', (u) => c.friendAccept(u), 'accept');
      act('Decline', (u) => c.friendDecline(u), 'decline', 'quiet');
    }
    if (status === 'request_sent') act('Cancel', (u) => c.friendCancel(u), 'cancel', 'quiet');
    if (status === 'blocked') act('Unblock', (u) => c.unblock(u), 'unblock', 'quiet');
    if (status === 'friends') {
      const b = el('button', 'small', 'Message');
      b.dataset.testid = 'message-friend';
      b.onclick = () => c.openDirect(user).then((r) => {
        if (!S.convs.has(r.conversation.id)) S.convs.set(r.conversation.id, summary(r.conversation));
        return openConversation(r.conversation.id);
      }).catch(showError);
      actions.append(b);
    }
    if (actions.childElementCount) li.append(actions);
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

function messageDiv(m) {
  const mine = m.sender === S.me;
  const div = el('div', `msg${mine ? ' mine' : ''}${m.kind === 'system' ? ' system' : ''}${m.deleted_at ? ' deleted' : ''}`);
  div.dataset.testid = 'message';
  div.dataset.seq = m.seq;
  const meta = el('div', 'meta');
  meta.append(el('span', 'sender', mine ? 'you' : m.sender));
  const time = new Date(m.created_at);
  meta.append(el('span', 'time', time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) + (m.edited_at ? ' · edited' : '')));
  if (!m.deleted_at) {
    const reply = el('button', 'link small reply', 'Reply');
    reply.type = 'button';
    reply.dataset.testid = 'reply';
    reply.title = 'Reply to this message';
    reply.onclick = () => setReplyTo({ conversation: m.conversation, seq: m.seq });
    meta.append(reply);
  }
  div.append(meta);
  if (m.reply_to) {
    div.dataset.replyTo = m.reply_to;
    div.append(quoteOf(m.conversation, m.reply_to));
  }
  div.append(el('div', 'body', m.deleted_at ? 'message deleted' : m.body));
  if (m.attachments?.length) div.append(attachmentList(m.attachments));
  if (m.reply_count) {
    const n = el('div', 'meta replies', `${m.reply_count} ${m.reply_count === 1 ? 'reply' : 'replies'}`);
    n.dataset.testid = 'reply-count';
    n.dataset.count = m.reply_count;
    div.append(n);
  }
  if (mine && m.kind === 'user' && !m.deleted_at) {
    const st = statusOf(m);
    if (st) {
      const s = el('div', `meta status ${st}`, st === 'read' ? '✓✓ read' : st === 'delivered' ? '✓✓ delivered' : '✓ sent');
      s.dataset.testid = 'status';
      div.append(s);
    }
  }
  return div;
}

/** "512 B", "47.1 KB", "1.0 MB". */
function formatSize(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Who wrote the message at `seq` and how it starts, when the page holds it. */
function excerptOf(conv, seq) {
  const p = S.msgs.get(conv)?.get(seq);
  if (!p) return '';
  const who = p.sender === S.me ? 'you' : p.sender;
  if (p.deleted_at) return `${who}: message deleted`;
  const text = p.body.replace(/\s+/g, ' ') || (p.attachments?.length ? `📎 ${p.attachments[0].name}` : '');
  return `${who}: ${text.length > 60 ? `${text.slice(0, 60)}…` : text}`;
}

/** The "↪ replying to #seq" line of a reply; a click shows the message replied to. */
function quoteOf(conv, seq) {
  const excerpt = excerptOf(conv, seq);
  const q = el('div', 'quote small', `↪ replying to #${seq}${excerpt ? ` · ${excerpt}` : ''}`);
  q.dataset.testid = 'reply-to';
  q.title = 'Show the message replied to';
  q.onclick = () => $('messages').querySelector(`.msg[data-seq="${seq}"]`)?.scrollIntoView({ block: 'center', behavior: 'smooth' });
  return q;
}

/** Attachments as links: name and size. */
function attachmentList(attachments) {
  const ul = el('ul', 'attachments');
  for (const a of attachments) {
    const li = el('li');
    li.dataset.testid = 'attachment';
    // The server takes only absolute http(s) URLs; anything else is shown, not linked.
    const link = /^https?:\/\//i.test(a.url) ? el('a', 'name', a.name) : el('span', 'name', a.name);
    if (link.tagName === 'A') { link.href = a.url; link.target = '_blank'; link.rel = 'noopener noreferrer'; }
    link.title = a.mime_type;
    li.append('📎 ', link, el('span', 'muted small size', ` ${formatSize(a.size)}`));
    ul.append(li);
  }
  return ul;
}

/** Sets (or, with null, clears) the message the composer replies to. */
function setReplyTo(target) {
  S.replyTo = target;
  const bar = $('reply-bar');
  bar.hidden = !target;
  if (!target) return;
  const excerpt = excerptOf(target.conversation, target.seq);
  $('reply-text').textContent = `↪ Replying to #${target.seq}${excerpt ? ` · ${excerpt}` : ''}`;
  $('body').focus();
}

function renderMessages(scroll) {
  const box = $('messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  [...box.querySelectorAll('.msg')].forEach((n) => n.remove());
  const empty = $('messages-empty');
  if (!S.active) {
    $('older').hidden = true;
    empty.hidden = false;
    empty.textContent = S.convs.size
      ? 'Pick a conversation, join a room, or message a friend.'
      : 'No conversations yet: join a room, or add a friend and message them.';
    return;
  }
  const map = S.msgs.get(S.active) ?? new Map();
  const pending = [...(S.pending.get(S.active)?.entries() ?? [])];
  const items = [...map.values()].map((m) => ({ at: m.seq, node: () => messageDiv(m) }));
  for (const n of S.notices.get(S.active) ?? []) {
    items.push({ at: n.after + 0.5, node: () => { const d = el('div', 'msg notice', n.text); d.dataset.testid = 'notice'; return d; } });
  }
  items.sort((a, b) => a.at - b.at);
  for (const item of items) box.append(item.node());
  for (const [clientId, p] of pending) {
    const div = el('div', 'msg mine pending');
    div.dataset.testid = 'message';
    div.dataset.pending = clientId;
    const meta = el('div', 'meta');
    meta.append(el('span', 'sender', 'you'));
    div.append(meta);
    if (p.replyTo) div.append(quoteOf(S.active, p.replyTo));
    div.append(el('div', 'body', p.body));
    const s = el('div', 'meta status', S.client?.state === 'open' ? 'sending…' : 'waiting for the connection…');
    s.dataset.testid = 'status';
    div.append(s);
    box.append(div);
  }
  const loading = !S.loaded.has(S.active);
  empty.hidden = map.size > 0 || pending.length > 0 || loading;
  empty.textContent = 'No messages yet. Write the first one below.';
  $('older').hidden = !(map.size && Math.min(...map.keys()) > 1);
  if (scroll || atBottom) box.scrollTop = box.scrollHeight;
}

function showError(err) {
  const e = $('chat-error');
  if (!err) { e.textContent = ''; return; }
  e.textContent = err.code ? `${err.message} (${err.code})` : String(err.message ?? err);
}

function showSignin(message) {
  stopTicker();
  const client = S.client;
  S.client = null;
  client?.close();
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
  sessionStorage.setItem('chat-token', token);
  start(token);
};

$('signout').onclick = () => { showSignin(); location.reload(); };
$('back').onclick = () => closeConversation();

$('room-name').addEventListener('input', checkRoomInput);
$('room-form').onsubmit = async (e) => {
  e.preventDefault();
  const name = $('room-name').value;
  if (!name || checkRoomInput()) { $('room-name').focus(); return; }
  try {
    // A room id (a UUID) joins that room; anything else is a name, created when new.
    const r = await S.client.join(name, { create: !ID_SHAPE.test(name) });
    if (!S.convs.has(r.conversation.id)) S.convs.set(r.conversation.id, summary(r.conversation));
    $('room-name').value = '';
    checkRoomInput();
    await openConversation(r.conversation.id);
  } catch (err) { showError(err); }
};

$('leave').onclick = async () => {
  const id = S.active;
  if (!id) return;
  try {
    await S.client.leave(id);
    forgetConversation(id);
  } catch (err) { showError(err); }
};

$('friend-form').onsubmit = async (e) => {
  e.preventDefault();
  const user = $('friend-name').value.trim();
  if (!user) return;
  try {
    const r = await S.client.friendRequest(user);
    setFriend(r.friend);
    $('friend-name').value = '';
  } catch (err) { showError(err); }
};

$('composer').onsubmit = (e) => {
  e.preventDefault();
  const id = S.active;
  const body = $('body').value;
  if (!id || !body.trim()) return;
  // The client retries the send with this client_id until it is stored, across
  // reconnects; meanwhile the message shows as pending.
  const clientId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  let pending = S.pending.get(id);
  if (!pending) S.pending.set(id, (pending = new Map()));
  const replyTo = S.replyTo?.conversation === id ? S.replyTo.seq : undefined;
  pending.set(clientId, { body, replyTo });
  $('body').value = '';
  setReplyTo(null);
  S.typingSent = 0;
  renderMessages(true);
  S.client.send(id, body, { clientId, replyTo }).then(
    () => { S.pending.get(id)?.delete(clientId); if (id === S.active) renderMessages(); },
    (err) => {
      S.pending.get(id)?.delete(clientId);
      if (id === S.active) {
        renderMessages();
        if (!$('body').value) {
          $('body').value = body;
          // Refused (e.g. the message replied to was deleted: not_found): offer it again.
          if (replyTo && !S.replyTo && err?.code !== 'not_found') setReplyTo({ conversation: id, seq: replyTo });
        }
      }
      showError(err);
    },
  );
};

$('body').addEventListener('input', onComposerInput);
$('body').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('composer').requestSubmit(); }
  if (e.key === 'Escape' && S.replyTo) { e.preventDefault(); setReplyTo(null); }
});
$('older').onclick = () => loadOlder().catch(showError);
$('reply-cancel').onclick = () => { setReplyTo(null); $('body').focus(); };
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
  renderMessages();
  const saved = sessionStorage.getItem('chat-token');
  if (saved) start(saved);
})();
