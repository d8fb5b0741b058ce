//! Every SQL statement the store runs, in one place, so a test can check each one's
//! query plan (`EXPLAIN QUERY PLAN`) for full-table scans.

macro_rules! conversation_cols {
    () => {
        "c.id, c.kind, c.name, c.visibility, c.user_a, c.user_b, c.created_by, c.created_at, c.last_seq"
    };
}
macro_rules! message_cols {
    () => {
        "conversation, seq, id, sender, client_id, kind, body, created_at, edited_at, deleted_at"
    };
}
macro_rules! member_cols {
    () => {
        "conversation, user, role, delivered_seq, read_seq, joined_at"
    };
}
macro_rules! friendship_cols {
    () => {
        "a, b, state, pending_from, a_blocks_b, b_blocks_a, updated_at"
    };
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
    conversation_cols!(),
    " FROM conversations c WHERE c.id = ?1"
);
pub(crate) const CONVERSATION_EXISTS: &str = "SELECT 1 FROM conversations WHERE id = ?1";
pub(crate) const ROOM_BY_NAME: &str = concat!(
    "SELECT ",
    conversation_cols!(),
    " FROM conversations c WHERE c.name = ?1"
);
pub(crate) const DIRECT_BY_PAIR: &str = concat!(
    "SELECT ",
    conversation_cols!(),
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
    member_cols!(),
    " FROM members WHERE conversation = ?1 AND user = ?2"
);
pub(crate) const MEMBER_COUNT: &str = "SELECT count(*) FROM members WHERE conversation = ?1";
pub(crate) const DELETE_MEMBER: &str = "DELETE FROM members WHERE conversation = ?1 AND user = ?2";
pub(crate) const MEMBERS_PAGE: &str = concat!(
    "SELECT ",
    member_cols!(),
    " FROM members WHERE conversation = ?1 AND user > ?2 ORDER BY user LIMIT ?3"
);
pub(crate) const CONVERSATIONS_OF: &str =
    "SELECT conversation FROM members WHERE user = ?1 ORDER BY conversation LIMIT ?2";
pub(crate) const MY_CONVERSATIONS: &str = concat!(
    "SELECT ",
    conversation_cols!(),
    ", m.role, m.delivered_seq, m.read_seq FROM members m \
     JOIN conversations c ON c.id = m.conversation WHERE m.user = ?1"
);
pub(crate) const WATERMARKS: &str =
    "SELECT delivered_seq, read_seq FROM members WHERE conversation = ?1 AND user = ?2";
pub(crate) const SET_WATERMARKS: &str = "UPDATE members SET delivered_seq = ?3, read_seq = ?4 \
     WHERE conversation = ?1 AND user = ?2";

// ---- messages ----
pub(crate) const BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_cols!(),
    " FROM messages WHERE sender = ?1 AND client_id = ?2"
);
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (conversation, seq, id, sender, client_id, kind, body, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
pub(crate) const MESSAGE: &str = concat!(
    "SELECT ",
    message_cols!(),
    " FROM messages WHERE conversation = ?1 AND seq = ?2"
);
pub(crate) const HISTORY_BEFORE: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_cols!(),
    " FROM messages WHERE conversation = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq"
);
pub(crate) const HISTORY_AFTER: &str = concat!(
    "SELECT ",
    message_cols!(),
    " FROM messages WHERE conversation = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
);
pub(crate) const EDIT_MESSAGE: &str =
    "UPDATE messages SET body = ?3, edited_at = ?4 WHERE conversation = ?1 AND seq = ?2";
pub(crate) const DELETE_MESSAGE: &str =
    "UPDATE messages SET body = '', deleted_at = ?3 WHERE conversation = ?1 AND seq = ?2";

// ---- unread ----
pub(crate) const UNREAD: &str = "SELECT count(*) FROM messages \
     WHERE conversation = ?1 AND seq > ?2 AND sender <> ?3 AND deleted_at IS NULL";
pub(crate) const UNREAD_TOTAL: &str = "SELECT count(*) FROM members m \
     JOIN messages g ON g.conversation = m.conversation AND g.seq > m.read_seq \
     WHERE m.user = ?1 AND g.sender <> ?1 AND g.deleted_at IS NULL";

// ---- friendships ----
pub(crate) const FRIENDSHIP: &str = concat!(
    "SELECT ",
    friendship_cols!(),
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
    friendship_cols!(),
    " FROM friendships WHERE (a = ?1 AND b > ?2) OR (b = ?1 AND a > ?2) \
     ORDER BY CASE WHEN a = ?1 THEN b ELSE a END LIMIT ?3"
);

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
    ("MY_CONVERSATIONS", MY_CONVERSATIONS),
    ("WATERMARKS", WATERMARKS),
    ("SET_WATERMARKS", SET_WATERMARKS),
    ("BY_CLIENT_ID", BY_CLIENT_ID),
    ("INSERT_MESSAGE", INSERT_MESSAGE),
    ("MESSAGE", MESSAGE),
    ("HISTORY_BEFORE", HISTORY_BEFORE),
    ("HISTORY_AFTER", HISTORY_AFTER),
    ("EDIT_MESSAGE", EDIT_MESSAGE),
    ("DELETE_MESSAGE", DELETE_MESSAGE),
    ("UNREAD", UNREAD),
    ("UNREAD_TOTAL", UNREAD_TOTAL),
    ("FRIENDSHIP", FRIENDSHIP),
    ("SAVE_FRIENDSHIP", SAVE_FRIENDSHIP),
    ("DELETE_FRIENDSHIP", DELETE_FRIENDSHIP),
    ("FRIENDSHIPS_OF", FRIENDSHIPS_OF),
];

#[cfg(test)]
mod tests {
    use super::ALL;

    /// Every statement the `Store` trait uses walks an index: no full scan of a table.
    #[test]
    fn every_statement_walks_an_index() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        crate::schema::migrate(&mut conn, 0).expect("migrate");
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
                    r.get::<_, String>(3)
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
}
