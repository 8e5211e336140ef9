-- BankID orders in progress, bound to the browser that started them.
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
    started_at       INTEGER NOT NULL,
    last_collect_at  INTEGER,
    finished_at      INTEGER,
    result_user_id   TEXT
);
CREATE INDEX bankid_flows_started ON bankid_flows (started_at);

-- The BankID bound to each user. The personal number is encrypted (AES-256-GCM) and has a keyed
-- hash (HMAC-SHA256) for look-ups; it is never stored in clear.
CREATE TABLE bankid_enrolments (
    user_id       TEXT PRIMARY KEY NOT NULL,
    pn_encrypted  TEXT NOT NULL,
    pn_hash       TEXT NOT NULL,
    pn_masked     TEXT NOT NULL,
    name          TEXT NOT NULL,
    enrolled_at   INTEGER NOT NULL
);
CREATE INDEX bankid_enrolments_hash ON bankid_enrolments (pn_hash);
