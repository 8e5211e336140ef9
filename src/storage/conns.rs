//! The database connections, kept in a pool of our own (deadpool) rather than sqlx's.
//!
//! sqlx's pool pings each connection it is given back, whatever happened on it, and (by default)
//! again before handing it out: two round trips around every statement. On SQLite, where sqlx
//! runs each connection on a thread of its own and hands it every statement over a channel, each
//! such round trip wakes two sleeping threads and cost about as much portal CPU as the statement
//! itself; on PostgreSQL it is a round trip over the network.
//!
//! Here a connection goes back as it is, and is pinged before it is handed out again only when
//! its backend asks for it ([`Backend::ping_before_use`]); the ping waits for what was sent on it
//! before (a statement abandoned half way), and a connection whose ping fails, or that is still
//! inside a transaction after it, is replaced.
//!
//! A connection is closed once it is 30 minutes old or idle for 10 minutes (sqlx's defaults), and
//! a caller waits five seconds in all for one, dead idle connections' pings included.
//!
//! A transaction dropped unfinished is rolled back by sqlx with the connection's next command.
//! SQLite's thread runs the rollback at once, before anything the next user sends. PostgreSQL's
//! rollback waits in the connection's buffer, and the transaction would hold its locks until the
//! connection is used again: a connection whose transaction was dropped unfinished (its rollback
//! still in the buffer) is therefore pinged as it goes back, by a task of its own, and only then
//! returned; one whose transaction ended goes back at once. A PostgreSQL connection dropped
//! while its BEGIN was under way (the server inside a transaction that sqlx does not know of) is
//! closed; SQLite's thread rolls such a transaction back by itself, and closing that connection too
//! only costs a new one.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, QueueMode, RecycleError, RecycleResult};
use sqlx::{ConnectOptions, Connection, Transaction};

use crate::storage::StorageError;

/// How long a connection may take to answer the ping before use (it answers after what it was
/// sent before); one that does not is replaced.
const RECYCLE_WAIT: Duration = Duration::from_secs(5);

/// How long a caller waits for a connection in all: for a free one, for the pings of idle ones
/// that turn out dead (each may take [`RECYCLE_WAIT`]), and for a new one.
const GET_WAIT: Duration = Duration::from_secs(5);

/// A connection is closed once it is this old, so that a database that moved (a new address
/// behind the same name, a primary that became a replica) is reached anew (sqlx's default).
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// A connection idle this long is closed rather than used again (sqlx's default).
const MAX_IDLE: Duration = Duration::from_secs(10 * 60);

/// What differs between the backends' connections.
pub(crate) trait Backend: Connection + 'static {
    /// Whether the connection is pinged before it is handed out again.
    fn ping_before_use(&self, metrics: &Metrics) -> bool;
    /// Whether a connection that had a transaction on it is pinged as it goes back.
    const PING_AFTER_TRANSACTION: bool;
}

pub(crate) struct Connector<C: Backend> {
    options: C::Options,
}

impl<C: Backend> managed::Manager for Connector<C> {
    type Type = C;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<C, sqlx::Error> {
        self.options.connect().await
    }

    async fn recycle(&self, conn: &mut C, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        if metrics.age() >= MAX_LIFETIME || metrics.last_used() >= MAX_IDLE {
            return Err(RecycleError::message("open or idle too long"));
        }
        if conn.is_in_transaction() || conn.ping_before_use(metrics) {
            conn.ping().await?;
            if conn.is_in_transaction() {
                return Err(RecycleError::message("still inside a transaction"));
            }
        }
        Ok(())
    }
}

pub(crate) type Conns<C> = managed::Pool<Connector<C>>;

/// A connection from the pool; it goes back when dropped.
pub(crate) struct Conn<C: Backend> {
    conn: Option<Object<Connector<C>>>,
    transacted: bool,
    /// A BEGIN was sent and its answer not yet read.
    beginning: bool,
}

impl<C: Backend> Conn<C> {
    /// Begins a transaction (and marks the connection for a ping as it goes back, where the
    /// backend needs one).
    pub async fn begin(&mut self) -> Result<Transaction<'_, C::Database>, sqlx::Error> {
        let Conn { conn, transacted, beginning } = self;
        (*transacted, *beginning) = (true, true);
        let conn: &mut C = conn.as_mut().expect("a connection is there until it is dropped");
        let tx = conn.begin().await?;
        *beginning = false;
        Ok(tx)
    }
}

