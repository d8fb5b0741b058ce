//! Every SQL statement the store runs, in one place, so a test can check each one's plan
//! (`EXPLAIN`) for sequential scans; and the column lists the statements share, with the
//! position of each column, which `rows` reads by.
//!
//! The migrations (`migrations/*.sql`, run by `migrate`) are the other SQL of the crate:
//! they create the tables, so they name the schema and are not plans to check.

/// `$p` (a table alias and a dot, or `""`) before each column, separated by commas.
macro_rules! prefixed {
    ($p:literal; $first:literal $(, $rest:literal)*) => {
        concat!($p, $first $(, ", ", $p, $rest)*)
    };
}
/// The columns of a conversation, at the positions of [`conversation_col`].
macro_rules! conversation_cols {
    ($p:literal) => {
        prefixed!($p; "id", "kind", "name", "visibility", "direct_a", "direct_b", "created_by",
            "created_at", "last_seq")
    };
}
/// The columns of a message, at the positions of [`message_col`].
macro_rules! message_cols {
    ($p:literal) => {
        prefixed!($p; "id", "conversation", "seq", "sender", "client_id", "kind", "body",
            "created_at", "edited_at", "deleted_at", "reply_to", "thread", "reply_count",
            "attachments")
    };
}
/// The columns of a member, at the positions of [`member_col`].
macro_rules! member_cols {
    ($p:literal) => {
        prefixed!($p; "conversation", "user_id", "role", "delivered_seq", "read_seq",
            "joined_at")
    };
}
/// The columns of a friendship, at the positions of [`friendship_col`].
macro_rules! friendship_cols {
    ($p:literal) => {
        prefixed!($p; "a", "b", "state", "pending_from", "a_blocks_b", "b_blocks_a",
            "updated_at")
    };
}

/// Positions in `conversation_cols!`, from the block's first column.
pub(crate) mod conversation_col {
    pub(crate) const ID: usize = 0;
    pub(crate) const KIND: usize = 1;
    pub(crate) const NAME: usize = 2;
    pub(crate) const VISIBILITY: usize = 3;
    pub(crate) const DIRECT_A: usize = 4;
    pub(crate) const DIRECT_B: usize = 5;
    pub(crate) const CREATED_BY: usize = 6;
    pub(crate) const CREATED_AT: usize = 7;
    pub(crate) const LAST_SEQ: usize = 8;
    /// How many columns the block has.
    pub(crate) const COUNT: usize = 9;
}

/// Positions in `message_cols!`, from the block's first column.
pub(crate) mod message_col {
    pub(crate) const ID: usize = 0;
    pub(crate) const CONVERSATION: usize = 1;
    pub(crate) const SEQ: usize = 2;
    pub(crate) const SENDER: usize = 3;
    pub(crate) const CLIENT_ID: usize = 4;
    pub(crate) const KIND: usize = 5;
    pub(crate) const BODY: usize = 6;
    pub(crate) const CREATED_AT: usize = 7;
    pub(crate) const EDITED_AT: usize = 8;
    pub(crate) const DELETED_AT: usize = 9;
    pub(crate) const REPLY_TO: usize = 10;
    pub(crate) const THREAD: usize = 11;
    pub(crate) const REPLY_COUNT: usize = 12;
    pub(crate) const ATTACHMENTS: usize = 13;
    /// How many columns the block has.
    #[cfg(test)]
    pub(crate) const COUNT: usize = 14;
}

/// Positions in `member_cols!`, from the block's first column.
pub(crate) mod member_col {
    pub(crate) const CONVERSATION: usize = 0;
    pub(crate) const USER_ID: usize = 1;
    pub(crate) const ROLE: usize = 2;
    pub(crate) const DELIVERED_SEQ: usize = 3;
    pub(crate) const READ_SEQ: usize = 4;
    pub(crate) const JOINED_AT: usize = 5;
    /// How many columns the block has.
    pub(crate) const COUNT: usize = 6;
}

