/**
 * `@chat-engine/client`: a client for the chat engine's protocol v1 (JSON over
 * WebSocket, `docs/protocol.md`), with the protocol's client loop built in.
 *
 * - one async method per command, resolving to the typed reply or rejecting with a
 *   {@link ChatError} (the server refused), a {@link DisconnectedError} or a
 *   {@link TimeoutError};
 * - `message` events in seq order per conversation, without gaps or duplicates;
 * - reconnects with exponential backoff and jitter, `resume` after every reconnect,
 *   unacknowledged sends retried with their `client_id`.
 *
 * This file is the whole library and has no dependencies: its compiled `index.js` is
 * one ES module that a browser page can load as it is.
 *
 * @packageDocumentation
 */

// ---------------------------------------------------------------------------------
// Model

/** A conversation id (a UUID). */
export type ConversationId = string;
/** A user id: 1–128 bytes chosen by the embedding application. */
export type UserId = string;
/** A message's position in its conversation: 1, 2, 3, … without gaps. */
export type Seq = number;

/** Who may join a room: anyone (`public`) or those its owners invite (`private`). */
export type Visibility = 'public' | 'private';
/** A member's role in a conversation. */
export type Role = 'owner' | 'member';
/** `user` for messages users send, `system` for those an administrator posts. */
export type MessageKind = 'user' | 'system';
/** A sent message's status as its sender sees it. */
export type MessageStatus = 'sent' | 'delivered' | 'read';
/** A friendship as seen from one side. */
export type FriendStatus = 'none' | 'friends' | 'request_sent' | 'request_received' | 'blocked';

/**
 * A file attached to a message by reference: the server stores this descriptor, never
 * the file (upload it to your own storage first).
 */
export interface Attachment {
  /** Where the file is: an absolute `https://` or `http://` URL, at most 2,048 bytes. */
  url: string;
  /** Its media type, `type/subtype` (e.g. `image/png`), at most 127 bytes. */
  mime_type: string;
  /** Its size in bytes. */
  size: number;
  /** Its file name as shown to users: not blank, no control characters, at most 255 bytes. */
  name: string;
}

/**
 * One message. A deleted message is a tombstone: empty `body`, no `attachments`,
 * `deleted_at` set.
 */
export interface Message {
  /** The message id (a UUID). */
  id: string;
  /** Its conversation. */
  conversation: ConversationId;
  /** Its position in the conversation. */
  seq: Seq;
  /** Who sent it (`system` for administrator messages). */
  sender: UserId;
  /** The sender's idempotency key, when the send had one. */
  client_id?: string;
  /** `user` or `system`. */
  kind: MessageKind;
  /** The text (empty for a tombstone). */
  body: string;
  /** When it was stored (RFC 3339). */
  created_at: string;
  /** When it was last edited. */
  edited_at?: string;
  /** When it was deleted. */
  deleted_at?: string;
  /** The seq this message replies to, in the same conversation (absent when it is not a reply). */
  reply_to?: Seq;
  /**
   * The root of the thread of a reply: `reply_to` when that message is not itself a
   * reply, else that message's `thread` (absent when it is not a reply).
   */
  thread?: Seq;
  /**
   * On a thread root: its replies that are not deleted, as of when the message was read
   * (absent when none). Not pushed again: add one on a `message` event whose `thread`
   * is this seq, take one off on a `message_deleted` event of such a reply.
   */
  reply_count?: number;
  /** Files attached by reference (absent when none). */
  attachments?: Attachment[];
  /** In `history` pages only: the status as its sender sees it (small conversations). */
  status?: MessageStatus;
}

/** A room. */
export interface RoomConversation {
  /** The room id. */
  id: ConversationId;
  /** Always `room`. */
  kind: 'room';
  /** Its unique name. */
  name: string;
  /** `public` or `private`. */
  visibility: Visibility;
  /** Who created it. */
  created_by: UserId;
  /** When (RFC 3339). */
  created_at: string;
  /** Its newest seq (0 when empty). */
  last_seq: Seq;
}

/** A direct conversation between two friends. */
export interface DirectConversation {
  /** The conversation id. */
  id: ConversationId;
  /** Always `direct`. */
  kind: 'direct';
  /** The first of the two users, in sorted order. */
  a: UserId;
  /** The second of the two users. */
  b: UserId;
  /** Who opened it. */
  created_by: UserId;
  /** When (RFC 3339). */
  created_at: string;
  /** Its newest seq (0 when empty). */
  last_seq: Seq;
}

/** A room or a direct conversation. */
export type Conversation = RoomConversation | DirectConversation;

/** A member of a conversation, with their watermarks. */
export interface Member {
  /** The conversation. */
  conversation: ConversationId;
  /** The member. */
  user: UserId;
  /** `owner` or `member`. */
  role: Role;
  /** Everything up to this seq reached one of their devices. */
  delivered_seq: Seq;
  /** Everything up to this seq was read. */
  read_seq: Seq;
  /** When they joined (RFC 3339). */
  joined_at: string;
}

/** A member's watermarks, as `history` lists them. */
export interface MemberWatermarks {
  /** The member. */
  user: UserId;
  /** Delivered up to this seq. */
  delivered_seq: Seq;
  /** Read up to this seq. */
  read_seq: Seq;
}

/** A friendship from your side. */
export interface Friend {
  /** The other user. */
  user: UserId;
  /** Where it stands. */
  status: FriendStatus;
  /** Since when (RFC 3339). */
  since?: string;
}

/** One entry of `list_conversations`. */
export interface ConversationSummary {
  /** The conversation. */
  conversation: Conversation;
  /** Your role. */
  role: Role;
  /** Your watermarks. */
  watermarks: { delivered_seq: Seq; read_seq: Seq };
  /** The newest message (possibly a tombstone), `null` when empty. */
  last_message: Message | null;
  /** Messages after your read watermark, sent by others, not deleted. */
  unread: number;
}

/** Where to resume a conversation from: everything after `last_seq`. */
export interface ResumePoint {
  /** The conversation. */
  conversation: ConversationId;
  /** The highest seq up to which you hold every message (0 for none). */
  last_seq: Seq;
}

/** One conversation's answer to `resume`. */
export interface ResumedConversation {
  /** The conversation. */
  conversation: ConversationId;
  /** `replayed` (`messages` holds everything after your point), `too_far_behind`, `not_found`. */
  outcome: 'replayed' | 'too_far_behind' | 'not_found';
  /** The replayed messages, in seq order. */
  messages: Message[];
  /** The conversation's newest seq. */
  last_seq: Seq;
}

