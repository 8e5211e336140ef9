//! The app's database as a test reads and bends it.

use std::sync::Arc;

/// The app's database as a test reads it: the storage roles (through `Deref`), and raw SQL for
/// what no role offers. SQL uses `$1, $2 …`, which SQLite reads positionally too.
pub struct TestStore {
    store: Arc<dyn stjarna::storage::Storage>,
    raw: Raw,
}

enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl std::ops::Deref for TestStore {
    type Target = dyn stjarna::storage::Storage;
    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl TestStore {
    /// Raw SQL goes straight to the database, past what the app keeps in memory: use it to read,
    /// or to write what the app does not keep (not sessions, enrolments or BankID flows).
    pub async fn open(url: &str, store: Arc<dyn stjarna::storage::Storage>) -> TestStore {
        let raw = if url.starts_with("postgres") {
            Raw::Pg(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.unwrap())
        } else {
            Raw::Sqlite(sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await.unwrap())
        };
        TestStore { store, raw }
    }

    pub async fn fetch_all<T>(&self, sql: &str) -> Vec<T>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
            Raw::Pg(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        }
    }

    pub async fn fetch_one<T>(&self, sql: &str) -> T
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        self.fetch_all(sql).await.into_iter().next().expect("a row")
    }

    /// A statement with text parameters `$1, $2 …`.
    pub async fn execute(&self, sql: &str, params: &[&str]) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match &self.raw {
            Raw::Sqlite(p) => {
                let mut q = sqlx::query(sql);
                for v in params {
                    q = q.bind(v.to_string());
                }
                q.execute(p).await.unwrap();
            }
            Raw::Pg(p) => {
                let mut q = sqlx::query(sql);
                for v in params {
                    q = q.bind(v.to_string());
                }
                q.execute(p).await.unwrap();
            }
        }
    }

    /// From now on the database refuses to store audit entries of `event` (a trigger, on either
    /// backend): the way to see what the portal does when a write fails after AD was changed.
    pub async fn refuse_audit(&self, event: &str) {
        assert!(event.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "an event name: {event}");
        self.refuse("refuse_audit", "INSERT ON audit_log", &format!("NEW.event = '{event}'")).await;
    }

    /// From now on the database refuses to delete sessions, until [`Self::allow`]`("refuse_session_end")`.
    pub async fn refuse_session_end(&self) {
        self.refuse("refuse_session_end", "DELETE ON sessions", "1 = 1").await;
    }

    /// From now on the database refuses to record a proof with `service` in a session.
    pub async fn refuse_proof(&self, service: &str) {
        assert!(service.chars().all(|c| c.is_ascii_lowercase()), "a service id: {service}");
        self.refuse("refuse_proof", "UPDATE ON sessions", &format!("NEW.proof_service = '{service}'")).await;
    }

    /// From now on the database refuses to mark a reset flow done.
    pub async fn refuse_flow_end(&self) {
        self.refuse("refuse_flow_end", "UPDATE ON reset_flows", "NEW.state = 'done'").await;
    }

    /// A trigger `name` that makes `BEFORE {what}` fail when `condition` holds (`NEW`/`OLD` as usual).
    async fn refuse(&self, name: &str, what: &str, condition: &str) {
        match &self.raw {
            Raw::Sqlite(_) => {
                let sql = format!(
                    "CREATE TRIGGER {name} BEFORE {what} WHEN {condition} \
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                );
                self.execute(&sql, &[]).await
            }
            Raw::Pg(_) => {
                let sql = format!(
                    "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     IF {condition} THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                     RETURN COALESCE(NEW, OLD); END $$"
                );
                self.execute(&sql, &[]).await;
                let sql = format!("CREATE TRIGGER {name} BEFORE {what} FOR EACH ROW EXECUTE FUNCTION {name}()");
                self.execute(&sql, &[]).await
            }
        }
    }

    /// Takes away the trigger [`Self::refuse`] made.
    pub async fn allow(&self, name: &str) {
        match &self.raw {
            Raw::Sqlite(_) => self.execute(&format!("DROP TRIGGER {name}"), &[]).await,
            Raw::Pg(_) => self.execute(&format!("DROP FUNCTION {name}() CASCADE"), &[]).await,
        }
    }
}
