-- Server-side sessions. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    id_hash          TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL,
    user_dn          TEXT NOT NULL,
    account_name     TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    is_admin         INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- Every state-changing event. Append-only.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    username    TEXT,
    user_id     TEXT,
    source_ip   TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    detail      TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user ON audit_log (user_id, at);

-- Failed attempts at guessable things (logins for now), one row per failure.
CREATE TABLE throttle_failures (
    scope  TEXT NOT NULL,
    key    TEXT NOT NULL,
    at     INTEGER NOT NULL
);
CREATE INDEX throttle_failures_key ON throttle_failures (scope, key, at);

-- The identity services each user has enrolled, keyed on the AD objectGUID.
CREATE TABLE enrolments (
    user_id       TEXT NOT NULL,
    service       TEXT NOT NULL,
    enrolled_at   INTEGER NOT NULL,
    last_used_at  INTEGER,
    PRIMARY KEY (user_id, service)
);