/** The limits in force, from `hello` (`docs/protocol.md` §7). */
export interface Limits {
  /** Largest frame you may send, in bytes. */
  max_frame_bytes: number;
  /** Largest message body, in bytes. */
  max_body_bytes: number;
  /** Largest `history` page. */
  max_history_page: number;
  /** Largest `limit` of `list_conversations` and `members`. */
  max_list_page: number;
  /** A conversation further behind than this resumes as `too_far_behind`. */
  max_resume_gap: number;
  /** Most conversations in one `resume`. */
  max_resume_conversations: number;
  /** Rooms with more members have no per-message `status` in `history`. */
  status_member_limit: number;
  /** Rooms with more connected members carry no `presence` between co-members. */
  presence_room_limit: number;
  /** Conversations whose events reach a session live. */
  max_live_conversations: number;
  /** Typing lease, in milliseconds. */
  typing_ttl_ms: number;
  /** Sustained commands per second (0: no limit). */
  commands_per_second: number;
  /** Commands that may burst above the rate. */
  command_burst: number;
  /** Frames per `flood_window_ms` past which the server closes with 4029. */
  max_frames_per_window: number;
  /** The flood window, in milliseconds. */
  flood_window_ms: number;
  /** Frames the server queues for you before closing with 4008. */
  queue_capacity: number;
  /** How often the server pings, in milliseconds. */
  ping_interval_ms: number;
  /** Silence after which the server closes with 4000, in milliseconds. */
  idle_timeout_ms: number;
  /** A write you do not take within this closes with 4008, in milliseconds. */
  write_timeout_ms: number;
}

/** The first frame of every connection. */
export interface Hello {
  /** Always `hello`. */
  type: 'hello';
  /** The protocol version (1). */
  protocol: number;
  /** Who you are. */
  user: UserId;
  /** Your display name, when the token has one. */
  display_name?: string;
  /** The limits in force. */
  limits: Limits;
}

// ---------------------------------------------------------------------------------
// Replies

/** Reply to `create_room`, `join` and `invite`. */
export interface RoomReply {
  /** Always `room`. */
  type: 'room';
  /** The room. */
  conversation: RoomConversation;
  /** Whether you joined now (`false` when you already were a member, and for `invite`). */
  joined: boolean;
}
/** Reply to `open_direct`. */
export interface DirectReply {
  /** Always `direct`. */
  type: 'direct';
  /** The conversation. */
  conversation: DirectConversation;
  /** Whether it is new. */
  created: boolean;
}
/** Reply to `send`. */
export interface SentReply {
  /** Always `sent`. */
  type: 'sent';
  /** The stored message, with its seq. */
  message: Message;
  /** `true` when a message with this `client_id` already existed (it is returned). */
  duplicate: boolean;
}
/** Reply to `edit` and `delete`. */
export interface MessageReply {
  /** Always `message`. */
  type: 'message';
  /** The message as it now is. */
  message: Message;
}
/** Reply to `history`. */
export interface HistoryReply {
  /** Always `history`. */
  type: 'history';
  /** The conversation. */
  conversation: ConversationId;
  /** The page, in ascending seq order. */
  messages: Message[];
  /** The conversation's newest seq. */
  last_seq: Seq;
  /** Every member's watermarks (empty for rooms over `status_member_limit`). */
  members: MemberWatermarks[];
}
/** Reply to `mark_delivered` and `mark_read`: your watermarks. */
export interface MarksReply {
  /** Always `marks`. */
  type: 'marks';
  /** The conversation. */
  conversation: ConversationId;
  /** Delivered up to. */
  delivered_seq: Seq;
  /** Read up to. */
  read_seq: Seq;
}
/** Reply to `leave` and `typing`. */
export interface OkReply {
  /** Always `ok`. */
  type: 'ok';
}
/** Reply to `list_conversations`. */
export interface ConversationsReply {
  /** Always `conversations`. */
  type: 'conversations';
  /** Most recently active first. */
  conversations: ConversationSummary[];
}
/** Reply to `members`. */
export interface MembersReply {
  /** Always `members`. */
  type: 'members';
  /** Ordered by user id. */
  members: Member[];
}
/** Reply to `unread_total`. */
export interface UnreadReply {
  /** Always `unread`. */
  type: 'unread';
  /** Unread messages over all your conversations. */
  unread: number;
}
/** Reply to the friendship commands. */
export interface FriendReply {
  /** Always `friend`. */
  type: 'friend';
  /** The friendship as it now stands from your side. */
  friend: Friend;
}
/** Reply to `list_friends`. */
export interface FriendsReply {
  /** Always `friends`. */
  type: 'friends';
  /** Friends, requests and blocks, ordered by user id. */
  friends: Friend[];
}
/** Reply to `online_friends`. */
export interface OnlineReply {
  /** Always `online`. */
  type: 'online';
  /** The friends online now. */
  users: UserId[];
}
/** Reply to `resume`. */
export interface ResumedReply {
  /** Always `resumed`. */
  type: 'resumed';
  /** One entry per conversation asked for. */
  conversations: ResumedConversation[];
}
/** Reply to `refresh_token`. */
export interface TokenRefreshedReply {
  /** Always `token_refreshed`. */
  type: 'token_refreshed';
  /** The new token's expiry (absent when it has none). */
  expires_at?: string;
}
/** Any reply. */
export type Reply =
  | RoomReply | DirectReply | SentReply | MessageReply | HistoryReply | MarksReply | OkReply
  | ConversationsReply | MembersReply | UnreadReply | FriendReply | FriendsReply | OnlineReply
  | ResumedReply | TokenRefreshedReply;

// ---------------------------------------------------------------------------------
// Events

/**
 * A new message, in seq order per conversation, once each. Your own messages are
 * included (from their `sent` reply, or from another device of yours), so a
 * conversation's view can be built from these events alone.
 */
export interface MessageEvent {
  /** Always `message`. */
  type: 'message';
  /** The message. */
  message: Message;
}
/** A message was edited: the message as it now is. */
export interface MessageEditedEvent {
  /** Always `message_edited`. */
  type: 'message_edited';
  /** The message. */
  message: Message;
}
/** A message was deleted: its tombstone. */
export interface MessageDeletedEvent {
  /** Always `message_deleted`. */
  type: 'message_deleted';
  /** The tombstone. */
  message: Message;
}
/** A member's watermarks moved. */
export interface ReceiptEvent {
  /** Always `receipt`. */
  type: 'receipt';
  /** The conversation. */
  conversation: ConversationId;
  /** The member. */
  user: UserId;
  /** Delivered up to. */
  delivered_seq: Seq;
  /** Read up to. */
  read_seq: Seq;
}
/** Someone started or stopped typing (volatile). */
export interface TypingEvent {
  /** Always `typing`. */
  type: 'typing';
  /** The conversation. */
  conversation: ConversationId;
  /** Who. */
  user: UserId;
  /** Started (renewed) or stopped; treat a `true` older than `typing_ttl_ms` as stopped. */
  typing: boolean;
}
/** Someone joined a room. */
export interface MemberJoinedEvent {
  /** Always `member_joined`. */
  type: 'member_joined';
  /** The room. */
  conversation: ConversationId;
  /** Who. */
  user: UserId;
  /** Their role. */
  role: Role;
}
/** Someone left a room. */
export interface MemberLeftEvent {
  /** Always `member_left`. */
  type: 'member_left';
  /** The room. */
  conversation: ConversationId;
  /** Who. */
  user: UserId;
}
/** You are now a member of a conversation. */
export interface ConversationAddedEvent {
  /** Always `conversation_added`. */
  type: 'conversation_added';
  /** The conversation. */
  conversation: Conversation;
}
/**
 * You are no longer a member of a conversation (or it was deleted). The client also
 * emits this when a `resume` answers `not_found` for a conversation it followed.
 */
