//! What other instances change, heard as it is committed: triggers on the cached tables NOTIFY
//! `stjarna_changes` with `session:<id hash>`, `user:<user id>` or `flow:<flow id>` (migration
//! 2), and this listener tells the cache. Its connection is its own, outside the pool. When the
//! connection is lost the cache stops serving until a new one listens again.

use std::sync::Weak;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use crate::storage::cache::{CachedStorage, Changed};

const CHANNEL: &str = "stjarna_changes";

/// Listens for as long as the cache lives.
pub fn listen(pool: PgPool, cache: &std::sync::Arc<CachedStorage>) {
    let mut closed = cache.closed();
    let cache = std::sync::Arc::downgrade(cache);
    tokio::spawn(async move {
        loop {
            match PgListener::connect_with(&pool).await {
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

/// Passes notices on until the connection is lost (true) or the cache is gone (false).
async fn hear(listener: &mut PgListener, cache: &Weak<CachedStorage>, closed: &mut watch::Receiver<()>) -> bool {
    match cache.upgrade() {
        Some(c) => c.heard(Changed::Listening),
        None => return false,
    }
    loop {
        let next = tokio::select! {
            next = listener.try_recv() => next,
            _ = closed.changed() => return false,
        };
        let Some(c) = cache.upgrade() else { return false };
        match next {
            Ok(Some(notice)) => match parse(notice.payload()) {
                Some(change) => c.heard(change),
                None => tracing::warn!(payload = notice.payload(), "unknown change notice"),
            },
            Ok(None) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "lost the feed of other instances' changes");
                return true;
            }
        }
    }
}

fn parse(payload: &str) -> Option<Changed> {
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
        assert_eq!(parse("other:1"), None);
        assert_eq!(parse("nothing"), None);
    }
}
