//! Sessions.

use async_trait::async_trait;

use super::PgStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl SessionStore for PgStorage {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, user_dn, account_name, display_name, is_admin, created_at, last_seen_at,
             roles, authenticated_at, pwd_last_set, pwd_checked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&s.id_hash)
        .bind(&s.user_id)
        .bind(&s.user_dn)
        .bind(&s.account_name)
        .bind(&s.display_name)
        .bind(s.is_admin)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(&s.roles)
        .bind(s.authenticated_at)
        .bind(&s.pwd_last_set)
        .bind(s.pwd_checked_at)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StorageError> {
        Ok(sqlx::query_as::<_, SessionRecord>("SELECT * FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn move_session(&self, id_hash: &str, new_id_hash: &str) -> Result<bool, StorageError> {
        // An UPDATE of the key: an end of the user's sessions running at the same time waits for
        // the row and ends it under its new id (a delete and an insert would slip past it). The
        // change feed's trigger tells every other instance to forget the old id.
        let done = sqlx::query("UPDATE sessions SET id_hash = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(new_id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn session_reauthenticated(&self, id_hash: &str, at: Timestamp, roles: &str) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE sessions SET authenticated_at = $1, last_seen_at = $2, roles = $3, is_admin = $4 WHERE id_hash = $5",
        )
        .bind(at)
        .bind(at)
        .bind(roles)
        .bind(roles.split(',').any(|r| r == "admin"))
        .bind(id_hash)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn session_password_checked(
        &self,
        id_hash: &str,
        pwd_last_set: Option<&str>,
        at: Timestamp,
        previous: Option<Timestamp>,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE sessions SET pwd_last_set = $1, pwd_checked_at = $2 WHERE id_hash = $3 AND pwd_checked_at IS NOT DISTINCT FROM $4")
            .bind(pwd_last_set)
            .bind(at)
            .bind(id_hash)
            .bind(previous)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn session_password_renewed(
        &self,
        id_hash: &str,
        pwd_last_set: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET pwd_last_set = $1, pwd_checked_at = $2 WHERE id_hash = $3")
            .bind(pwd_last_set)
            .bind(at)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&mut *self.conn().await?).await?;
        Ok(())
    }

    async fn session_proof(&self, id_hash: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET proof_service = $1, proof_at = $2 WHERE id_hash = $3")
            .bind(service)
            .bind(at)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(idle_before)
            .bind(created_before)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }
}
