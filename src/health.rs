//! What `GET /health` reports to load balancers and monitoring: whether the database and the
//! directory answer.
//!
//! The endpoint is anonymous, so what it asks is asked at most once every [`FRESH`], however many
//! requests come: requests that arrive during a check wait for it and share its answer. A flood of
//! health requests then costs the directory nothing that logins and resets need (each check takes
//! a pooled service connection for a WhoAmI).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::directory::Directory;
use crate::storage::Storage;

/// How long an answer is given again before the parts are asked again.
pub const FRESH: Duration = Duration::from_secs(2);

/// Whether each part answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub database: bool,
    pub directory: bool,
}

pub struct Health {
    store: Arc<dyn Storage>,
    directory: Arc<dyn Directory>,
    last: tokio::sync::Mutex<Option<(Instant, Report)>>,
}

impl Health {
    pub fn new(store: Arc<dyn Storage>, directory: Arc<dyn Directory>) -> Self {
        Self { store, directory, last: tokio::sync::Mutex::new(None) }
    }

    /// The parts' state, asked now or within [`FRESH`].
    pub async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = *last
            && at.elapsed() < FRESH
        {
            return report;
        }
        let database =
            self.store.ping().await.inspect_err(|e| tracing::warn!(error = %e, "health: database unavailable"));
        let directory =
            self.directory.ping().await.inspect_err(|e| tracing::warn!(error = %e, "health: directory unavailable"));
        let report = Report { database: database.is_ok(), directory: directory.is_ok() };
        *last = Some((Instant::now(), report));
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::fake::FakeDirectory;

    #[tokio::test]
    async fn many_requests_at_once_ask_the_directory_once() {
        let directory = Arc::new(FakeDirectory::default());
        let (store, _dir) = crate::testing::store().await;
        let health = Arc::new(Health::new(store, directory.clone()));
        let asks = (0..50).map(|_| {
            let health = health.clone();
            tokio::spawn(async move { health.report().await })
        });
        for ask in futures_util::future::join_all(asks).await {
            assert_eq!(ask.unwrap(), Report { database: true, directory: true });
        }
        assert_eq!(directory.pings(), 1);
    }
}
