//! The SQLite connections, kept in a pool of our own (deadpool) rather than sqlx's.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it every statement over a
//! channel. Its pool then pings a connection each time it is given back, whatever happened on
//! it: one more round trip to that thread after every statement, which wakes two sleeping
//! threads and cost about as much portal CPU as the statement itself. Here a connection goes back
//! as it is: the thread runs the commands it is sent in order, so a statement abandoned half way,
//! or the rollback of a transaction dropped unfinished, is done before the next user's first
//! statement. A connection idle for [`PING_AFTER_IDLE`] is asked whether it still works before it
//! is handed out again, and replaced if not.

use std::time::Duration;

use deadpool::managed::{self, Metrics, PoolError, QueueMode, RecycleResult};
use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::storage::StorageError;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

pub(super) struct Connector {
    options: SqliteConnectOptions,
}

impl managed::Manager for Connector {
    type Type = SqliteConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<SqliteConnection, sqlx::Error> {
        self.options.connect().await
    }

    async fn recycle(&self, conn: &mut SqliteConnection, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if metrics.last_used() >= PING_AFTER_IDLE {
            conn.ping().await?;
        }
        Ok(())
    }
}

pub(super) type Conns = managed::Pool<Connector>;
pub(super) type Conn = managed::Object<Connector>;

/// A pool of at most `max` connections; a caller waits at most five seconds for one. The
/// connection given back last goes out first, so that a few connections (and their threads) do
/// the work while the others sit idle.
pub(super) fn pool(options: SqliteConnectOptions, max: u32) -> Result<Conns, StorageError> {
    let wait = Some(Duration::from_secs(5));
    managed::Pool::builder(Connector { options })
        .max_size(max.max(1) as usize)
        .queue_mode(QueueMode::Lifo)
        .wait_timeout(wait)
        .create_timeout(wait)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| StorageError::Open(sqlx::Error::Configuration(e.into())))
}

/// A connection from the pool, as sqlx's own pool would report a failure to get one.
pub(super) async fn get(conns: &Conns) -> Result<Conn, sqlx::Error> {
    conns.get().await.map_err(|e| match e {
        PoolError::Backend(e) => e,
        PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
        PoolError::Closed => sqlx::Error::PoolClosed,
        other => sqlx::Error::Configuration(other.to_string().into()),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    /// What sqlx's ping on release made sure of: a transaction dropped unfinished is rolled back
    /// before the connection's next user runs anything on it.
    #[tokio::test]
    async fn a_transaction_dropped_unfinished_is_rolled_back_before_the_next_user() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.path().join("t.db").display()))
            .unwrap()
            .create_if_missing(true);
        // One connection: the next user gets the very connection the transaction was on.
        let conns = pool(options, 1).unwrap();
        let mut conn = get(&conns).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *conn).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await.unwrap();
        drop(tx);
        drop(conn);

        let mut next = get(&conns).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&mut *next).await.unwrap();
        assert_eq!(n, 0, "the dropped transaction's insert was rolled back");
        // And the connection is not left inside a transaction: a new one begins and commits.
        let mut tx = next.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (2)").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&mut *next).await.unwrap();
        assert_eq!(n, 1);
    }
}
