//! The PostgreSQL backend, for several instances behind a load balancer: one file per storage
//! role, the same decisions as SQLite's (one statement, or a transaction holding a row or an
//! advisory lock), and `FOR UPDATE SKIP LOCKED` where workers share a queue. TLS with rustls:
//! `sslmode=verify-full&sslrootcert=/path/ca.pem` in `database.url`.

use std::str::FromStr;

use async_trait::async_trait;
use deadpool::managed::Metrics;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::clock::Timestamp;
use crate::storage::conns::{self, Backend, Conn, Conns};
use crate::storage::{EnrolMode, Storage, StorageError};

mod audit;
mod enrolments;
mod feed;
mod flows;
mod jobs;
mod outbox;
mod sessions;
mod throttle;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A connection is pinged before every use. After a fail-over that leaves the old connections dead
/// without a reset (a virtual address moved, a firewall's state lost), a statement on one would
/// wait minutes for TCP to give up; the ping is cut off after five seconds and the connection
/// replaced. (Pinging only a connection idle for 500 ms saved no measurable CPU.) A transaction's
/// connection is pinged as it goes back too, so that a rollback never waits in its buffer.
impl Backend for PgConnection {
    fn ping_before_use(&self, _: &Metrics) -> bool {
        true
    }
    const PING_AFTER_TRANSACTION: bool = true;
}

/// Records an added service, or renews a replaced one (its cooling-off starts again), inside the
/// transaction that stores what it needs. False when there was one already (add) or none (replace).
async fn record_enrolment(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: &str,
    service: &str,
    at: Timestamp,
    mode: EnrolMode,
) -> Result<bool, StorageError> {
    let sql = match mode {
        EnrolMode::Add => {
            "INSERT INTO enrolments (enrolled_at, user_id, service) VALUES ($1, $2, $3) ON CONFLICT (user_id, service) DO NOTHING"
        }
        EnrolMode::Replace => {
            "UPDATE enrolments SET enrolled_at = $1, last_used_at = NULL, cooldown_lifted_at = NULL, restarted_at = NULL
             WHERE user_id = $2 AND service = $3"
        }
    };
    let done = sqlx::query(sql).bind(at).bind(user_id).bind(service).execute(&mut **tx).await?;
    Ok(done.rows_affected() == 1)
}

/// Begins a transaction that changes what proves the user (their enrolments, and the sessions
/// that end with them). One such transaction of a user's runs at a time (an advisory lock, not
/// rows: the tables would be locked in different orders by different changes, and deadlock), and
/// none runs for a session that has ended meanwhile: None then, with nothing done.
async fn begin_for_user<'a>(
    conn: &'a mut Conn<PgConnection>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<Option<sqlx::Transaction<'a, sqlx::Postgres>>, StorageError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('stjarna-user:' || $1, 0))")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if let Some(keep) = keep {
        let there = sqlx::query("SELECT 1 FROM sessions WHERE id_hash = $1 AND user_id = $2")
            .bind(keep)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if there.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(tx))
}

/// Ends every session of the user but `keep` (an id hash), inside the transaction that changed
/// what proves them. How many ended.
async fn end_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

#[derive(Clone)]
pub struct PgStorage {
    pool: Conns<PgConnection>,
    /// One connection of its own for LISTEN, so that it never takes one the queries need.
    listener_pool: PgPool,
}

impl PgStorage {
    pub async fn open(url: &str, max_connections: u32, password: Option<&SecretString>) -> Result<Self, StorageError> {
        let mut options = PgConnectOptions::from_str(url).map_err(StorageError::Open)?;
        if let Some(password) = password {
            options = options.password(password.expose_secret());
        }
        let pool = conns::pool(options.clone(), max_connections)?;
        // A first connection now, so that a database that cannot be reached stops the start.
        drop(conns::get(&pool).await.map_err(StorageError::Open)?);
        let listener_pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
        Ok(Self { pool, listener_pool })
    }

    /// Tells `cache` what other instances change, for as long as it lives.
    pub fn feed(&self, cache: &std::sync::Arc<crate::storage::cache::CachedStorage>) {
        feed::listen(self.listener_pool.clone(), self.pool.clone(), cache);
    }

    /// Brings the schema up to date; sqlx holds an advisory lock meanwhile, so instances starting
    /// together migrate one after the other.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        let mut conn = conns::get(&self.pool).await.map_err(StorageError::Open)?;
        MIGRATOR.run(&mut *conn).await.map_err(StorageError::Migrate)
    }

    async fn conn(&self) -> Result<Conn<PgConnection>, StorageError> {
        Ok(conns::get(&self.pool).await?)
    }
}

#[async_trait]
impl Storage for PgStorage {
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&mut *self.conn().await?).await?;
        Ok(())
    }
}