/// Positions in `friendship_cols!`, from the block's first column.
pub(crate) mod friendship_col {
    pub(crate) const A: usize = 0;
    pub(crate) const B: usize = 1;
    pub(crate) const STATE: usize = 2;
    pub(crate) const PENDING_FROM: usize = 3;
    pub(crate) const A_BLOCKS_B: usize = 4;
    pub(crate) const B_BLOCKS_A: usize = 5;
    pub(crate) const UPDATED_AT: usize = 6;
    /// How many columns the block has.
    #[cfg(test)]
    pub(crate) const COUNT: usize = 7;
}

// ---- users ----

pub(crate) const UPSERT_USER: &str = "INSERT INTO users (id, display_name) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE
     SET display_name = COALESCE(EXCLUDED.display_name, users.display_name)";
pub(crate) const USER: &str = "SELECT id, display_name, last_seen FROM users WHERE id = $1";
pub(crate) const SET_LAST_SEEN: &str = "INSERT INTO users (id, last_seen) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET last_seen = EXCLUDED.last_seen";

// ---- conversations ----

/// The room and its owner in one statement, so they commit together.
pub(crate) const CREATE_ROOM: &str = "WITH c AS (
       INSERT INTO conversations (id, kind, name, visibility, created_by, created_at)
       VALUES ($1, 'room', $2, $3, $4, $5)
       RETURNING id)
     INSERT INTO members (conversation, user_id, role, joined_at)
     SELECT id, $4, 'owner', $5 FROM c";
pub(crate) const DIRECT_BY_PAIR: &str = concat!(
    "SELECT ",
    conversation_cols!(""),
    " FROM conversations WHERE kind = 'direct' AND direct_a = $1 AND direct_b = $2"
);
/// The direct conversation and both members, unless the pair has one: concurrent
/// openers race on the pair's unique index; one inserts, the others insert nothing.
/// `created` is 1 or 0.
pub(crate) const CREATE_DIRECT: &str = "WITH c AS (
       INSERT INTO conversations (id, kind, direct_a, direct_b, created_by, created_at)
       VALUES ($1, 'direct', $2, $3, $4, $5)
       ON CONFLICT (direct_a, direct_b) WHERE kind = 'direct' DO NOTHING
       RETURNING id),
     m AS (
       INSERT INTO members (conversation, user_id, role, joined_at)
       SELECT c.id, u, 'member', $5 FROM c, unnest(ARRAY[$2, $3]::text[]) AS u)
     SELECT count(*) AS created FROM c";
pub(crate) const CONVERSATION: &str = concat!(
    "SELECT ",
    conversation_cols!(""),
    " FROM conversations WHERE id = $1"
);
pub(crate) const CONVERSATION_EXISTS: &str = "SELECT 1 FROM conversations WHERE id = $1";
pub(crate) const ROOM_BY_NAME: &str = concat!(
    "SELECT ",
    conversation_cols!(""),
    " FROM conversations WHERE kind = 'room' AND name = $1"
);
/// Members and messages go with it (`ON DELETE CASCADE`).
pub(crate) const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE id = $1";

// ---- members ----

/// Serializes concurrent joins of one conversation, so the member cap holds.
pub(crate) const LOCK_CONVERSATION: &str =
    "SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE";
pub(crate) const MEMBER: &str = concat!(
    "SELECT ",
    member_cols!(""),
    " FROM members WHERE conversation = $1 AND user_id = $2"
);
/// Inserts the member unless the conversation already has `$5` members (or this one):
/// run after [`LOCK_CONVERSATION`] in the same transaction, the count is exact.
pub(crate) const INSERT_MEMBER_CAPPED: &str =
    "INSERT INTO members (conversation, user_id, role, joined_at)
     SELECT $1, $2, $3, $4
     WHERE (SELECT count(*) FROM members WHERE conversation = $1) < $5
     ON CONFLICT DO NOTHING";
pub(crate) const DELETE_MEMBER: &str =
    "DELETE FROM members WHERE conversation = $1 AND user_id = $2";
pub(crate) const MEMBERS_PAGE: &str = concat!(
    "SELECT ",
    member_cols!(""),
    " FROM members WHERE conversation = $1 AND user_id > $2 ORDER BY user_id LIMIT $3"
);
pub(crate) const CONVERSATIONS_OF: &str =
    "SELECT conversation FROM members WHERE user_id = $1 ORDER BY conversation LIMIT $2";
