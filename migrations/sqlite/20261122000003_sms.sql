-- Mobile-code challenges: one live code per challenge, bound to the user and the browser.
-- The number is encrypted like personal numbers; the code is stored only as an argon2 hash.
CREATE TABLE sms_challenges (
    id                TEXT PRIMARY KEY NOT NULL,
    purpose           TEXT NOT NULL,
    binding_hash      TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    number_encrypted  TEXT NOT NULL,
    number_hash       TEXT NOT NULL,
    number_masked     TEXT NOT NULL,
    code_hash         TEXT NOT NULL,
    attempts          INTEGER NOT NULL,
    sent_at           INTEGER NOT NULL,
    state             TEXT NOT NULL,
    finished_at       INTEGER
);
CREATE INDEX sms_challenges_sent ON sms_challenges (sent_at);

-- The mobile number each user enrolled.
CREATE TABLE sms_enrolments (
    user_id           TEXT PRIMARY KEY NOT NULL,
    number_encrypted  TEXT NOT NULL,
    number_hash       TEXT NOT NULL,
    number_masked     TEXT NOT NULL,
    enrolled_at       INTEGER NOT NULL
);
