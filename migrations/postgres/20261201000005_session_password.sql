-- What AD's pwdLastSet said when the session was last checked against the directory (NULL: take
-- whatever it says next), and when: a password set anywhere else ends the session.
ALTER TABLE sessions ADD COLUMN pwd_last_set TEXT;
ALTER TABLE sessions ADD COLUMN pwd_checked_at BIGINT;