/// [`CONVERSATIONS_OF`] for every user in the array `$1` (distinct ids), at most `$2`
/// each: `(user_id, conversation)` rows, in one round trip.
pub(crate) const CONVERSATIONS_OF_MANY: &str = "SELECT u.user_id, m.conversation \
     FROM unnest($1::text[]) AS u(user_id) \
     CROSS JOIN LATERAL (SELECT conversation FROM members \
         WHERE members.user_id = u.user_id COLLATE \"C\" ORDER BY conversation LIMIT $2) m";
/// A user's conversations, most recently active first, at most `$2`: each row is the
/// conversation, the user's membership, the newest message (NULLs when there is none),
/// and the user's unread count (by name), at the positions of [`list_col`].
pub(crate) const LIST_CONVERSATIONS: &str = concat!(
    "SELECT ",
    conversation_cols!("c."),
    ", ",
    member_cols!("m."),
    ", ",
    message_cols!("l."),
    ",
       (SELECT count(*) FROM messages u
         WHERE u.conversation = c.id AND u.seq > m.read_seq
           AND u.sender <> m.user_id AND u.deleted_at IS NULL) AS unread
     FROM members m
     JOIN conversations c ON c.id = m.conversation
     LEFT JOIN messages l ON l.conversation = c.id AND l.seq = c.last_seq
     WHERE m.user_id = $1
     ORDER BY COALESCE(l.created_at, c.created_at) DESC, c.id
     LIMIT $2"
);

/// Where each block of a [`LIST_CONVERSATIONS`] row starts.
pub(crate) mod list_col {
    use super::{conversation_col, member_col};
    pub(crate) const CONVERSATION: usize = 0;
    pub(crate) const MEMBER: usize = CONVERSATION + conversation_col::COUNT;
    pub(crate) const LAST_MESSAGE: usize = MEMBER + member_col::COUNT;
}

// ---- messages ----

/// The newest `$3` before `$2`, newest first (the caller reverses the page).
pub(crate) const HISTORY_BEFORE: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
);
pub(crate) const HISTORY_AFTER: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND seq > $2 ORDER BY seq LIMIT $3"
);
pub(crate) const MESSAGE: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND seq = $2"
);
/// A thread's newest `$3` before `$2`, newest first (the caller reverses the page): its
/// root `$4` and the replies whose thread is `$4`.
pub(crate) const THREAD_BEFORE: &str = concat!(
    "(SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND seq = $4 AND seq < $2)
     UNION ALL (SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND thread = $4 AND seq < $2
     ORDER BY seq DESC LIMIT $3) ORDER BY seq DESC LIMIT $3"
);
/// A thread's oldest `$3` after `$2`.
pub(crate) const THREAD_AFTER: &str = concat!(
    "(SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND seq = $4 AND seq > $2)
     UNION ALL (SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = $1 AND thread = $4 AND seq > $2
     ORDER BY seq LIMIT $3) ORDER BY seq LIMIT $3"
);
/// Edits a message that is not a tombstone; no row when missing or deleted.
pub(crate) const EDIT_MESSAGE: &str = concat!(
    "UPDATE messages SET body = $3, edited_at = $4
     WHERE conversation = $1 AND seq = $2 AND deleted_at IS NULL
     RETURNING ",
    message_cols!("")
);
/// Turns a message into a tombstone and takes it from its thread root's reply count, in
/// one statement; no row when missing or already deleted.
pub(crate) const DELETE_MESSAGE: &str = concat!(
    "WITH d AS (UPDATE messages SET body = '', attachments = NULL, deleted_at = $3
         WHERE conversation = $1 AND seq = $2 AND deleted_at IS NULL
         RETURNING ",
    message_cols!(""),
    "), r AS (UPDATE messages m SET reply_count = GREATEST(m.reply_count - 1, 0)
         FROM d WHERE m.conversation = d.conversation AND m.seq = d.thread)
     SELECT ",
    message_cols!(""),
    " FROM d"
);

// ---- appends (the batched writer, `append.rs`) ----

