//! Every SQL statement the store runs, in one place, so a test can check each one's
//! query plan (`EXPLAIN QUERY PLAN`) for full-table scans.

/// `$p` (a table alias and a dot, or `""`) before each column, separated by commas.
macro_rules! prefixed {
    ($p:literal; $first:literal $(, $rest:literal)*) => {
        concat!($p, $first $(, ", ", $p, $rest)*)
    };
}
/// The columns of a conversation, at the positions of [`conversation_col`].
macro_rules! conversation_cols {
    ($p:literal) => {
        prefixed!($p; "id", "kind", "name", "visibility", "user_a", "user_b", "created_by",
            "created_at", "last_seq")
    };
}
/// The columns of a message, at the positions of [`message_col`].
macro_rules! message_cols {
    ($p:literal) => {
        prefixed!($p; "conversation", "seq", "id", "sender", "client_id", "kind", "body",
            "created_at", "edited_at", "deleted_at", "reply_to", "thread", "reply_count",
            "attachments")
    };
}
/// The columns of a member, at the positions of [`member_col`].
macro_rules! member_cols {
    ($p:literal) => {
        prefixed!($p; "conversation", "user", "role", "delivered_seq", "read_seq", "joined_at")
    };
}
/// The columns of a friendship, at the positions of [`friendship_col`].
macro_rules! friendship_cols {
    ($p:literal) => {
        prefixed!($p; "a", "b", "state", "pending_from", "a_blocks_b", "b_blocks_a", "updated_at")
    };
}

/// Positions in `conversation_cols!`, from the block's first column.
pub(crate) mod conversation_col {
    pub(crate) const ID: usize = 0;
    pub(crate) const KIND: usize = 1;
    pub(crate) const NAME: usize = 2;
    pub(crate) const VISIBILITY: usize = 3;
    pub(crate) const USER_A: usize = 4;
    pub(crate) const USER_B: usize = 5;
    pub(crate) const CREATED_BY: usize = 6;
    pub(crate) const CREATED_AT: usize = 7;
    pub(crate) const LAST_SEQ: usize = 8;
    /// How many columns the block has.
    pub(crate) const COUNT: usize = 9;
}