export interface ConversationRemovedEvent {
  /** Always `conversation_removed`. */
  type: 'conversation_removed';
  /** The conversation. */
  conversation: ConversationId;
}
/** A friend or co-member came online or went offline (volatile). */
export interface PresenceEvent {
  /** Always `presence`. */
  type: 'presence';
  /** Who. */
  user: UserId;
  /** Online now. */
  online: boolean;
  /** When they went offline. */
  last_seen?: string;
}
/** A friendship changed, from your side. */
export interface FriendEvent {
  /** Always `friend`. */
  type: 'friend';
  /** The friendship. */
  friend: Friend;
}
/**
 * The server could not make up for a loss of live messages. The client resumes that
 * conversation by itself; the event is passed on for information.
 */
export interface ResumeRequiredEvent {
  /** Always `resume_required`. */
  type: 'resume_required';
  /** The conversation. */
  conversation: ConversationId;
}
/** Every event the server sends (`docs/protocol.md` §4). */
export type ServerEvent =
  | MessageEvent | MessageEditedEvent | MessageDeletedEvent | ReceiptEvent | TypingEvent
  | MemberJoinedEvent | MemberLeftEvent | ConversationAddedEvent | ConversationRemovedEvent
  | PresenceEvent | FriendEvent | ResumeRequiredEvent;

/** The client's connection state. */
export type ConnectionState =
  /** Not started: `connect()` was not called yet. */
  | 'idle'
  /** Opening a connection (reading the token, handshake, waiting for `hello`). */
  | 'connecting'
  /** Connected: `hello` arrived. Catching up (resume) may still be under way. */
  | 'open'
  /** Connection lost: waiting for the backoff delay before the next attempt. */
  | 'reconnecting'
  /** Closed for good: by `close()`, or kicked (4003). No further attempt. */
  | 'closed';

/** The connection state changed. */
export interface StateEvent {
  /** Always `state`. */
  type: 'state';
  /** The new state. */
  state: ConnectionState;
  /** The state before. */
  previous: ConnectionState;
}
/**
 * A connection is up and caught up: `resume` and `list_conversations` are done (after
 * every connect and reconnect).
 */
export interface ConnectedEvent {
  /** Always `connected`. */
  type: 'connected';
  /** The connection's `hello`. */
  hello: Hello;
  /** `false` for the first connection of this client, `true` afterwards. */
  reconnected: boolean;
}
/** A connection (or an attempt) ended. */
export interface DisconnectedEvent {
  /** Always `disconnected`. */
  type: 'disconnected';
  /** The WebSocket close code (1006 when the connection failed without one). */
  code: number;
  /** The close reason, or what failed. */
  reason: string;
  /** Milliseconds until the next attempt; `null` when the client will not reconnect. */
  reconnectInMs: number | null;
}
/** The server closed the connection with 4003 (access revoked). The client stays closed. */
export interface KickedEvent {
  /** Always `kicked`. */
  type: 'kicked';
  /** The close reason. */
  reason: string;
}
/**
 * A conversation was too far behind to resume (`too_far_behind`): the messages
 * `from`..`to` were not delivered as `message` events and `have` jumped to `to`.
 * Reload the conversation's history (`history`) to show them.
 */
export interface GapSkippedEvent {
  /** Always `gap_skipped`. */
  type: 'gap_skipped';
  /** The conversation. */
  conversation: ConversationId;
  /** First seq skipped. */
  from: Seq;
  /** Last seq skipped. */
  to: Seq;
}
/**
 * Something failed without a caller to tell: a listener threw (`context: 'listener'`),
 * a background command failed (`'mark_delivered'`, `'gap_fill'`, `'resume'`), the token
 * provider failed (`'token'`), or the server sent an error without a request id
 * (`'server'`).
 */
export interface ErrorEvent {
  /** Always `error`. */
  type: 'error';
  /** What was going on. */
  context: string;
  /** The error. */
  error: unknown;
}
/** Events the client itself emits. */
export type ClientEvent =
  | StateEvent | ConnectedEvent | DisconnectedEvent | KickedEvent | GapSkippedEvent | ErrorEvent;

/** Every event `on()` delivers. */
export type ChatEvent = ServerEvent | ClientEvent;
/** Event types to their event objects. */
export type ChatEventMap = { [E in ChatEvent as E['type']]: E };
/** A listener of one event type, or of all (`'*'`). */
export type Listener<K extends keyof ChatEventMap | '*'> =
  (event: K extends keyof ChatEventMap ? ChatEventMap[K] : ChatEvent) => void;

// ---------------------------------------------------------------------------------
// Errors

/** The stable error codes (`docs/protocol.md` §6). */
export type ErrorCode =
  | 'invalid' | 'too_large' | 'not_found' | 'forbidden' | 'not_friends' | 'conflict'
  | 'rate_limited' | 'unavailable' | 'unauthenticated' | 'internal';

/** The server refused a command: an `error` frame. Nothing changed on the server. */
export class ChatError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** When the server knows when a retry can succeed, in milliseconds. */
  readonly retryAfterMs?: number;
  /** The command's `type`. */
  readonly command?: string;
  /** @param code the code; @param message the server's message. */
  constructor(code: ErrorCode, message: string, retryAfterMs?: number, command?: string) {
    super(message);
    this.name = 'ChatError';
    this.code = code;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
    if (command !== undefined) this.command = command;
  }
}

/**
 * The connection dropped while the command was in flight (it may or may not have been
 * carried out), or the client is closed. Sends are not rejected this way while the
 * client reconnects: they are retried.
 */
export class DisconnectedError extends Error {
  /** The close code, when there was one. */
  readonly code?: number;
  /** @param message what happened; @param code the close code. */
  constructor(message: string, code?: number) {
    super(message);
    this.name = 'DisconnectedError';
    if (code !== undefined) this.code = code;
  }
}

