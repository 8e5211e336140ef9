//! The audit log: entries, search, daily counts, retention.

use async_trait::async_trait;

use super::PgStorage;
use crate::clock::Timestamp;
use crate::storage::*;

use sqlx::{Postgres, QueryBuilder};

#[async_trait]
impl AuditStore for PgStorage {
    async fn append_audit(&self, r: &AuditRecord) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO audit_log (at, event, outcome, username, user_id, source_ip, user_agent, request_id, detail, actor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.at)
        .bind(&r.event)
        .bind(&r.outcome)
        .bind(&r.username)
        .bind(&r.user_id)
        .bind(&r.source_ip)
        .bind(&r.user_agent)
        .bind(&r.request_id)
        .bind(&r.detail)
        .bind(&r.actor)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StorageError> {
        Ok(sqlx::query_as::<_, AuditRecord>("SELECT * FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    async fn audit_search(
        &self,
        f: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditRecord>, i64), StorageError> {
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM audit_log");
        crate::storage::audit_filter::push(&mut count, f);
        let (total,): (i64,) = count.build_query_as().fetch_one(&mut *self.conn().await?).await?;
        let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM audit_log");
        crate::storage::audit_filter::push(&mut q, f);
        q.push(" ORDER BY id DESC LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
        let rows = q.build_query_as::<AuditRecord>().fetch_all(&mut *self.conn().await?).await?;
        Ok((rows, total))
    }

    async fn delete_audit_before(&self, before: Timestamp) -> Result<u64, StorageError> {
        let done =
            sqlx::query("DELETE FROM audit_log WHERE at < $1").bind(before).execute(&mut *self.conn().await?).await?;
        Ok(done.rows_affected())
    }

    async fn daily_counts(&self, events: &[&str], since: Timestamp) -> Result<Vec<(i64, String, i64)>, StorageError> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT at / 86400 AS day, event, COUNT(*) FROM audit_log WHERE outcome = 'success' AND at >= ",
        );
        q.push_bind(since).push(" AND event IN (");
        let mut list = q.separated(", ");
        for e in events {
            list.push_bind(e.to_string());
        }
        q.push(") GROUP BY day, event ORDER BY day");
        Ok(q.build_query_as::<(i64, String, i64)>().fetch_all(&mut *self.conn().await?).await?)
    }
}
