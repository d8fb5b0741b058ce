//! Users: display profiles and last-seen times.

use chat_core::ports::UserProfile;
use chat_core::{Result as CoreResult, UserId};
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

use crate::error::map_pg;
use crate::{rows, sql};

/// Creates the profile or updates its display name (a missing name keeps the old one).
pub(super) async fn upsert(c: &Object, user: &UserId, name: Option<&str>) -> CoreResult<()> {
    let stmt = c.prepare_cached(sql::UPSERT_USER).await.map_err(map_pg)?;
    c.execute(&stmt, &[&user.as_str(), &name])
        .await
        .map_err(map_pg)?;
    Ok(())
}

/// A user's profile, if the engine has seen them.
pub(super) async fn load(c: &Object, user: &UserId) -> CoreResult<Option<UserProfile>> {
    let stmt = c.prepare_cached(sql::USER).await.map_err(map_pg)?;
    c.query_opt(&stmt, &[&user.as_str()])
        .await
        .map_err(map_pg)?
        .map(|r| rows::profile(&r))
        .transpose()
}

/// Records when a user went offline, creating the profile if needed.
pub(super) async fn set_last_seen(c: &Object, user: &UserId, at: DateTime<Utc>) -> CoreResult<()> {
    let stmt = c.prepare_cached(sql::SET_LAST_SEEN).await.map_err(map_pg)?;
    c.execute(&stmt, &[&user.as_str(), &at])
        .await
        .map_err(map_pg)?;
    Ok(())
}