/** No answer within `requestTimeoutMs` (including time spent waiting for a connection). */
export class TimeoutError extends Error {
  /** @param message what timed out. */
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

// ---------------------------------------------------------------------------------
// Options

/** The WebSocket the client uses: the browser's, or a compatible class (`ws` in Node). */
export interface WebSocketLike {
  /** Sends a text frame. */
  send(data: string): void;
  /** Closes. */
  close(code?: number, reason?: string): void;
  /** 1 when open. */
  readonly readyState: number;
  /** Open handler. */
  onopen: ((ev: any) => void) | null;
  /** Frame handler (`ev.data`). */
  onmessage: ((ev: { data: unknown }) => void) | null;
  /** Close handler (`ev.code`, `ev.reason`). */
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  /** Error handler. */
  onerror: ((ev: any) => void) | null;
}
/** A WebSocket constructor. */
export type WebSocketClass = new (url: string) => WebSocketLike;

/** A token, or a function giving one; the function is called before every connect. */
export type TokenSource = string | (() => string | Promise<string>);

/** Options of {@link ChatClient}. */
export interface ChatClientOptions {
  /**
   * The WebSocket URL, e.g. `ws://127.0.0.1:8080/ws`. In a page it may be relative
   * (`/ws`: `ws:` or `wss:` after the page's scheme). The token is added as `?token=`.
   */
  url: string;
  /**
   * The token, or a provider called before every (re)connect, so a refreshed token is
   * used. An empty token adds no `token` parameter (the server then reads its cookie).
   */
  token: TokenSource;
  /** The WebSocket class (default: `globalThis.WebSocket`). In Node < 22 pass `ws`'s. */
  WebSocket?: WebSocketClass;
  /**
   * Send `mark_delivered` by itself when others' messages arrive, debounced per
   * conversation (default `true`, 100 ms; `{ delayMs }` sets the delay).
   */
  autoMarkDelivered?: boolean | { delayMs: number };
  /** How long a gap in a conversation's seqs may stay open before `history` fills it (default 300 ms). */
  gapWaitMs?: number;
  /**
   * How long a command may take, waiting for a connection included (default 15 000 ms).
   * Sends have no such limit: they are retried until acknowledged or `close()`.
   */
  requestTimeoutMs?: number;
  /** Reconnect delays: exponential from `initialMs` to `maxMs`, with jitter (default 250 ms, 30 s). */
  backoff?: { initialMs: number; maxMs: number };
  /**
   * The most out-of-order messages held per conversation while a gap is open
   * (default 1000); past it the gap is filled from `history` at once.
   */
  eventBuffer?: number;
  /**
   * Known `have` points (persisted from {@link ChatClient.haves}): these conversations
   * are resumed from there on the first connect, so messages missed while the app was
   * away arrive as `message` events.
   */
  have?: Record<ConversationId, Seq>;
}

/** Options of {@link ChatClient.send}. */
export interface SendOptions {
  /** The idempotency key (`client_id`); made up when absent. */
  clientId?: string;
  /** The seq of the message this one replies to (`reply_to`), in the same conversation. */
  replyTo?: Seq;
  /** Files attached by reference (`attachments`); with at least one, the body may be empty. */
  attachments?: Attachment[];
}

/** Options of {@link ChatClient.history}. */
export interface HistoryOptions {
  /** Messages strictly before this seq (the newest page when neither bound is given). */
  before?: Seq;
  /** Messages strictly after this seq. */
  after?: Seq;
  /** Page size (default 50, at most `max_history_page`). */
  limit?: number;
  /** Read the thread whose root is at this seq instead of the whole log. */
  thread?: Seq;
}

// ---------------------------------------------------------------------------------
// The client

interface ConvState {
  have: Seq;
  ahead: Map<Seq, Message>;
  gapTimer: ReturnType<typeof setTimeout> | undefined;
  filling: boolean;
  /** Highest seq of others' messages delivered to the app. */
  toMark: Seq;
  /** Highest seq acknowledged by `mark_delivered`. */
  marked: Seq;
  markTimer: ReturnType<typeof setTimeout> | undefined;
  /** Other members' watermarks, from receipts and `history`. */
  peers: Map<UserId, { delivered_seq: Seq; read_seq: Seq }>;
}

interface Pending {
  frame: Record<string, unknown>;
  resolve: (reply: any) => void;
  reject: (error: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
  /** Sends: retried across reconnects. */
  isSend: boolean;
  /** Connection generation the frame was written on (sends). */
  gen?: number;
  retryTimer?: ReturnType<typeof setTimeout>;
  retries: number;
  id?: string;
}

/** Resolves a relative URL against the page (`/ws` → `wss://host/ws` on an https page). */
function wsUrl(url: string): URL {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  const u = page ? new URL(url, page) : new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  return u;
}

const jitter = (ms: number): number => Math.round(ms / 2 + Math.random() * (ms / 2));

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  let s = '';
  for (let i = 0; i < 4; i++) s += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return s;
}

/**
 * A connection to a chat server that stays connected: one instance per user session.
 *
 * ```js
 * const chat = new ChatClient({ url: 'ws://127.0.0.1:8080/ws', token });
 * chat.on('message', ({ message }) => console.log(message.seq, message.body));
 * await chat.connect();
 * const { conversation } = await chat.join('lobby', { create: true });
 * await chat.send(conversation.id, 'hello');
 * ```
 *
 * **Events** are delivered by {@link ChatClient.on}: synchronously, in arrival order,
 * `message` events in seq order per conversation and once each. A listener that throws
 * does not stop the client nor the other listeners; the exception is passed on as an
 * `error` event (`context: 'listener'`).
 *
 * **Which messages arrive.** A conversation is followed from its `have` point (the
 * highest seq up to which every message was delivered). The client learns
 * conversations from `join`, `create_room`, `open_direct`, `conversation_added`
 * (starting at their `last_seq`: from now on), from the `have` option, and from
 * `list_conversations` after each connect: on the first connect a conversation found
 * there starts at its `last_seq` (live from now; load older messages with `history`);
 * one found on a later connect was added while away and is resumed from 0 (all of it,
 * or a `gap_skipped` event past `max_resume_gap`).
 */
export class ChatClient {
  private readonly opts: Required<Omit<ChatClientOptions, 'WebSocket' | 'have' | 'autoMarkDelivered'>>;
  private readonly WS: WebSocketClass | undefined;
  private readonly markDelayMs: number | null;
  private readonly listeners = new Map<string, Set<(e: any) => void>>();
  private readonly convs = new Map<ConversationId, ConvState>();
  private readonly inflight = new Map<string, Pending>();
  private readonly waiting: Pending[] = [];
  private readonly sends: Pending[] = [];
  private ws: WebSocketLike | undefined;
  private gen = 0;
  private nextId = 0;
  private attempts = 0;
  private everSynced = false;
  private ready = false;
  private synced = false;
  private stopped = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private lastError = '';
  private connectWaiters: { resolve: (h: Hello) => void; reject: (e: Error) => void }[] = [];
  private _state: ConnectionState = 'idle';
  private _hello: Hello | undefined;

