//! Presence leases: one sorted set per user, `{prefix}:p:{user}`, member = node id,
//! score = the lease's expiry in milliseconds of Redis's own clock (`TIME`), so nodes
//! whose clocks disagree still agree on who is online.
//!
//! Each call is one round trip: the leases of a whole batch of users are renewed by one
//! pipeline of scripts (one script per [`CHUNK`] users, so Redis is never busy with one
//! script for long), and `online` reads a whole list the same way. A renewal prunes
//! expired members and sets the key to expire with its last lease (`PEXPIREAT`), so the
//! set of a user whom every node has forgotten vanishes by itself.

use std::time::Duration;

use chat_core::{NodeId, Result, UserId};
use fred::clients::Client;
use fred::interfaces::{ClientLike, SortedSetsInterface};
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, Value};

use crate::error::{timed_out, unavailable};
use crate::names::Names;
use crate::publisher::Publisher;

/// Users per script call.
pub(crate) const CHUNK: usize = 256;

/// KEYS: the users' sets. ARGV: node id, lease in ms. Renews the node's lease in each.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = string.format('%d', now + tonumber(ARGV[2]))
local past = string.format('%d', now)
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', past)
  redis.call('ZADD', key, expiry, ARGV[1])
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, last[2])
end
return #KEYS
";

/// KEYS: the users' sets. Returns, per key, how many leases have not expired.
const ONLINE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local above = string.format('(%d', now)
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('ZCOUNT', key, above, '+inf')
end
return out
";

/// The presence calls, on the publishing connection.
#[derive(Debug)]
pub(crate) struct Leases<'a> {
    pub(crate) publisher: &'a Publisher,
    pub(crate) names: &'a Names,
}

impl Leases<'_> {
    fn client(&self) -> &Client {
        &self.publisher.client
    }

    fn keys(&self, users: &[UserId]) -> Vec<String> {
        users.iter().map(|u| self.names.presence(u)).collect()
    }

    /// Runs one script per chunk of `users` in one pipeline.
    async fn per_chunk(
        &self,
        what: &str,
        script: &'static str,
        users: &[UserId],
        args: Vec<String>,
    ) -> Result<Vec<Value>> {
        self.publisher.check_connected(what)?;
        let pipeline = self.client().pipeline();
        // fred's pipelines have no `eval`: the command spelled out.
        let eval = CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false);
        for chunk in users.chunks(CHUNK) {
            let mut command = Vec::with_capacity(2 + chunk.len() + args.len());
            command.push(script.to_owned());
            command.push(chunk.len().to_string());
            command.extend(self.keys(chunk));
            command.extend(args.iter().cloned());
            // Queued in memory: nothing is sent until `try_all`.
            let () = pipeline
                .custom(eval.clone(), command)
                .await
                .map_err(|e| unavailable(what, e))?;
        }
        let results = tokio::time::timeout(self.publisher.timeout, pipeline.try_all::<Value>())
            .await
            .map_err(|_| timed_out(what))?;
        results
            .into_iter()
            .map(|r| r.map_err(|e| unavailable(what, e)))
            .collect()
    }

    pub(crate) async fn renew(&self, node: NodeId, users: &[UserId], ttl: Duration) -> Result<()> {
        if users.is_empty() {
            return Ok(());
        }
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.per_chunk(
            "renew presence leases",
            RENEW,
            users,
            vec![node.to_string(), ms.to_string()],
        )
        .await
        .map(drop)
    }

    pub(crate) async fn drop_lease(&self, node: NodeId, user: &UserId) -> Result<()> {
        let what = "drop a presence lease";
        self.publisher.check_connected(what)?;
        let options = Options {
            fail_fast: true,
            timeout: Some(self.publisher.timeout),
            ..Options::default()
        };
        let _: i64 = self
            .client()
            .with_options(&options)
            .zrem(self.names.presence(user), node.to_string())
            .await
            .map_err(|e| unavailable(what, e))?;
        Ok(())
    }

    pub(crate) async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let what = "read presence leases";
        let replies = self.per_chunk(what, ONLINE, users, Vec::new()).await?;
        let mut counts = Vec::with_capacity(users.len());
        for reply in replies {
            let chunk: Vec<i64> = reply.convert().map_err(|e| unavailable(what, e))?;
            counts.extend(chunk);
        }
        if counts.len() != users.len() {
            return Err(chat_core::Error::internal(format!(
                "presence: {} counts for {} users",
                counts.len(),
                users.len()
            )));
        }
        Ok(users
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(u, _)| u.clone())
            .collect())
    }
}
