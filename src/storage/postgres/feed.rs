//! What other instances change, heard as it is committed: triggers on the cached tables NOTIFY
//! `stjarna_changes` with `session:<id hash>`, `user:<user id>`, `flow:<flow id>` or `all`
//! (migration 2), and this listener tells the cache. Its connection is its own, outside the pool.
//!
//! A connection can die without a word (a firewall dropping an idle connection, a database that
//! moved): every instance therefore sends `ping` every [`PING`], and a listener that hears nothing
//! for [`SILENCE`] counts the feed as lost. While it is lost the cache serves nothing.

use std::sync::Weak;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgListener, PgPool};
use tokio::sync::watch;

use crate::storage::cache::{CachedStorage, Changed};
use crate::storage::conns::{self, Conns};

const CHANNEL: &str = "stjarna_changes";
const PING: Duration = Duration::from_secs(5);
const SILENCE: Duration = Duration::from_secs(15);

/// Listens (on `listener_pool`) and pings (through `pool`) for as long as the cache lives.
pub fn listen(listener_pool: PgPool, pool: Conns<PgConnection>, cache: &std::sync::Arc<CachedStorage>) {
    let (mut closed, mut ping_closed) = (cache.closed(), cache.closed());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PING) => {}
                _ = ping_closed.changed() => return,
            }
            let pinged = match conns::get(&pool).await {
                Ok(mut conn) => {
                    sqlx::query("SELECT pg_notify($1, 'ping')").bind(CHANNEL).execute(&mut *conn).await.map(|_| ())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = pinged {
                tracing::debug!(error = %e, "cannot ping the change feed");
            }
        }
    });
    let cache = std::sync::Arc::downgrade(cache);
    tokio::spawn(async move {
        loop {
            match PgListener::connect_with(&listener_pool).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen(CHANNEL).await {
                        tracing::warn!(error = %e, "cannot LISTEN for other instances' changes; retrying");
                    } else if !hear(&mut listener, &cache, &mut closed).await {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for other instances' changes; retrying"),
            }
            let Some(c) = cache.upgrade() else { return };
            c.heard(Changed::Lost);
            drop(c);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Passes notices on until the connection is lost or silent (true) or the cache is gone (false).
async fn hear(listener: &mut PgListener, cache: &Weak<CachedStorage>, closed: &mut watch::Receiver<()>) -> bool {
    match cache.upgrade() {
        Some(c) => c.heard(Changed::Listening),
        None => return false,
    }
    loop {
        // On silence the listener is dropped (and a new one made), so cutting a wait short is safe.
        let next = tokio::select! {
            next = tokio::time::timeout(SILENCE, listener.try_recv()) => next,
            _ = closed.changed() => return false,
        };
        let Some(c) = cache.upgrade() else { return false };
        match next {
            Ok(Ok(Some(notice))) if notice.payload() == "ping" => {}
            Ok(Ok(Some(notice))) => match parse(notice.payload()) {
                Some(change) => c.heard(change),
                None => tracing::warn!(payload = notice.payload(), "unknown change notice"),
            },
            Ok(Ok(None)) => return true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "lost the feed of other instances' changes");
                return true;
            }
            Err(_) => {
                tracing::warn!("the feed of other instances' changes went silent; listening again");
                return true;
            }
        }
    }
}

fn parse(payload: &str) -> Option<Changed> {
    if payload == "all" {
        return Some(Changed::Everything);
    }
    let (kind, key) = payload.split_once(':')?;
    Some(match kind {
        "session" => Changed::Session(key.to_string()),
        "user" => Changed::User(key.to_string()),
        "flow" => Changed::BankIdFlow(key.to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_what_changed() {
        assert_eq!(parse("session:ab12"), Some(Changed::Session("ab12".into())));
        assert_eq!(parse("user:S-1-5-21-1:x"), Some(Changed::User("S-1-5-21-1:x".into())));
        assert_eq!(parse("flow:f1"), Some(Changed::BankIdFlow("f1".into())));
        assert_eq!(parse("all"), Some(Changed::Everything));
        assert_eq!(parse("other:1"), None);
        assert_eq!(parse("nothing"), None);
    }
}
