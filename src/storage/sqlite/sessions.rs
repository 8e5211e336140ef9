//! Sessions.

use async_trait::async_trait;

use super::SqliteStorage;
use crate::clock::Timestamp;
use crate::storage::*;

#[async_trait]
impl SessionStore for SqliteStorage {
    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, user_dn, account_name, display_name, is_admin, created_at, last_seen_at,
             roles, authenticated_at, pwd_last_set, pwd_checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        Ok(sqlx::query_as::<_, SessionRecord>("SELECT * FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn touch_session(&self, id_hash: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(at)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn move_session(&self, id_hash: &str, new_id_hash: &str) -> Result<bool, StorageError> {
        let done = sqlx::query("UPDATE sessions SET id_hash = ? WHERE id_hash = ?")
            .bind(new_id_hash)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn session_reauthenticated(&self, id_hash: &str, at: Timestamp, roles: &str) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE sessions SET authenticated_at = ?, last_seen_at = ?, roles = ?, is_admin = ? WHERE id_hash = ?",
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
        let done = sqlx::query(
            "UPDATE sessions SET pwd_last_set = ?, pwd_checked_at = ? WHERE id_hash = ? AND pwd_checked_at IS ?",
        )
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
        sqlx::query("UPDATE sessions SET pwd_last_set = ?, pwd_checked_at = ? WHERE id_hash = ?")
            .bind(pwd_last_set)
            .bind(at)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?").bind(id_hash).execute(&mut *self.conn().await?).await?;
        Ok(())
    }

    async fn session_proof(&self, id_hash: &str, service: &str, at: Timestamp) -> Result<(), StorageError> {
        sqlx::query("UPDATE sessions SET proof_service = ?, proof_at = ? WHERE id_hash = ?")
            .bind(service)
            .bind(at)
            .bind(id_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<u64, StorageError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?")
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
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")
            .bind(idle_before)
            .bind(created_before)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }
}