/// 1. The batch's (sender, client id) pairs that are already stored (retries).
pub(crate) const APPEND_FIND_RETRIES: &str = concat!(
    "SELECT ",
    message_cols!("m."),
    " FROM messages m
     JOIN unnest($1::text[], $2::text[]) AS k(sender, client_id)
       ON m.sender = k.sender AND m.client_id = k.client_id
     WHERE m.client_id IS NOT NULL"
);
/// 2. Lock the batch's conversations in id order and read their last seq.
pub(crate) const APPEND_LOCK_CONVERSATIONS: &str =
    "SELECT id, last_seq FROM conversations WHERE id = ANY($1)
     ORDER BY id FOR NO KEY UPDATE";
/// 4. Insert every new message of the batch at once.
pub(crate) const APPEND_INSERT: &str = "INSERT INTO messages
       (conversation, seq, id, sender, client_id, kind, body, created_at, reply_to, thread,
        attachments)
     SELECT * FROM unnest($1::uuid[], $2::int8[], $3::uuid[], $4::text[],
                          $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                          $9::int8[], $10::int8[], $11::text[])";
/// 4b. Add the batch's replies to their thread roots' reply counts.
pub(crate) const APPEND_REPLY_COUNTS: &str =
    "UPDATE messages m SET reply_count = m.reply_count + v.n
     FROM (SELECT conversation, thread, count(*)::int AS n
           FROM unnest($1::uuid[], $2::int8[]) AS r(conversation, thread)
           GROUP BY conversation, thread) v
     WHERE m.conversation = v.conversation AND m.seq = v.thread";
/// 5. Move each conversation's last seq.
pub(crate) const APPEND_SET_LAST_SEQ: &str = "UPDATE conversations c SET last_seq = v.last_seq
     FROM unnest($1::uuid[], $2::int8[]) AS v(id, last_seq)
     WHERE c.id = v.id AND c.last_seq <> v.last_seq";

// ---- watermarks ----

/// `Watermarks::advance` in one statement: forward only, clamped to the last seq, read
/// implies delivered. SET expressions see the old row.
pub(crate) const ADVANCE_WATERMARKS: &str = "UPDATE members m SET
       read_seq = GREATEST(m.read_seq, LEAST($4, c.last_seq)),
       delivered_seq = GREATEST(m.delivered_seq, LEAST($3, c.last_seq),
                                m.read_seq, LEAST($4, c.last_seq))
     FROM conversations c
     WHERE m.conversation = $1 AND m.user_id = $2 AND c.id = m.conversation
     RETURNING m.delivered_seq, m.read_seq";
/// No row when the user is not a member.
pub(crate) const UNREAD: &str = "SELECT (SELECT count(*) FROM messages u
              WHERE u.conversation = m.conversation AND u.seq > m.read_seq
                AND u.sender <> m.user_id AND u.deleted_at IS NULL) AS unread
     FROM members m WHERE m.conversation = $1 AND m.user_id = $2";
pub(crate) const UNREAD_TOTAL: &str = "SELECT COALESCE(sum((SELECT count(*) FROM messages u
              WHERE u.conversation = m.conversation AND u.seq > m.read_seq
                AND u.sender <> m.user_id AND u.deleted_at IS NULL)), 0)::bigint AS unread
     FROM members m WHERE m.user_id = $1";

// ---- friendships ----

pub(crate) const FRIENDSHIP: &str = concat!(
    "SELECT ",
    friendship_cols!(""),
    " FROM friendships WHERE a = $1 AND b = $2"
);
/// The pair may have no row to lock yet: a transaction-scoped advisory lock on the pair
/// (in this schema) serializes every change to it, present or not.
pub(crate) const LOCK_FRIENDSHIP_PAIR: &str = "SELECT pg_advisory_xact_lock(
       hashtextextended(current_schema() || chr(1) || $1 || chr(1) || $2, 0))";
