//! Checks of the statements: each can walk an index (`EXPLAIN`), `ALL` lists them all,
//! and the column positions match the lists. The first and last run against the server
//! of the integration tests (`CHAT_TEST_PG_URL`, else the local default), each in a
//! schema of its own, dropped at the end.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use super::*;

/// A fresh, migrated schema, and a connection whose `search_path` is that schema.
/// The name follows the integration tests' `chat_test_<unix secs>_<random>`, so their
/// sweep removes it should a run crash before dropping it.
async fn fresh_schema() -> (Client, String) {
    let url = std::env::var("CHAT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let rand = uuid::Uuid::new_v4().simple().to_string();
    let schema = format!("chat_test_{secs}_{}", &rand[..12]);
    let config = crate::PgConfig::new(url.clone()).schema(schema.clone());
    let (cfg, tls) = config.driver_config().expect("config");
    crate::migrate::migrate(&cfg, &tls, config.connect_timeout, &schema)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot migrate a schema at {url} ({e}); start the server \
                 (scripts/test.sh does) or set CHAT_TEST_PG_URL"
            )
        });
    let (client, conn) = cfg.connect(tls.connector).await.expect("connect");
    tokio::spawn(conn);
    (client, schema)
}

async fn drop_schema(client: &Client, schema: &str) {
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop the test schema");
}

/// The tables a statement may reach only through an index.
const TABLES: &[&str] = &[
    "users",
    "conversations",
    "members",
    "messages",
    "friendships",
];

/// The sequential scans of our tables in the plan PostgreSQL would use for `sql`
/// whatever its parameters, when it must avoid sequential scans if it can.
async fn seq_scans(client: &Client, i: usize, sql: &str) -> Result<Vec<String>, String> {
    let n = client
        .prepare(sql)
        .await
        .map_err(|e| e.to_string())?
        .params()
        .len();
    client
        .batch_execute(&format!("PREPARE s{i} AS {sql}"))
        .await
        .map_err(|e| e.to_string())?;
    let args = vec!["NULL"; n].join(", ");
    let args = if n == 0 {
        String::new()
    } else {
        format!("({args})")
    };
    let plan = client
        .simple_query(&format!("EXPLAIN EXECUTE s{i}{args}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(plan
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get("QUERY PLAN"),
            _ => None,
        })
        .filter(|line| {
            line.split("Seq Scan on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|table| TABLES.contains(&table))
        })
        .map(|line| line.trim().to_owned())
        .collect())
}

/// Every statement can be served by an index: no sequential scan of a table.
///
/// The tables of a fresh schema are empty, and on tiny tables PostgreSQL rightly
/// prefers sequential scans, so the plans would say nothing about a large database.
/// The session therefore sets `enable_seqscan = off` (a sequential scan is then
/// chosen only when no index can serve the statement) and
/// `plan_cache_mode = force_generic_plan`, and each statement is `PREPARE`d and
/// explained with `EXPLAIN EXECUTE` and NULL arguments: the generic plan, which does
/// not depend on the values, is the one checked.
#[tokio::test]
async fn every_statement_can_walk_an_index() {
    let (client, schema) = fresh_schema().await;
    client
        .batch_execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        .await
        .expect("session settings");
    let mut failures = Vec::new();
    for (i, (name, sql)) in ALL.iter().enumerate() {
        match seq_scans(&client, i, sql).await {
            Ok(scans) => failures.extend(scans.into_iter().map(|s| format!("{name}: {s}"))),
            Err(e) => failures.push(format!("{name}: cannot explain: {e}")),
        }
    }
    // The check itself: a statement that no index can serve is caught.
    let control = seq_scans(
        &client,
        ALL.len(),
        "SELECT count(*) AS n FROM messages WHERE body = $1",
    )
    .await;
    drop_schema(&client, &schema).await;
    assert!(failures.is_empty(), "sequential scans: {failures:#?}");
    assert!(
        control.as_ref().is_ok_and(|scans| scans.len() == 1),
        "a scan of messages by body is reported: {control:?}"
    );
}

/// `ALL` names every statement of this file, so the plan test misses none.
#[test]
fn all_lists_every_statement() {
    let declared: Vec<&str> = include_str!("../sql.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("pub(crate) const "))
        .filter_map(|l| l.split_once(": &str"))
        .map(|(name, _)| name)
        .collect();
    let listed: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, listed);
}

/// The position constants name the columns the lists put there.
#[tokio::test]
async fn column_positions_match_the_column_lists() {
    use conversation_col as c;
    use friendship_col as f;
    use member_col as m;
    use message_col as g;
    let conversation = [
        (c::ID, "id"),
        (c::KIND, "kind"),
        (c::NAME, "name"),
        (c::VISIBILITY, "visibility"),
        (c::DIRECT_A, "direct_a"),
        (c::DIRECT_B, "direct_b"),
        (c::CREATED_BY, "created_by"),
        (c::CREATED_AT, "created_at"),
        (c::LAST_SEQ, "last_seq"),
    ];
    let member = [
        (m::CONVERSATION, "conversation"),
        (m::USER_ID, "user_id"),
        (m::ROLE, "role"),
        (m::DELIVERED_SEQ, "delivered_seq"),
        (m::READ_SEQ, "read_seq"),
        (m::JOINED_AT, "joined_at"),
    ];
    let message = [
        (g::ID, "id"),
        (g::CONVERSATION, "conversation"),
        (g::SEQ, "seq"),
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
    let shift = |at: usize, block: &[(usize, &'static str)]| {
        block.iter().map(|(i, n)| (at + i, *n)).collect::<Vec<_>>()
    };
    let mut list = shift(list_col::CONVERSATION, &conversation);
    list.extend(shift(list_col::MEMBER, &member));
    list.extend(shift(list_col::LAST_MESSAGE, &message));
    list.push((list_col::LAST_MESSAGE + g::COUNT, "unread"));
    let mut friendships_of = friendship.to_vec();
    friendships_of.push((f::COUNT, "other"));
    let cases: [(&str, &[(usize, &str)]); 6] = [
        (CONVERSATION, &conversation),
        (MEMBER, &member),
        (MESSAGE, &message),
        (FRIENDSHIP, &friendship),
        (FRIENDSHIPS_OF, &friendships_of),
        (LIST_CONVERSATIONS, &list),
    ];

    let (client, schema) = fresh_schema().await;
    let mut failures = Vec::new();
    for (sql, expected) in cases {
        let names: Vec<String> = match client.prepare(sql).await {
            Ok(s) => s.columns().iter().map(|c| c.name().to_owned()).collect(),
            Err(e) => {
                failures.push(format!("{sql}: {e}"));
                continue;
            }
        };
        let wanted: Vec<String> = {
            let mut v = vec![String::new(); expected.len()];
            for (at, name) in expected {
                if let Some(slot) = v.get_mut(*at) {
                    *slot = (*name).to_owned();
                }
            }
            v
        };
        if names != wanted {
            failures.push(format!("{sql}:\n  has  {names:?}\n  want {wanted:?}"));
        }
    }
    drop_schema(&client, &schema).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