  /** @param options see {@link ChatClientOptions}. */
  constructor(options: ChatClientOptions) {
    this.opts = {
      url: options.url,
      token: options.token,
      gapWaitMs: options.gapWaitMs ?? 300,
      requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
      backoff: options.backoff ?? { initialMs: 250, maxMs: 30_000 },
      eventBuffer: options.eventBuffer ?? 1000,
    };
    this.WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    const auto = options.autoMarkDelivered ?? true;
    this.markDelayMs = auto === false ? null : auto === true ? 100 : auto.delayMs;
    for (const [id, seq] of Object.entries(options.have ?? {})) this.conv(id, seq);
  }

  // ------------------------------------------------------------------ state

  /** The connection state. */
  get state(): ConnectionState {
    return this._state;
  }
  /** The last connection's `hello`, once one arrived. */
  get hello(): Hello | undefined {
    return this._hello;
  }
  /** The limits in force (from the last `hello`). */
  get limits(): Limits | undefined {
    return this._hello?.limits;
  }
  /** Who you are (from the last `hello`). */
  get user(): UserId | undefined {
    return this._hello?.user;
  }

  /** The highest seq up to which every message of the conversation was delivered, if followed. */
  have(conversation: ConversationId): Seq | undefined {
    return this.convs.get(conversation)?.have;
  }

  /** Every followed conversation's `have`: persist it and pass it back as the `have` option. */
  haves(): Record<ConversationId, Seq> {
    const out: Record<ConversationId, Seq> = {};
    for (const [id, c] of this.convs) out[id] = c.have;
    return out;
  }

  /**
   * The status of a message at `seq` as its sender sees it, from the other members'
   * watermarks the client knows: `receipt` events, `history` replies' `members`, and
   * the peer of a direct conversation. Exact for direct conversations; in a room, a
   * member the client has not heard of yet is not counted until a `history` call lists
   * the members. `undefined` when nothing is known. Call it again on `receipt` events.
   */
  statusOf(conversation: ConversationId, seq: Seq): MessageStatus | undefined {
    const c = this.convs.get(conversation);
    if (!c || c.peers.size === 0) return undefined;
    let read = true;
    let delivered = true;
    for (const p of c.peers.values()) {
      if (p.read_seq < seq) read = false;
      if (p.delivered_seq < seq) delivered = false;
    }
    return read ? 'read' : delivered ? 'delivered' : 'sent';
  }

  // ------------------------------------------------------------------ events

  /**
   * Listens to one event type (or `'*'` for all). Returns a function that removes the
   * listener (as {@link ChatClient.off} does).
   */
  on<K extends keyof ChatEventMap | '*'>(type: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  /** Removes a listener added with {@link ChatClient.on}. */
  off<K extends keyof ChatEventMap | '*'>(type: K, listener: Listener<K>): void {
    this.listeners.get(type)?.delete(listener);
  }

  private emit(event: ChatEvent): void {
    for (const key of [event.type, '*']) {
      const set = this.listeners.get(key);
      if (!set) continue;
      for (const l of [...set]) {
        try {
          l(event);
        } catch (error) {
          if (event.type === 'error') {
            // A throwing error listener has nowhere left to report to.
            if (typeof console !== 'undefined') console.error(error);
          } else {
            this.emit({ type: 'error', context: 'listener', error });
          }
        }
      }
    }
  }

  private setState(state: ConnectionState): void {
    const previous = this._state;
    if (previous === state) return;
    this._state = state;
    this.emit({ type: 'state', state, previous });
  }

  // ------------------------------------------------------------------ connection

  /**
   * Connects (and keeps reconnecting). Resolves with the `hello` once the first
   * connection is up and caught up; rejects only when the client is closed first
   * (`close()` or a 4003 kick): failed attempts are retried with backoff, as
   * `disconnected` events tell.
   */
  connect(): Promise<Hello> {
    if (this.stopped) return Promise.reject(new DisconnectedError('the client is closed'));
    if (this.synced && this._hello) return Promise.resolve(this._hello);
    const p = new Promise<Hello>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (this._state === 'idle') void this.attempt();
    return p;
  }

  /**
   * Closes for good: the connection closes with 1000, no reconnect follows, and every
   * pending command and send rejects with {@link DisconnectedError}.
   */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.shutdown(new DisconnectedError('the client is closed', 1000));
    const ws = this.ws;
    this.ws = undefined;
    this.gen++;
    try {
      ws?.close(1000);
    } catch {
      /* already closing */
    }
    this.setState('closed');
  }

  private shutdown(error: DisconnectedError): void {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.helloTimer);
    this.ready = false;
    this.synced = false;
    for (const c of this.convs.values()) {
      clearTimeout(c.gapTimer);
      clearTimeout(c.markTimer);
      c.gapTimer = c.markTimer = undefined;
    }
    const all = [...this.inflight.values(), ...this.waiting, ...this.sends];
    this.inflight.clear();
    this.waiting.length = 0;
    this.sends.length = 0;
    for (const p of new Set(all)) {
      clearTimeout(p.timer);
      clearTimeout(p.retryTimer);
      p.reject(error);
    }
    for (const w of this.connectWaiters.splice(0)) w.reject(error);
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    this.setState('connecting');
    const gen = ++this.gen;
    let token: string;
    try {
      token = typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token;
    } catch (error) {
      if (gen !== this.gen || this.stopped) return;
      this.emit({ type: 'error', context: 'token', error });
      this.onClosed(gen, 1006, `the token provider failed: ${String(error)}`);
      return;
    }
    if (gen !== this.gen || this.stopped) return;
    if (!this.WS) {
      this.onClosed(gen, 1006, 'no WebSocket class: pass the WebSocket option');
      return;
    }
    const url = wsUrl(this.opts.url);
    if (token) url.searchParams.set('token', token);
    let ws: WebSocketLike;
    try {
      ws = new this.WS(url.toString());
    } catch (error) {
      this.onClosed(gen, 1006, String(error));
      return;
    }
    this.ws = ws;
    this.lastError = '';
    ws.onmessage = (ev) => {
      if (gen === this.gen) this.onFrame(typeof ev.data === 'string' ? ev.data : String(ev.data));
    };
    ws.onerror = (ev) => {
      if (gen === this.gen) this.lastError = String(ev?.message ?? ev?.error?.message ?? 'connection error');
    };
    ws.onclose = (ev) => this.onClosed(gen, ev.code, ev.reason || this.lastError);
    this.helloTimer = setTimeout(() => {
      if (gen === this.gen && !this.ready) {
        this.lastError = 'no hello in time';
        try {
          ws.close();
        } catch {
          /* closing */
        }
        this.onClosed(gen, 1006, 'no hello in time');
      }
    }, this.opts.requestTimeoutMs);
  }

  private delay(code: number): number {
    const { initialMs, maxMs } = this.opts.backoff;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    if (code === 4029) return Math.max(jitter(Math.min(maxMs, base * 4)), Math.min(maxMs, initialMs * 8));
    return jitter(base);
  }

