//! The audit viewer's filter as SQL, one text for both backends (the builder numbers the
//! placeholders for each). Names match without regard to case, and what was typed is matched as
//! text: `%` and `_` in it are not wildcards.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::AuditFilter;

/// Appends ` WHERE …` for `f` to `q`.
pub(super) fn push<DB>(q: &mut QueryBuilder<DB>, f: &AuditFilter)
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    q.push(" WHERE 1 = 1");
    if let Some(user) = f.user.as_deref().filter(|u| !u.is_empty()) {
        // Lowered by the database on both sides (SQLite lowers ASCII only, PostgreSQL every letter).
        let part = format!("%{}%", like_text(user));
        // Or entries this user made about others (and, from before the actor column, a
        // detail's `by` or `actor`, URL-encoded).
        let named =
            |arg: &str| format!("%{}%", like_text(&serde_urlencoded::to_string([(arg, user)]).unwrap_or_default()));
        q.push(" AND (lower(username) LIKE lower(")
            .push_bind(part.clone())
            .push(") ESCAPE '\\' OR user_id = ")
            .push_bind(user.to_string())
            // Entries that carry only the id of an account of exactly this name (a BankID result,
            // an enrolment): through the ids its named entries carry.
            .push(" OR user_id IN (SELECT user_id FROM audit_log WHERE lower(username) = lower(")
            .push_bind(user.to_string())
            .push(") AND user_id IS NOT NULL) OR lower(actor) LIKE lower(")
            .push_bind(part)
            .push(") ESCAPE '\\' OR lower(detail) LIKE lower(")
            .push_bind(named("by"))
            .push(") ESCAPE '\\' OR lower(detail) LIKE lower(")
            .push_bind(named("actor"))
            .push(") ESCAPE '\\')");
    }
    if let Some(id) = &f.user_id {
        q.push(" AND user_id = ").push_bind(id.clone());
    }
    if let Some(event) = f.event.as_deref().filter(|e| !e.is_empty()) {
        q.push(" AND event = ").push_bind(event.to_string());
    }
    if let Some(outcome) = f.outcome.as_deref().filter(|o| !o.is_empty()) {
        q.push(" AND outcome = ").push_bind(outcome.to_string());
    }
    if let Some(ip) = f.ip.as_deref().filter(|i| !i.is_empty()) {
        q.push(" AND source_ip = ").push_bind(ip.to_string());
    }
    if let Some(from) = f.from {
        q.push(" AND at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND at < ").push_bind(to);
    }
}

/// `text` for a LIKE pattern with `ESCAPE '\'`: its `%`, `_` and `\` stand for themselves.
fn like_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn typed_wildcards_stand_for_themselves() {
        assert_eq!(super::like_text("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(super::like_text("anna"), "anna");
    }
}
