-- Portal roles from AD groups (admin, helpdesk, reporting), and when the password was last given
-- (admin pages ask for it again after a while).
ALTER TABLE sessions ADD COLUMN roles TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN authenticated_at INTEGER NOT NULL DEFAULT 0;
