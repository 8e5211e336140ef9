//! The embedded SQLite backend (WAL mode): one file per storage role.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool::managed::Metrics;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

use crate::clock::Timestamp;
use crate::storage::conns::{self, Backend, Conn, Conns};
use crate::storage::{EnrolMode, Storage, StorageError};

mod audit;
mod enrolments;
mod flows;
mod jobs;
mod outbox;
mod sessions;
mod throttle;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A connection last handed out this long ago or more is pinged before it is handed out again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(10);

/// Every so many times a connection is handed out, it is pinged first.
const PING_EVERY: usize = 64;

/// A connection's thread runs what it is sent in order, so a statement abandoned half way, or the
/// rollback of a transaction dropped unfinished, is done before the next user's first statement
/// (and a connection still inside a transaction is pinged whatever this says). It is pinged before
/// use only when it was last handed out [`PING_AFTER_IDLE`] ago or more, and every [`PING_EVERY`]
/// times, so that a connection whose thread died (a thread that cannot roll a transaction back
/// stops) is not handed out for ever under steady traffic.
impl Backend for SqliteConnection {
    fn ping_before_use(&self, metrics: &Metrics) -> bool {
        metrics.last_used() >= PING_AFTER_IDLE || metrics.recycle_count.is_multiple_of(PING_EVERY)
    }
    const PING_AFTER_TRANSACTION: bool = false;
}

/// Records an added service, or renews a replaced one (its cooling-off starts again), inside the
/// transaction that stores what it needs. False when there was one already (add) or none (replace).
async fn record_enrolment(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: &str,
    service: &str,
    at: Timestamp,
    mode: EnrolMode,
) -> Result<bool, StorageError> {
    let sql = match mode {
        EnrolMode::Add => {
            "INSERT INTO enrolments (enrolled_at, user_id, service) VALUES (?, ?, ?) ON CONFLICT (user_id, service) DO NOTHING"
        }
        EnrolMode::Replace => {
            "UPDATE enrolments SET enrolled_at = ?, last_used_at = NULL, cooldown_lifted_at = NULL, restarted_at = NULL
             WHERE user_id = ? AND service = ?"
        }
    };
    let done = sqlx::query(sql).bind(at).bind(user_id).bind(service).execute(&mut **tx).await?;
    Ok(done.rows_affected() == 1)
}

/// Begins a transaction that changes what proves the user (their enrolments, and the sessions
/// that end with them), holding the database's write lock from its first statement, and none
/// for a session that has ended meanwhile: None then, with nothing done.
async fn begin_for_user<'a>(
    conn: &'a mut Conn<SqliteConnection>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<Option<sqlx::Transaction<'a, sqlx::Sqlite>>, StorageError> {
    let mut tx = conn.begin().await?;
    // A write first takes the write lock (SQLite has one writer): every change after this one
    // sees what the one before it did.
    let there = sqlx::query("UPDATE sessions SET user_id = user_id WHERE id_hash = ? AND user_id = ?")
        .bind(keep.unwrap_or(""))
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if keep.is_some() && there.rows_affected() == 0 {
        return Ok(None);
    }
    Ok(Some(tx))
}

/// Ends every session of the user but `keep` (an id hash), inside the transaction that changed
/// what proves them. How many ended.
async fn end_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

#[derive(Clone)]
pub struct SqliteStorage {
    pool: Conns<SqliteConnection>,
    /// SQLite has one writer: decisions (limits) are taken one at a time in this process, so that
    /// a burst never meets a busy database in the middle of one.
    decisions: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Held while the database is open: one process per file (what this process keeps in memory
    /// is only right when no other process writes the file).
    _owner: Option<std::sync::Arc<std::fs::File>>,
}

/// Takes the lock file beside the database; refused when another process holds it.
fn own(database: &std::path::Path) -> Result<Option<std::sync::Arc<std::fs::File>>, StorageError> {
    let mut lock = database.as_os_str().to_os_string();
    lock.push(".lock");
    let io = |e| StorageError::Open(sqlx::Error::Io(e));
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(std::sync::Arc::new(file))),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::InUse(database.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

impl SqliteStorage {
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StorageError::Open)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::Open(sqlx::Error::Io(e)))?;
        }
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let owner = if in_memory { None } else { own(options.get_filename())? };
        let pool = conns::pool(options, max_connections)?;
        // A first connection now, so that a database that cannot be opened stops the start.
        drop(conns::get(&pool).await.map_err(StorageError::Open)?);
        Ok(Self { pool, decisions: Default::default(), _owner: owner })
    }

    pub async fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = conns::get(&self.pool).await.map_err(StorageError::Open)?;
        MIGRATOR.run(&mut *conn).await.map_err(StorageError::Migrate)
    }

    /// A connection of the pool; it goes back when dropped.
    async fn conn(&self) -> Result<Conn<SqliteConnection>, StorageError> {
        Ok(conns::get(&self.pool).await?)
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&mut *self.conn().await?).await?;
        Ok(())
    }
}
