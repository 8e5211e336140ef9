-- Background jobs that run on one instance at a time: whoever holds the lease runs the job.
CREATE TABLE jobs (
    name          TEXT PRIMARY KEY NOT NULL,
    leased_until  INTEGER NOT NULL
);

-- Password-expiry reminders sent: one row per user, expiry time and reminder (days before), so
-- that each goes out once whichever instance sends it.
CREATE TABLE expiry_reminders (
    user_id     TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    days        INTEGER NOT NULL,
    sent_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, expires_at, days)
);
CREATE INDEX expiry_reminders_expires ON expiry_reminders (expires_at);