/// Positions in `message_cols!`, from the block's first column.
pub(crate) mod message_col {
    pub(crate) const CONVERSATION: usize = 0;
    pub(crate) const SEQ: usize = 1;
    pub(crate) const ID: usize = 2;
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
    pub(crate) const USER: usize = 1;
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
pub(crate) const UPSERT_USER: &str = "INSERT INTO users (id, display_name) VALUES (?1, ?2) \
     ON CONFLICT (id) DO UPDATE SET display_name = coalesce(excluded.display_name, users.display_name)";
pub(crate) const SET_LAST_SEEN: &str = "INSERT INTO users (id, last_seen) VALUES (?1, ?2) \
     ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen";
pub(crate) const USER: &str = "SELECT id, display_name, last_seen FROM users WHERE id = ?1";

// ---- conversations ----
pub(crate) const CONVERSATION: &str = concat!(
    "SELECT ",
    conversation_cols!("c."),
    " FROM conversations c WHERE c.id = ?1"
);
pub(crate) const CONVERSATION_EXISTS: &str = "SELECT 1 FROM conversations WHERE id = ?1";
pub(crate) const ROOM_BY_NAME: &str = concat!(
    "SELECT ",
    conversation_cols!("c."),
    " FROM conversations c WHERE c.name = ?1"
);
pub(crate) const DIRECT_BY_PAIR: &str = concat!(
    "SELECT ",
    conversation_cols!("c."),
    " FROM conversations c WHERE c.user_a = ?1 AND c.user_b = ?2"
);
pub(crate) const INSERT_ROOM: &str = "INSERT INTO conversations \
     (id, kind, name, visibility, created_by, created_at) VALUES (?1, 'room', ?2, ?3, ?4, ?5)";
pub(crate) const INSERT_DIRECT: &str = "INSERT INTO conversations \
     (id, kind, user_a, user_b, created_by, created_at) VALUES (?1, 'direct', ?2, ?3, ?4, ?5)";
pub(crate) const LAST_SEQ: &str = "SELECT last_seq FROM conversations WHERE id = ?1";
pub(crate) const SET_LAST_SEQ: &str = "UPDATE conversations SET last_seq = ?2 WHERE id = ?1";
pub(crate) const DELETE_CONVERSATION_MESSAGES: &str =
    "DELETE FROM messages WHERE conversation = ?1";
pub(crate) const DELETE_CONVERSATION_MEMBERS: &str = "DELETE FROM members WHERE conversation = ?1";
pub(crate) const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE id = ?1";

// ---- members ----
pub(crate) const INSERT_MEMBER: &str =
    "INSERT INTO members (conversation, user, role, joined_at) VALUES (?1, ?2, ?3, ?4)";
pub(crate) const MEMBER: &str = concat!(
    "SELECT ",
    member_cols!(""),
    " FROM members WHERE conversation = ?1 AND user = ?2"
);
pub(crate) const MEMBER_COUNT: &str =
    "SELECT count(*) AS members FROM members WHERE conversation = ?1";
pub(crate) const DELETE_MEMBER: &str = "DELETE FROM members WHERE conversation = ?1 AND user = ?2";
pub(crate) const MEMBERS_PAGE: &str = concat!(
    "SELECT ",
    member_cols!(""),
    " FROM members WHERE conversation = ?1 AND user > ?2 ORDER BY user LIMIT ?3"
);
pub(crate) const CONVERSATIONS_OF: &str =
    "SELECT conversation FROM members WHERE user = ?1 ORDER BY conversation LIMIT ?2";
/// A user's conversations, most recently active first, at most `?2`: each row is the
/// conversation, the user's membership, the newest message (NULLs when there is none),
/// and the user's unread count (by name), at the positions of [`list_col`].
pub(crate) const LIST_CONVERSATIONS: &str = concat!(
    "SELECT ",
    conversation_cols!("c."),
    ", ",
    member_cols!("m."),
    ", ",
    message_cols!("l."),
    ", (SELECT count(*) FROM messages u WHERE u.conversation = m.conversation \
       AND u.seq > m.read_seq AND u.sender <> m.user AND u.deleted_at IS NULL) AS unread \
     FROM members m JOIN conversations c ON c.id = m.conversation \
     LEFT JOIN messages l ON l.conversation = c.id AND l.seq = c.last_seq \
     WHERE m.user = ?1 \
     ORDER BY coalesce(l.created_at, c.created_at) DESC, c.id LIMIT ?2"
);

/// Where each block of a [`LIST_CONVERSATIONS`] row starts.
pub(crate) mod list_col {
    use super::{conversation_col, member_col};
    pub(crate) const CONVERSATION: usize = 0;
    pub(crate) const MEMBER: usize = CONVERSATION + conversation_col::COUNT;
    pub(crate) const LAST_MESSAGE: usize = MEMBER + member_col::COUNT;
}

// ---- messages ----
pub(crate) const BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE sender = ?1 AND client_id = ?2"
);
/// Inserts nothing when (sender, client_id) is taken (a retried send; the caller then
/// reads the original) — or, which the single writer never lets happen, the seq.
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (conversation, seq, id, sender, client_id, kind, body, created_at, reply_to, thread, \
      attachments) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING";
/// Adds `?3` (one or minus one) to the reply count of the thread root at `?2`.
pub(crate) const ADD_REPLY_COUNT: &str =
    "UPDATE messages SET reply_count = max(reply_count + ?3, 0) \
     WHERE conversation = ?1 AND seq = ?2";
