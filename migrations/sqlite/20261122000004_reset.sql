-- BankID orders started inside another flow (a password reset) say which.
ALTER TABLE bankid_flows ADD COLUMN context TEXT;

-- Password reset and unlock flows: who (if anyone) is behind the typed name, which identity
-- services have been verified, and how it ended. Bound to the browser that started it.
CREATE TABLE reset_flows (
    id            TEXT PRIMARY KEY NOT NULL,
    binding_hash  TEXT NOT NULL,
    typed_name    TEXT NOT NULL,
    user_id       TEXT,
    verified      TEXT NOT NULL,
    sms_challenge TEXT,
    failures      INTEGER NOT NULL,
    state         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT
);
CREATE INDEX reset_flows_created ON reset_flows (created_at);

-- Mail waiting to be sent. A failure to send never undoes what the mail tells about.
CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    sent_at          INTEGER,
    last_error       TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (sent_at, next_attempt_at);
