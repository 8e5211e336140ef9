//! The SQLite connections, kept in a pool of our own (deadpool) rather than sqlx's.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it every statement over a
//! channel. Its pool then pings a connection each time it is given back, whatever happened on
//! it: one more round trip to that thread after every statement, which wakes two sleeping
//! threads and cost about as much portal CPU as the statement itself. Here a connection goes back
//! as it is: the thread runs the commands it is sent in order, so a statement abandoned half way,
//! or the rollback of a transaction dropped unfinished, is done before the next user's first
//! statement. Before a connection is handed out again it is pinged (which waits for that thread
//! to catch up) and replaced if the ping fails or it is still inside a transaction, when
//! - it was last handed out [`PING_AFTER_IDLE`] ago or more;
//! - its thread has not yet rolled back a transaction dropped unfinished (or never will: a thread
//!   that cannot roll one back stops, and every command on it fails from then on);
//! - it has been handed out [`PING_EVERY`] times since the last such check, so that a connection
//!   whose thread died some other way is not handed out for ever under steady traffic.

use std::time::Duration;

use deadpool::managed::{self, Metrics, PoolError, QueueMode, RecycleError, RecycleResult};
use sqlx::ConnectOptions;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::storage::StorageError;

/// A connection last handed out this long ago or more is pinged before it is handed out again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// Every so many times a connection is handed out, it is pinged first.
const PING_EVERY: usize = 64;

/// How long a connection may take to answer that ping (it answers after what it was sent before).
const RECYCLE_WAIT: Duration = Duration::from_secs(5);

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
        let check = conn.is_in_transaction()
            || metrics.last_used() >= PING_AFTER_IDLE
            || metrics.recycle_count.is_multiple_of(PING_EVERY);
        if check {
            conn.ping().await?;
            if conn.is_in_transaction() {
                return Err(RecycleError::message("still inside a transaction"));
            }
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
        .recycle_timeout(Some(RECYCLE_WAIT))
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
    use super::*;

    /// A new database file in `dir`.
    fn in_dir(dir: &tempfile::TempDir) -> SqliteConnectOptions {
        SqliteConnectOptions::new().filename(dir.path().join("t.db")).create_if_missing(true)
    }

    /// What sqlx's ping on release made sure of: a transaction dropped unfinished is rolled back
    /// before the connection's next user runs anything on it.
    #[tokio::test]
    async fn a_transaction_dropped_unfinished_is_rolled_back_before_the_next_user() {
        let dir = tempfile::tempdir().unwrap();
        let options = in_dir(&dir);
        // One connection: the next user gets the very connection the transaction was on.
        let conns = pool(options.clone(), 1).unwrap();
        let mut conn = get(&conns).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *conn).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await.unwrap();
        drop(tx);
        drop(conn);

        let mut next = get(&conns).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&mut *next).await.unwrap();
        assert_eq!(n, 0, "the dropped transaction's insert was rolled back");
        assert!(!next.is_in_transaction(), "the connection is not left inside a transaction");
        // What it writes now is committed as it goes: another connection sees it.
        sqlx::query("INSERT INTO t VALUES (2)").execute(&mut *next).await.unwrap();
        let mut other = options.connect().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&mut other).await.unwrap();
        assert_eq!(n, 1, "another connection sees the write");
    }

    /// A connection left inside a transaction for good (here one forgotten; a thread that could
    /// not roll one back stops with it open) is replaced, not handed out again.
    #[tokio::test]
    async fn a_connection_left_inside_a_transaction_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let options = in_dir(&dir);
        let conns = pool(options, 1).unwrap();
        let mut conn = get(&conns).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *conn).await.unwrap();
        drop(conn);
        // Handed out once more, so that the next hand-out is not one of the periodic checks.
        drop(get(&conns).await.unwrap());

        let mut conn = get(&conns).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *tx).await.unwrap();
        std::mem::forget(tx);
        assert!(conn.is_in_transaction());
        drop(conn);

        let mut next = get(&conns).await.unwrap();
        assert!(!next.is_in_transaction(), "a connection inside a transaction was handed out");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&mut *next).await.unwrap();
        assert_eq!(n, 0, "the transaction's insert was never committed");
    }
}