pub(crate) const MESSAGE: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND seq = ?2"
);
pub(crate) const HISTORY_BEFORE: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq"
);
pub(crate) const HISTORY_AFTER: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
);
/// A thread's page before `?2`: its root `?4` and the replies whose thread is `?4`.
pub(crate) const THREAD_BEFORE: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND seq = ?4 AND seq < ?2 UNION ALL SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND thread = ?4 AND seq < ?2 \
     ORDER BY seq DESC LIMIT ?3) ORDER BY seq"
);
/// A thread's page after `?2`.
pub(crate) const THREAD_AFTER: &str = concat!(
    "SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND seq = ?4 AND seq > ?2 UNION ALL SELECT ",
    message_cols!(""),
    " FROM messages WHERE conversation = ?1 AND thread = ?4 AND seq > ?2 ORDER BY seq LIMIT ?3"
);
pub(crate) const EDIT_MESSAGE: &str =
    "UPDATE messages SET body = ?3, edited_at = ?4 WHERE conversation = ?1 AND seq = ?2";
pub(crate) const DELETE_MESSAGE: &str =
    "UPDATE messages SET body = '', attachments = NULL, deleted_at = ?3 \
     WHERE conversation = ?1 AND seq = ?2";

// ---- watermarks ----
pub(crate) const WATERMARKS: &str =
    "SELECT delivered_seq, read_seq FROM members WHERE conversation = ?1 AND user = ?2";
pub(crate) const SET_WATERMARKS: &str = "UPDATE members SET delivered_seq = ?3, read_seq = ?4 \
     WHERE conversation = ?1 AND user = ?2";
pub(crate) const UNREAD: &str = "SELECT count(*) AS unread FROM messages \
     WHERE conversation = ?1 AND seq > ?2 AND sender <> ?3 AND deleted_at IS NULL";
pub(crate) const UNREAD_TOTAL: &str = "SELECT count(*) AS unread FROM members m \
     JOIN messages g ON g.conversation = m.conversation AND g.seq > m.read_seq \
     WHERE m.user = ?1 AND g.sender <> ?1 AND g.deleted_at IS NULL";

// ---- friendships ----
pub(crate) const FRIENDSHIP: &str = concat!(
    "SELECT ",
    friendship_cols!(""),
    " FROM friendships WHERE a = ?1 AND b = ?2"
);
pub(crate) const SAVE_FRIENDSHIP: &str = "INSERT INTO friendships \
     (a, b, state, pending_from, a_blocks_b, b_blocks_a, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (a, b) DO UPDATE SET state = excluded.state, \
     pending_from = excluded.pending_from, a_blocks_b = excluded.a_blocks_b, \
     b_blocks_a = excluded.b_blocks_a, updated_at = excluded.updated_at";
pub(crate) const DELETE_FRIENDSHIP: &str = "DELETE FROM friendships WHERE a = ?1 AND b = ?2";
pub(crate) const FRIENDSHIPS_OF: &str = concat!(
    "SELECT ",
    friendship_cols!(""),
    " FROM friendships WHERE (a = ?1 AND b > ?2) OR (b = ?1 AND a > ?2) \
     ORDER BY CASE WHEN a = ?1 THEN b ELSE a END LIMIT ?3"
);

/// The friends (accepted) of `?1`, ordered by id, at most `?2`.
pub(crate) const FRIENDS_OF: &str = "SELECT other FROM \
     (SELECT b AS other FROM friendships WHERE a = ?1 AND state = 'accepted' \
      UNION ALL SELECT a AS other FROM friendships WHERE b = ?1 AND state = 'accepted') \
     ORDER BY other LIMIT ?2";