  private onClosed(gen: number, code: number, reason: string): void {
    if (gen !== this.gen) return;
    this.gen++;
    clearTimeout(this.helloTimer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws) ws.onmessage = ws.onclose = ws.onerror = null;
    this.ready = false;
    this.synced = false;
    // Commands in flight may or may not have run: tell their callers. Sends stay queued.
    for (const [id, p] of this.inflight) {
      this.inflight.delete(id);
      if (!p.isSend) {
        clearTimeout(p.timer);
        p.reject(new DisconnectedError(`the connection closed (${code}) before the reply`, code));
      }
    }
    if (this.stopped) return;
    if (code === 4003) {
      this.stopped = true;
      this.shutdown(new DisconnectedError(`kicked: ${reason}`, code));
      this.emit({ type: 'disconnected', code, reason, reconnectInMs: null });
      this.emit({ type: 'kicked', reason });
      this.setState('closed');
      return;
    }
    // 4001 and a 401 at the handshake: the token is read again before the next attempt.
    const wait = this.delay(code);
    this.emit({ type: 'disconnected', code, reason, reconnectInMs: wait });
    this.setState('reconnecting');
    this.reconnectTimer = setTimeout(() => void this.attempt(), wait);
  }

  private onFrame(text: string): void {
    let frame: any;
    try {
      frame = JSON.parse(text);
    } catch (error) {
      this.emit({ type: 'error', context: 'server', error });
      return;
    }
    switch (frame?.type) {
      case 'hello':
        this.onHello(frame as Hello);
        return;
      case 'reply':
      case 'error':
        this.onAnswer(frame);
        return;
      default:
        this.onEvent(frame as ServerEvent);
    }
  }

  private onHello(hello: Hello): void {
    clearTimeout(this.helloTimer);
    this._hello = hello;
    this.ready = true;
    this.setState('open');
    const gen = this.gen;
    void this.sync(gen);
    // Commands that waited for the connection go out after the first resume frame.
    for (const p of this.waiting.splice(0)) this.write(p);
  }

  private async sync(gen: number): Promise<void> {
    const first = !this.everSynced;
    try {
      await this.resumeAll([...this.convs.keys()]);
      const list: ConversationsReply = await this.internal({
        type: 'list_conversations',
        limit: this._hello!.limits.max_list_page,
      });
      const added: ConversationId[] = [];
      for (const s of list.conversations) {
        const id = s.conversation.id;
        if (this.convs.has(id)) continue;
        if (first) {
          this.conv(id, s.conversation.last_seq, s.conversation);
        } else {
          this.conv(id, 0, s.conversation);
          added.push(id);
        }
      }
      await this.resumeAll(added);
    } catch (error) {
      if (gen !== this.gen || this.stopped) return;
      // Could not catch up on this connection: drop it and try again with backoff.
      this.emit({ type: 'error', context: 'resume', error });
      const ws = this.ws;
      try {
        ws?.close(1000);
      } catch {
        /* closing */
      }
      this.onClosed(gen, 1006, `catching up failed: ${String(error)}`);
      return;
    }
    if (gen !== this.gen || this.stopped) return;
    this.synced = true;
    this.everSynced = true;
    this.attempts = 0;
    this.flushSends();
    for (const [id, c] of this.convs) {
      if (c.toMark > c.marked) this.scheduleMark(id, c);
      if (c.ahead.size > 0) void this.fillGap(id);
    }
    const hello = this._hello!;
    this.emit({ type: 'connected', hello, reconnected: !first });
    for (const w of this.connectWaiters.splice(0)) w.resolve(hello);
  }

  private async resumeAll(ids: ConversationId[]): Promise<void> {
    const chunk = Math.max(1, this._hello!.limits.max_resume_conversations);
    for (let i = 0; i < ids.length; i += chunk) {
      const points: ResumePoint[] = [];
      for (const id of ids.slice(i, i + chunk)) {
        const c = this.convs.get(id);
        if (c) points.push({ conversation: id, last_seq: c.have });
      }
      if (points.length === 0) continue;
      const r: ResumedReply = await this.internal({ type: 'resume', conversations: points });
      for (const entry of r.conversations) this.applyResumed(entry);
    }
  }

  private applyResumed(entry: ResumedConversation): void {
    const id = entry.conversation;
    const c = this.convs.get(id);
    if (!c) return;
    if (entry.outcome === 'not_found') {
      this.forget(id);
      this.emit({ type: 'conversation_removed', conversation: id });
      return;
    }
    if (entry.outcome === 'too_far_behind') {
      if (entry.last_seq > c.have) {
        const from = c.have + 1;
        c.have = entry.last_seq;
        for (const seq of [...c.ahead.keys()]) if (seq <= c.have) c.ahead.delete(seq);
        this.emit({ type: 'gap_skipped', conversation: id, from, to: entry.last_seq });
        this.flush(id, c);
      }
      return;
    }
    for (const m of entry.messages) this.ingest(m);
  }

  // ------------------------------------------------------------------ requests

  private onAnswer(frame: any): void {
    const id = frame.id === null || frame.id === undefined ? undefined : String(frame.id);
    const p = id === undefined ? undefined : this.inflight.get(id);
    if (frame.type === 'reply') this.observe(frame.reply as Reply, p?.frame);
    if (!p) {
      if (frame.type === 'error') {
        this.emit({
          type: 'error',
          context: 'server',
          error: new ChatError(frame.code, frame.message, frame.retry_after_ms),
        });
      }
      return;
    }
    this.inflight.delete(id!);
    clearTimeout(p.timer);
    if (frame.type === 'reply') {
      if (p.isSend) this.removeSend(p);
      p.resolve(frame.reply);
      return;
    }
    const error = new ChatError(frame.code, frame.message, frame.retry_after_ms, String(p.frame.type));
    if (p.isSend && (error.code === 'rate_limited' || error.code === 'unavailable')) {
      // Not stored: retry with the same client_id after the hint (or a growing delay).
      p.retries++;
      const wait = jitter(error.retryAfterMs ?? Math.min(5000, 100 * 2 ** Math.min(p.retries, 6))) + 10;
      p.gen = undefined;
      p.retryTimer = setTimeout(() => {
        p.retryTimer = undefined;
        if (this.synced) this.write(p);
      }, wait);
      return;
    }
    if (p.isSend) this.removeSend(p);
    p.reject(error);
  }

  private removeSend(p: Pending): void {
    const i = this.sends.indexOf(p);
    if (i >= 0) this.sends.splice(i, 1);
  }

  /** What replies tell the client about conversations, whoever asked. */
  private observe(reply: Reply, frame?: Record<string, unknown>): void {
    switch (reply?.type) {
      case 'room':
        if (frame?.type !== 'invite') this.conv(reply.conversation.id, reply.conversation.last_seq, reply.conversation);
        break;
      case 'direct':
        this.conv(reply.conversation.id, reply.conversation.last_seq, reply.conversation);
        break;
      case 'sent': {
        // Your own message comes back as this reply, never as an event: it takes its
        // place in the conversation's order like any other.
        const known = this.convs.get(reply.message.conversation);
        if (known) this.ingest(reply.message);
        break;
      }
      case 'history': {
        const c = this.convs.get(reply.conversation);
        if (c) for (const m of reply.members) this.peer(c, m.user, m.delivered_seq, m.read_seq);
        break;
      }
      case 'ok':
        if (frame?.type === 'leave') this.forget(String(frame.conversation));
        break;
      default:
        break;
    }
  }