pub(crate) const DELETE_FRIENDSHIP: &str = "DELETE FROM friendships WHERE a = $1 AND b = $2";
pub(crate) const SAVE_FRIENDSHIP: &str = "INSERT INTO friendships
       (a, b, state, pending_from, a_blocks_b, b_blocks_a, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (a, b) DO UPDATE SET
       state = EXCLUDED.state, pending_from = EXCLUDED.pending_from,
       a_blocks_b = EXCLUDED.a_blocks_b, b_blocks_a = EXCLUDED.b_blocks_a,
       updated_at = EXCLUDED.updated_at";
/// Two index walks, (a, b) and (b, a), merged by the other user's id.
pub(crate) const FRIENDSHIPS_OF: &str = concat!(
    "(SELECT ",
    friendship_cols!(""),
    ", b AS other FROM friendships WHERE a = $1 AND b > $3 ORDER BY b LIMIT $2)
     UNION ALL
     (SELECT ",
    friendship_cols!(""),
    ", a AS other FROM friendships WHERE b = $1 AND a > $3 ORDER BY a LIMIT $2)
     ORDER BY other LIMIT $2"
);

/// The friends (accepted) of every user in the array `$1` (distinct ids), at most `$2`
/// each, ordered by id: `(user_id, friend)` rows, in one round trip.
pub(crate) const FRIENDS_OF_MANY: &str = "SELECT u.user_id, f.friend \
     FROM unnest($1::text[]) AS u(user_id) \
     CROSS JOIN LATERAL ( \
         (SELECT b AS friend FROM friendships \
             WHERE a = u.user_id COLLATE \"C\" AND state = 'accepted') \
         UNION ALL \
         (SELECT a AS friend FROM friendships \
             WHERE b = u.user_id COLLATE \"C\" AND state = 'accepted') \
         ORDER BY friend LIMIT $2) f";

/// Every statement, named, for the plan test.
#[cfg(test)]
pub(crate) const ALL: &[(&str, &str)] = &[
    ("UPSERT_USER", UPSERT_USER),
    ("USER", USER),
    ("SET_LAST_SEEN", SET_LAST_SEEN),
    ("CREATE_ROOM", CREATE_ROOM),
    ("DIRECT_BY_PAIR", DIRECT_BY_PAIR),
    ("CREATE_DIRECT", CREATE_DIRECT),
    ("CONVERSATION", CONVERSATION),
    ("CONVERSATION_EXISTS", CONVERSATION_EXISTS),
    ("ROOM_BY_NAME", ROOM_BY_NAME),
    ("DELETE_CONVERSATION", DELETE_CONVERSATION),
    ("LOCK_CONVERSATION", LOCK_CONVERSATION),
    ("MEMBER", MEMBER),
    ("INSERT_MEMBER_CAPPED", INSERT_MEMBER_CAPPED),
    ("DELETE_MEMBER", DELETE_MEMBER),
    ("MEMBERS_PAGE", MEMBERS_PAGE),
    ("CONVERSATIONS_OF", CONVERSATIONS_OF),
    ("CONVERSATIONS_OF_MANY", CONVERSATIONS_OF_MANY),
    ("LIST_CONVERSATIONS", LIST_CONVERSATIONS),
    ("HISTORY_BEFORE", HISTORY_BEFORE),
    ("HISTORY_AFTER", HISTORY_AFTER),
    ("MESSAGE", MESSAGE),
    ("THREAD_BEFORE", THREAD_BEFORE),
    ("THREAD_AFTER", THREAD_AFTER),
    ("EDIT_MESSAGE", EDIT_MESSAGE),
    ("DELETE_MESSAGE", DELETE_MESSAGE),
    ("APPEND_FIND_RETRIES", APPEND_FIND_RETRIES),
    ("APPEND_LOCK_CONVERSATIONS", APPEND_LOCK_CONVERSATIONS),
    ("APPEND_INSERT", APPEND_INSERT),
    ("APPEND_REPLY_COUNTS", APPEND_REPLY_COUNTS),
    ("APPEND_SET_LAST_SEQ", APPEND_SET_LAST_SEQ),
    ("ADVANCE_WATERMARKS", ADVANCE_WATERMARKS),
    ("UNREAD", UNREAD),
    ("UNREAD_TOTAL", UNREAD_TOTAL),
    ("FRIENDSHIP", FRIENDSHIP),
    ("LOCK_FRIENDSHIP_PAIR", LOCK_FRIENDSHIP_PAIR),
    ("DELETE_FRIENDSHIP", DELETE_FRIENDSHIP),
    ("SAVE_FRIENDSHIP", SAVE_FRIENDSHIP),
    ("FRIENDSHIPS_OF", FRIENDSHIPS_OF),
    ("FRIENDS_OF_MANY", FRIENDS_OF_MANY),
];

#[cfg(test)]
mod tests;
