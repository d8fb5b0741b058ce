//! Users: display profiles and last-seen times.

use chat_core::ports::UserProfile;
use chat_core::{Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::row::{map_err, ms};
use crate::sql;

/// Creates the profile or updates its display name (a missing name keeps the old one).
pub(super) fn upsert(conn: &Connection, user: &UserId, name: Option<&str>) -> CoreResult<()> {
    conn.prepare_cached(sql::UPSERT_USER)
        .and_then(|mut s| s.execute(params![user.as_str(), name]))
        .map_err(map_err)?;
    Ok(())
}

/// A user's profile, if the engine has seen them.
pub(super) fn load(conn: &Connection, user: UserId) -> CoreResult<Option<UserProfile>> {
    let row: Option<(Option<String>, Option<i64>)> = conn
        .prepare_cached(sql::USER)
        .and_then(|mut s| {
            s.query_row([user.as_str()], |r| {
                Ok((r.get("display_name")?, r.get("last_seen")?))
            })
            .optional()
        })
        .map_err(map_err)?;
    Ok(row.map(|(display_name, last_seen)| UserProfile {
        user,
        display_name,
        last_seen: last_seen.and_then(DateTime::from_timestamp_millis),
    }))
}

/// Records when a user went offline, creating the profile if needed.
pub(super) fn set_last_seen(conn: &Connection, user: &UserId, at: DateTime<Utc>) -> CoreResult<()> {
    conn.prepare_cached(sql::SET_LAST_SEEN)
        .and_then(|mut s| s.execute(params![user.as_str(), ms(at)]))
        .map_err(map_err)?;
    Ok(())
}
