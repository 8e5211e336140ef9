-- The whole schema for PostgreSQL, equivalent to migrations/sqlite up to 20261130000007.
-- Times are Unix seconds (BIGINT), as in SQLite.

CREATE TABLE sessions (
    id_hash          TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL,
    user_dn          TEXT NOT NULL,
    account_name     TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    is_admin         BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    roles            TEXT NOT NULL DEFAULT '',
    authenticated_at BIGINT NOT NULL DEFAULT 0,
    proof_service    TEXT,
    proof_at         BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
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

-- One row per attempt counted against a limit.
CREATE TABLE throttle_failures (
    id     BIGSERIAL PRIMARY KEY,
    scope  TEXT NOT NULL,
    key    TEXT NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX throttle_failures_key ON throttle_failures (scope, key, at);

CREATE TABLE enrolments (
    user_id            TEXT NOT NULL,
    service            TEXT NOT NULL,
    enrolled_at        BIGINT NOT NULL,
    last_used_at       BIGINT,
    cooldown_lifted_at BIGINT,
    PRIMARY KEY (user_id, service)
);

CREATE TABLE bankid_flows (
    id               TEXT PRIMARY KEY NOT NULL,
    purpose          TEXT NOT NULL,
    binding_hash     TEXT NOT NULL,
    user_id          TEXT,
    required_pn_hash TEXT,
    order_ref        TEXT NOT NULL,
    auto_start_token TEXT NOT NULL,
    qr_start_token   TEXT NOT NULL,
    qr_start_secret  TEXT NOT NULL,
    mode             TEXT NOT NULL,
    state            TEXT NOT NULL,
    hint_code        TEXT,
    started_at       BIGINT NOT NULL,
    last_collect_at  BIGINT,
    finished_at      BIGINT,
    result_user_id   TEXT,
    context          TEXT
);
CREATE INDEX bankid_flows_started ON bankid_flows (started_at);

CREATE TABLE bankid_enrolments (
    user_id       TEXT PRIMARY KEY NOT NULL,
    pn_encrypted  TEXT NOT NULL,
    pn_hash       TEXT NOT NULL,
    pn_masked     TEXT NOT NULL,
    name          TEXT NOT NULL,
    enrolled_at   BIGINT NOT NULL
);
CREATE INDEX bankid_enrolments_hash ON bankid_enrolments (pn_hash);

CREATE TABLE sms_challenges (
    id                TEXT PRIMARY KEY NOT NULL,
    purpose           TEXT NOT NULL,
    binding_hash      TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    number_encrypted  TEXT NOT NULL,
    number_hash       TEXT NOT NULL,
    number_masked     TEXT NOT NULL,
    code_hash         TEXT NOT NULL,
    attempts          BIGINT NOT NULL,
    sent_at           BIGINT NOT NULL,
    state             TEXT NOT NULL,
    finished_at       BIGINT
);
CREATE INDEX sms_challenges_sent ON sms_challenges (sent_at);

CREATE TABLE sms_enrolments (
    user_id           TEXT PRIMARY KEY NOT NULL,
    number_encrypted  TEXT NOT NULL,
    number_hash       TEXT NOT NULL,
    number_masked     TEXT NOT NULL,
    enrolled_at       BIGINT NOT NULL
);

CREATE TABLE reset_flows (
    id            TEXT PRIMARY KEY NOT NULL,
    binding_hash  TEXT NOT NULL,
    typed_name    TEXT NOT NULL,
    user_id       TEXT,
    verified      TEXT NOT NULL,
    sms_challenge TEXT,
    failures      BIGINT NOT NULL,
    state         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    outcome       TEXT
);
CREATE INDEX reset_flows_created ON reset_flows (created_at);

CREATE TABLE mail_outbox (
    id               BIGSERIAL PRIMARY KEY,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    sent_at          BIGINT,
    last_error       TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);

CREATE TABLE reminders (
    user_id  TEXT PRIMARY KEY NOT NULL,
    sent_at  BIGINT NOT NULL
);