/// Every statement, named, for the query-plan test.
#[cfg(test)]
pub(crate) const ALL: &[(&str, &str)] = &[
    ("UPSERT_USER", UPSERT_USER),
    ("SET_LAST_SEEN", SET_LAST_SEEN),
    ("USER", USER),
    ("CONVERSATION", CONVERSATION),
    ("CONVERSATION_EXISTS", CONVERSATION_EXISTS),
    ("ROOM_BY_NAME", ROOM_BY_NAME),
    ("DIRECT_BY_PAIR", DIRECT_BY_PAIR),
    ("INSERT_ROOM", INSERT_ROOM),
    ("INSERT_DIRECT", INSERT_DIRECT),
    ("LAST_SEQ", LAST_SEQ),
    ("SET_LAST_SEQ", SET_LAST_SEQ),
    ("DELETE_CONVERSATION_MESSAGES", DELETE_CONVERSATION_MESSAGES),
    ("DELETE_CONVERSATION_MEMBERS", DELETE_CONVERSATION_MEMBERS),
    ("DELETE_CONVERSATION", DELETE_CONVERSATION),
    ("INSERT_MEMBER", INSERT_MEMBER),
    ("MEMBER", MEMBER),
    ("MEMBER_COUNT", MEMBER_COUNT),
    ("DELETE_MEMBER", DELETE_MEMBER),
    ("MEMBERS_PAGE", MEMBERS_PAGE),
    ("CONVERSATIONS_OF", CONVERSATIONS_OF),
    ("LIST_CONVERSATIONS", LIST_CONVERSATIONS),
    ("BY_CLIENT_ID", BY_CLIENT_ID),
    ("INSERT_MESSAGE", INSERT_MESSAGE),
    ("ADD_REPLY_COUNT", ADD_REPLY_COUNT),
    ("MESSAGE", MESSAGE),
    ("HISTORY_BEFORE", HISTORY_BEFORE),
    ("HISTORY_AFTER", HISTORY_AFTER),
    ("THREAD_BEFORE", THREAD_BEFORE),
    ("THREAD_AFTER", THREAD_AFTER),
    ("EDIT_MESSAGE", EDIT_MESSAGE),
    ("DELETE_MESSAGE", DELETE_MESSAGE),
    ("WATERMARKS", WATERMARKS),
    ("SET_WATERMARKS", SET_WATERMARKS),
    ("UNREAD", UNREAD),
    ("UNREAD_TOTAL", UNREAD_TOTAL),
    ("FRIENDSHIP", FRIENDSHIP),
    ("SAVE_FRIENDSHIP", SAVE_FRIENDSHIP),
    ("DELETE_FRIENDSHIP", DELETE_FRIENDSHIP),
    ("FRIENDSHIPS_OF", FRIENDSHIPS_OF),
    ("FRIENDS_OF", FRIENDS_OF),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated() -> rusqlite::Connection {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        crate::schema::migrate(&mut conn, 0).expect("migrate");
        conn
    }

    /// Every statement the `Store` trait uses walks an index: no full scan of a table.
    #[test]
    fn every_statement_walks_an_index() {
        let conn = migrated();
        // Give the planner statistics like a real database's, so the plans are the ones
        // a large database gets.
        conn.execute_batch("ANALYZE").expect("analyze");
        let mut failures = Vec::new();
        for (name, sql) in ALL {
            let mut stmt = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let n = stmt.parameter_count();
            let params: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Null; n];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>("detail")
                })
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("plan rows");
            for line in &plan {
                let scan = line.starts_with("SCAN ")
                    && !line.starts_with("SCAN (subquery")
                    && !line.contains("CONSTANT ROW");
                if scan {
                    failures.push(format!("{name}: {line}"));
                }
            }
        }
        assert!(failures.is_empty(), "full scans: {failures:#?}");
    }

    /// `ALL` names every statement of this file, so the plan test misses none.
    #[test]
    fn all_lists_every_statement() {
        let declared: Vec<&str> = include_str!("sql.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub(crate) const "))
            .filter_map(|l| l.split_once(": &str"))
            .map(|(name, _)| name)
            .collect();
        let listed: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
        assert_eq!(declared, listed);
    }

    /// Asserts that `sql` selects exactly `expected`: (position, column name) pairs.
    fn assert_columns(conn: &rusqlite::Connection, sql: &str, expected: &[(usize, &str)]) {
        let stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let names = stmt.column_names();
        assert_eq!(names.len(), expected.len(), "{sql}");
        for (at, name) in expected {
            assert_eq!(names.get(*at).copied(), Some(*name), "column {at} of {sql}");
        }
    }

    /// The position constants name the columns the lists put there.
    #[test]
    fn column_positions_match_the_column_lists() {
        use conversation_col as c;
        use friendship_col as f;
        use member_col as m;
        use message_col as g;
        let conn = migrated();
        let conversation = [
            (c::ID, "id"),
            (c::KIND, "kind"),
            (c::NAME, "name"),
            (c::VISIBILITY, "visibility"),
            (c::USER_A, "user_a"),
            (c::USER_B, "user_b"),
            (c::CREATED_BY, "created_by"),
            (c::CREATED_AT, "created_at"),
            (c::LAST_SEQ, "last_seq"),
        ];
        let member = [
            (m::CONVERSATION, "conversation"),
            (m::USER, "user"),
            (m::ROLE, "role"),
            (m::DELIVERED_SEQ, "delivered_seq"),
            (m::READ_SEQ, "read_seq"),
            (m::JOINED_AT, "joined_at"),
        ];
        let message = [
            (g::CONVERSATION, "conversation"),
            (g::SEQ, "seq"),
            (g::ID, "id"),
            (g::SENDER, "sender"),
            (g::CLIENT_ID, "client_id"),
            (g::KIND, "kind"),
            (g::BODY, "body"),
            (g::CREATED_AT, "created_at"),
            (g::EDITED_AT, "edited_at"),
            (g::DELETED_AT, "deleted_at"),
            (g::REPLY_TO, "reply_to"),
            (g::THREAD, "thread"),
            (g::REPLY_COUNT, "reply_count"),
            (g::ATTACHMENTS, "attachments"),
        ];
        let friendship = [
            (f::A, "a"),
            (f::B, "b"),
            (f::STATE, "state"),
            (f::PENDING_FROM, "pending_from"),
            (f::A_BLOCKS_B, "a_blocks_b"),
            (f::B_BLOCKS_A, "b_blocks_a"),
            (f::UPDATED_AT, "updated_at"),
        ];
        assert_eq!(
            [
                conversation.len(),
                member.len(),
                message.len(),
                friendship.len()
            ],
            [c::COUNT, m::COUNT, g::COUNT, f::COUNT]
        );
        assert_columns(&conn, CONVERSATION, &conversation);
        assert_columns(&conn, MEMBER, &member);
        assert_columns(&conn, MESSAGE, &message);
        assert_columns(&conn, FRIENDSHIP, &friendship);
        let shift = |at: usize, block: &[(usize, &'static str)]| {
            block
                .iter()
                .map(move |(i, n)| (at + i, *n))
                .collect::<Vec<_>>()
        };
        let mut list = shift(list_col::CONVERSATION, &conversation);
        list.extend(shift(list_col::MEMBER, &member));
        list.extend(shift(list_col::LAST_MESSAGE, &message));
        list.push((list_col::LAST_MESSAGE + g::COUNT, "unread"));
        assert_columns(&conn, LIST_CONVERSATIONS, &list);
    }

    /// The conversation list is cut to the limit by SQLite, newest activity first, not
    /// loaded whole and cut afterwards.
    #[test]
    fn list_conversations_applies_the_limit_in_sql() {
        let conn = migrated();
        for i in 0..5u8 {
            conn.execute(
                "INSERT INTO conversations (id, kind, name, visibility, created_by, created_at) \
                 VALUES (?1, 'room', ?2, 'public', 'ann', ?3)",
                rusqlite::params![[i; 16], format!("room {i}"), i64::from(i)],
            )
            .expect("room");
            conn.execute(INSERT_MEMBER, rusqlite::params![[i; 16], "ann", "owner", 0])
                .expect("member");
        }
        let ids: Vec<Vec<u8>> = conn
            .prepare(LIST_CONVERSATIONS)
            .and_then(|mut s| {
                s.query_map(rusqlite::params!["ann", 2], |r| {
                    r.get(list_col::CONVERSATION + conversation_col::ID)
                })?
                .collect()
            })
            .expect("list");
        assert_eq!(ids, vec![vec![4u8; 16], vec![3u8; 16]]);
    }
}