impl<C: Backend> Drop for Conn<C> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.beginning {
            // Dropped while its BEGIN was under way: the server may be inside a transaction that
            // sqlx does not know of (it queues no rollback), and the next user's statements would
            // run in it. Closing the connection ends it.
            drop(Object::take(conn));
            return;
        }
        // A transaction dropped unfinished leaves its rollback in the write buffer (sqlx queues it
        // there); one that ended (committed, rolled back) leaves nothing to send.
        if !(C::PING_AFTER_TRANSACTION && self.transacted && conn.should_flush()) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let mut conn = conn;
                    if !matches!(tokio::time::timeout(RECYCLE_WAIT, conn.ping()).await, Ok(Ok(()))) {
                        // Not returned: closing it ends the transaction on the server.
                        drop(Object::take(conn));
                    }
                });
            }
            Err(_) => drop(Object::take(conn)),
        }
    }
}

impl<C: Backend> Deref for Conn<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn.as_ref().expect("a connection is there until it is dropped")
    }
}

impl<C: Backend> DerefMut for Conn<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().expect("a connection is there until it is dropped")
    }
}

/// A pool of at most `max` connections; a caller waits at most [`GET_WAIT`] for one. The
/// connection given back last goes out first, so that a few connections (and, on SQLite, their
/// threads) do the work while the others sit idle.
pub(crate) fn pool<C: Backend>(options: C::Options, max: u32) -> Result<Conns<C>, StorageError> {
    let wait = Some(GET_WAIT);
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
pub(crate) async fn get<C: Backend>(conns: &Conns<C>) -> Result<Conn<C>, sqlx::Error> {
    let Ok(got) = tokio::time::timeout(GET_WAIT, conns.get()).await else {
        return Err(sqlx::Error::PoolTimedOut);
    };
    match got {
        Ok(conn) => Ok(Conn { conn: Some(conn), transacted: false, beginning: false }),
        Err(PoolError::Backend(e)) => Err(e),
        Err(PoolError::Timeout(_)) => Err(sqlx::Error::PoolTimedOut),
        Err(PoolError::Closed) => Err(sqlx::Error::PoolClosed),
        Err(other) => Err(sqlx::Error::Configuration(other.to_string().into())),
    }
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::{PgConnectOptions, PgConnection};
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

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
        let conns = pool::<SqliteConnection>(options.clone(), 1).unwrap();
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
        let conns = pool::<SqliteConnection>(options, 1).unwrap();
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

    /// A pool of at most `max` connections to the PostgreSQL server the test script starts
    /// (`STJARNA_TEST_PG_URL`), with its URL; None outside CI without one, a failure in CI.
    fn postgres_pool(max: u32) -> Option<(String, Conns<PgConnection>)> {
        let url = match std::env::var("STJARNA_TEST_PG_URL") {
            Ok(url) => url,
            Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("CI=true but no PostgreSQL: STJARNA_TEST_PG_URL is not set (run ./scripts/test)")
            }
            Err(_) => return None,
        };
        let options = <PgConnectOptions as std::str::FromStr>::from_str(&url).unwrap();
        Some((url, pool::<PgConnection>(options, max).unwrap()))
    }

    /// PostgreSQL sends the rollback of a transaction dropped unfinished only with the
    /// connection's next command: the connection is pinged as it goes back, so that the
    /// transaction's locks are released at once rather than when the connection is next used.
    #[tokio::test]
    async fn a_postgresql_transaction_dropped_unfinished_releases_its_locks_at_once() {
        let Some((url, conns)) = postgres_pool(2) else { return };
        let key: i64 = rand::random();
        let mut conn = get(&conns).await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *tx).await.unwrap();
        drop(tx);
        drop(conn);

        let mut other = PgConnection::connect(&url).await.unwrap();
        let mut free = false;
        for _ in 0..50 {
            let (got,): (bool,) =
                sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut other).await.unwrap();
            if got {
                free = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(free, "the dropped transaction still held its lock a second later");
        // The connection went back to the pool, out of its transaction.
        let conn = get(&conns).await.unwrap();
        assert!(!conn.is_in_transaction());
        assert_eq!(conns.status().size, 1, "the connection was kept, not replaced");
    }

    /// A connection whose transaction was committed goes back at once: only a rollback left in
    /// its buffer needs the ping (which took a round trip after every transaction).
    #[tokio::test]
    async fn a_postgresql_connection_whose_transaction_ended_goes_back_at_once() {
        let Some((_, conns)) = postgres_pool(1) else { return };
        let mut conn = get(&conns).await.unwrap();
        let tx = conn.begin().await.unwrap();
        tx.commit().await.unwrap();
        drop(conn);
        assert_eq!(conns.status().available, 1, "back in the pool without a round trip");

        // Dropped unfinished: held by the ping until the server has rolled it back.
        let mut conn = get(&conns).await.unwrap();
        let tx = conn.begin().await.unwrap();
        drop(tx);
        drop(conn);
        assert_eq!(conns.status().available, 0, "pinged before it goes back");
        let conn = get(&conns).await.unwrap();
        assert!(!conn.is_in_transaction());
    }

    /// A request dropped while its BEGIN is under way leaves the server inside a transaction sqlx
    /// knows nothing of (it queues no rollback): the connection is closed, not handed to the next
    /// user, whose statements would otherwise run, uncommitted, inside it.
    #[tokio::test]
    async fn a_postgresql_connection_dropped_during_its_begin_is_closed() {
        let Some((url, conns)) = postgres_pool(1) else { return };
        let mut conn = get(&conns).await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
        assert_eq!(conns.status().size, 1);
        // A slow statement abandoned first, so that the BEGIN's answer (which comes after the
        // statement's) cannot be there when the BEGIN is polled once, and dropped.
        let slow = sqlx::query("SELECT pg_sleep(0.3)").execute(&mut *conn);
        assert!(futures_util::FutureExt::now_or_never(slow).is_none());
        assert!(futures_util::FutureExt::now_or_never(conn.begin()).is_none());
        drop(conn);
        assert_eq!(conns.status().size, 0, "closed, not returned");
        // The next user's statement ends with itself: a lock it takes for its transaction is
        // free for another connection at once (inside a stray transaction it would stay held).
        let key: i64 = rand::random();
        let mut next = get(&conns).await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *next).await.unwrap();
        let mut other = PgConnection::connect(&url).await.unwrap();
        let (got,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut other).await.unwrap();
        assert!(got, "the next user's statement ran inside the abandoned BEGIN's transaction");
    }

    /// A pooled connection is pinged before it is handed out, so one the server ended meanwhile (a
    /// restart, a fail-over) is replaced instead of failing a request, however many of them died.
    /// (Skipping that ping for a connection used within the last half second saved a little CPU,
    /// but after a fail-over that leaves the old connections silently dead, their statements would
    /// wait for TCP to give up.)
    #[tokio::test]
    async fn postgresql_connections_the_server_ended_while_idle_are_replaced_before_use() {
        let Some((url, conns)) = postgres_pool(4) else { return };
        // Four connections, held at once so that each is its own, then idle in the pool.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(get(&conns).await.unwrap());
        }
        let mut pids = Vec::new();
        for conn in &mut held {
            let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(&mut **conn).await.unwrap();
            pids.push(pid);
        }
        drop(held);
        assert_eq!(conns.status().size, 4);

        let mut admin = PgConnection::connect(&url).await.unwrap();
        // With a timeout, each call waits until that backend has ended.
        let ended: Vec<(bool,)> =
            sqlx::query_as("SELECT pg_terminate_backend(pid, 5000) FROM unnest($1::int[]) AS pid")
                .bind(&pids)
                .fetch_all(&mut admin)
                .await
                .unwrap();
        assert_eq!(ended, vec![(true,); 4], "the server ended the pool's connections");
        for n in 0..8 {
            let mut conn = get(&conns).await.unwrap_or_else(|e| panic!("connection {n}: {e}"));
            let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("statement {n} after the server ended the connections: {e}"));
            assert!(!pids.contains(&pid));
        }
    }
}
