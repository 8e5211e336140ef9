-- When each user was last reminded to enrol: a record of its own (the janitor never purges it),
-- claimed in one statement so that a reminder goes out once per interval whoever sends it.
CREATE TABLE reminders (
    user_id  TEXT PRIMARY KEY NOT NULL,
    sent_at  INTEGER NOT NULL
);
