-- Step-up proof kept in the session: which enrolled service the user verified with, and when.
-- Changing what proves who the user is (adding, replacing, removing a service) needs it.
ALTER TABLE sessions ADD COLUMN proof_service TEXT;
ALTER TABLE sessions ADD COLUMN proof_at INTEGER;
-- Cooling-off: a service enrolled or replaced recently does not count toward a reset, unless the
-- service desk lifted it for this enrolment (set back to NULL when the service is replaced).
ALTER TABLE enrolments ADD COLUMN cooldown_lifted_at INTEGER;