  private write(p: Pending): void {
    const ws = this.ws;
    if (!ws || !this.ready) {
      if (!p.isSend) this.waiting.push(p);
      return;
    }
    const id = `r${++this.nextId}`;
    p.id = id;
    p.gen = this.gen;
    this.inflight.set(id, p);
    try {
      ws.send(JSON.stringify({ id, ...p.frame }));
    } catch {
      // The socket is closing: its close event settles this request.
    }
  }

  private flushSends(): void {
    for (const p of this.sends) {
      if (p.gen !== this.gen && !p.retryTimer) this.write(p);
    }
  }

  /** Runs a command with a timeout, waiting for the connection when there is none. */
  private request<R>(frame: Record<string, unknown>): Promise<R> {
    if (this.stopped) return Promise.reject(new DisconnectedError('the client is closed'));
    return new Promise<R>((resolve, reject) => {
      const p: Pending = { frame, resolve, reject, isSend: false, retries: 0 };
      p.timer = setTimeout(() => {
        const i = this.waiting.indexOf(p);
        if (i >= 0) this.waiting.splice(i, 1);
        if (p.id) this.inflight.delete(p.id);
        reject(new TimeoutError(`no answer to ${String(frame.type)} within ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
      this.write(p);
    });
  }

  /** A command of the client's own loop: only on the current connection, never queued. */
  private internal<R>(frame: Record<string, unknown>): Promise<R> {
    if (!this.ready) return Promise.reject(new DisconnectedError('not connected'));
    return this.request<R>(frame);
  }

  // ------------------------------------------------------------------ ordering

  private conv(id: ConversationId, have: Seq, conversation?: Conversation): ConvState {
    let c = this.convs.get(id);
    if (!c) {
      c = {
        have: Math.max(0, have), ahead: new Map(), gapTimer: undefined, filling: false,
        toMark: 0, marked: 0, markTimer: undefined, peers: new Map(),
      };
      this.convs.set(id, c);
    }
    if (conversation?.kind === 'direct' && this._hello) {
      const me = this._hello.user;
      const other = conversation.a === me ? conversation.b : conversation.a;
      if (other !== me && !c.peers.has(other)) c.peers.set(other, { delivered_seq: 0, read_seq: 0 });
    }
    return c;
  }

  private forget(id: ConversationId): void {
    const c = this.convs.get(id);
    if (!c) return;
    clearTimeout(c.gapTimer);
    clearTimeout(c.markTimer);
    this.convs.delete(id);
  }

  private peer(c: ConvState, user: UserId, delivered: Seq, read: Seq): void {
    if (user === this._hello?.user) return;
    const p = c.peers.get(user) ?? { delivered_seq: 0, read_seq: 0 };
    p.delivered_seq = Math.max(p.delivered_seq, delivered, read);
    p.read_seq = Math.max(p.read_seq, read);
    c.peers.set(user, p);
  }

  private ingest(m: Message): void {
    const c = this.conv(m.conversation, m.seq - 1);
    if (m.seq <= c.have || c.ahead.has(m.seq)) return;
    c.ahead.set(m.seq, m);
    this.flush(m.conversation, c);
  }

  private flush(id: ConversationId, c: ConvState): void {
    for (let next = c.ahead.get(c.have + 1); next; next = c.ahead.get(c.have + 1)) {
      c.ahead.delete(next.seq);
      c.have = next.seq;
      if (next.sender !== this._hello?.user && next.seq > c.toMark) {
        c.toMark = next.seq;
        this.scheduleMark(id, c);
      }
      this.emit({ type: 'message', message: next });
      if (this.convs.get(id) !== c) return; // a listener left the conversation
    }
    if (c.ahead.size === 0) {
      clearTimeout(c.gapTimer);
      c.gapTimer = undefined;
    } else if (c.ahead.size > this.opts.eventBuffer) {
      void this.fillGap(id);
    } else if (!c.gapTimer) {
      c.gapTimer = setTimeout(() => {
        c.gapTimer = undefined;
        void this.fillGap(id);
      }, this.opts.gapWaitMs);
    }
  }

  private async fillGap(id: ConversationId): Promise<void> {
    const c = this.convs.get(id);
    if (!c || c.filling || c.ahead.size === 0 || !this.ready) return;
    c.filling = true;
    try {
      const target = Math.min(...c.ahead.keys()) - 1;
      while (c.have < target && this.convs.get(id) === c) {
        const page: HistoryReply = await this.internal({
          type: 'history', conversation: id, after: c.have, limit: this._hello!.limits.max_history_page,
        });
        const before = c.have;
        for (const m of page.messages) this.ingest(m);
        if (page.messages.length === 0 || c.have === before) break;
      }
    } catch (error) {
      // Disconnected: the resume after the reconnect fills the gap.
      if (!(error instanceof DisconnectedError)) this.emit({ type: 'error', context: 'gap_fill', error });
    } finally {
      c.filling = false;
    }
    if (this.convs.get(id) === c && c.ahead.size > 0 && !c.gapTimer && this.ready) {
      c.gapTimer = setTimeout(() => {
        c.gapTimer = undefined;
        void this.fillGap(id);
      }, this.opts.gapWaitMs);
    }
  }

  private scheduleMark(id: ConversationId, c: ConvState): void {
    if (this.markDelayMs === null || c.markTimer) return;
    c.markTimer = setTimeout(() => {
      c.markTimer = undefined;
      if (!this.synced || this.convs.get(id) !== c || c.toMark <= c.marked) return;
      const seq = c.toMark;
      this.internal<MarksReply>({ type: 'mark_delivered', conversation: id, seq }).then(
        (r) => {
          c.marked = Math.max(c.marked, seq, r.delivered_seq);
        },
        (error) => {
          // Disconnected: marked again once the connection is back.
          if (!(error instanceof DisconnectedError)) this.emit({ type: 'error', context: 'mark_delivered', error });
        },
      );
    }, this.markDelayMs);
  }

  // ------------------------------------------------------------------ events

  private onEvent(event: ServerEvent): void {
    switch (event.type) {
      case 'message':
        this.ingest(event.message);
        return; // emitted by flush, in order
      case 'conversation_added':
        this.conv(event.conversation.id, event.conversation.last_seq, event.conversation);
        break;
      case 'conversation_removed':
        this.forget(event.conversation);
        break;
      case 'receipt': {
        const c = this.convs.get(event.conversation);
        if (c) this.peer(c, event.user, event.delivered_seq, event.read_seq);
        break;
      }
      case 'resume_required':
        if (this.synced && this.convs.has(event.conversation)) {
          this.resumeAll([event.conversation]).catch((error) => {
            if (!(error instanceof DisconnectedError)) this.emit({ type: 'error', context: 'resume', error });
          });
        }
        break;
      default:
        break;
    }
    this.emit(event);
  }

  // ------------------------------------------------------------------ commands

  /** `create_room`: creates a room (you become its owner). Errors: `conflict` (name taken), `invalid`. */
  createRoom(name: string, visibility: Visibility = 'public'): Promise<RoomReply> {
    return this.request({ type: 'create_room', name, visibility });
  }
  /** `join`: joins a room by id or name; `create: true` creates a public room when missing. */
  join(room: string, options: { create?: boolean } = {}): Promise<RoomReply> {
    return this.request({ type: 'join', room, create: options.create ?? false });
  }
  /** `leave`: leaves a room; the client stops following it. */
  leave(conversation: ConversationId): Promise<OkReply> {
    return this.request({ type: 'leave', conversation });
  }
  /** `invite`: adds a user to a room (owners only for private rooms). */
  invite(conversation: ConversationId, user: UserId): Promise<RoomReply> {
    return this.request({ type: 'invite', conversation, user });
  }
  /** `members`: a room's members by user id; page with `after` and `limit`. */
  members(conversation: ConversationId, options: { after?: UserId; limit?: number } = {}): Promise<MembersReply> {
    return this.request({ type: 'members', conversation, ...options });
  }
  /** `open_direct`: opens (or returns) the direct conversation with a friend (`not_friends` otherwise). */
  openDirect(user: UserId): Promise<DirectReply> {
    return this.request({ type: 'open_direct', user });
  }
  /**
   * `send`: appends a message. A `clientId` is made up when none is given; the send is
   * retried with it after a reconnect and after `rate_limited`/`unavailable` until it
   * is acknowledged, so the promise resolves once, with the stored message
   * (`duplicate: true` when an earlier attempt had stored it). No timeout applies;
   * only `close()`, a kick or a refusal (e.g. `not_friends`, `too_large`) reject it.
   *
   * `replyTo` (the wire's `reply_to`) makes it a reply to the message at that seq (a
   * missing or deleted one is `not_found`); it joins that message's thread.
   * `attachments` (at most 10 by default: more is `too_large`) attach files by
   * reference; with at least one, `body` may be empty.
   */
  send(conversation: ConversationId, body: string, options: SendOptions = {}): Promise<SentReply> {
    if (this.stopped) return Promise.reject(new DisconnectedError('the client is closed'));
    const frame: Record<string, unknown> = { type: 'send', conversation, body, client_id: options.clientId ?? randomId() };
    if (options.replyTo !== undefined) frame.reply_to = options.replyTo;
    if (options.attachments !== undefined && options.attachments.length > 0) frame.attachments = options.attachments;
    return new Promise<SentReply>((resolve, reject) => {
      const p: Pending = { frame, resolve, reject, isSend: true, retries: 0 };
      this.sends.push(p);
      if (this.synced) this.write(p);
    });
  }
  /** `edit`: edits your own message (`forbidden` otherwise). */
  edit(conversation: ConversationId, seq: Seq, body: string): Promise<MessageReply> {
    return this.request({ type: 'edit', conversation, seq, body });
  }
  /** `delete`: turns your own message into a tombstone. */
  delete(conversation: ConversationId, seq: Seq): Promise<MessageReply> {
    return this.request({ type: 'delete', conversation, seq });
  }
  /**
   * `history`: a page in ascending seq order: the newest, those `before` a seq, or those
   * `after` one. With `thread` (a root's seq), the page is of that thread only: the root
   * and its replies (`not_found` for a missing message, `invalid` for a reply). Does not
   * feed `message` events.
   */
  history(conversation: ConversationId, options: HistoryOptions = {}): Promise<HistoryReply> {
    return this.request({ type: 'history', conversation, ...options });
  }
  /** `mark_delivered`: everything up to `seq` reached this device (done by itself unless `autoMarkDelivered: false`). */
  markDelivered(conversation: ConversationId, seq: Seq): Promise<MarksReply> {
    return this.request({ type: 'mark_delivered', conversation, seq });
  }
  /** `mark_read`: everything up to `seq` was read (implies delivered). */
  markRead(conversation: ConversationId, seq: Seq): Promise<MarksReply> {
    return this.request({ type: 'mark_read', conversation, seq });
  }
  /** `typing`: starts (renews) or stops your typing lease; renew within `typing_ttl_ms`. */
  typing(conversation: ConversationId, typing: boolean): Promise<OkReply> {
    return this.request({ type: 'typing', conversation, typing });
  }
  /** `list_conversations`: yours, most recently active first, with unread counts. */
  listConversations(options: { limit?: number } = {}): Promise<ConversationsReply> {
    return this.request({ type: 'list_conversations', ...options });
  }
  /** `unread_total`: unread messages over all your conversations. */
  unreadTotal(): Promise<UnreadReply> {
    return this.request({ type: 'unread_total' });
  }
  /** `friend_request`: asks (accepts at once when they already asked you). */
  friendRequest(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'friend_request', user });
  }
  /** `friend_accept`: accepts their request (`not_found` when there is none). */
  friendAccept(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'friend_accept', user });
  }
  /** `friend_decline`: declines their request. */
  friendDecline(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'friend_decline', user });
  }
  /** `friend_cancel`: withdraws your request. */
  friendCancel(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'friend_cancel', user });
  }
  /** `friend_remove`: ends the friendship. */
  friendRemove(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'friend_remove', user });
  }
  /** `block`: blocks a user. */
  block(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'block', user });
  }
  /** `unblock`: lifts your block. */
  unblock(user: UserId): Promise<FriendReply> {
    return this.request({ type: 'unblock', user });
  }
  /** `list_friends`: friends, requests and blocks. */
  listFriends(): Promise<FriendsReply> {
    return this.request({ type: 'list_friends' });
  }
  /** `online_friends`: the friends online now. */
  onlineFriends(): Promise<OnlineReply> {
    return this.request({ type: 'online_friends' });
  }
  /**
   * `resume`, as is: the client resumes by itself after every reconnect and on
   * `resume_required`; this raw command does not feed `message` events.
   */
  resume(conversations: ResumePoint[]): Promise<ResumedReply> {
    return this.request({ type: 'resume', conversations });
  }
  /**
   * `refresh_token`: hands the connection a fresh token before its token expires. With
   * no argument, the `token` option is read again (call its provider).
   */
  async refreshToken(token?: string): Promise<TokenRefreshedReply> {
    const t = token ?? (typeof this.opts.token === 'function' ? await this.opts.token() : this.opts.token);
    return this.request({ type: 'refresh_token', token: t });
  }
}
