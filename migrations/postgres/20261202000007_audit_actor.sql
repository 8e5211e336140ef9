-- Who did it, when a member of staff acted about someone else (the service desk verifying a
-- caller, an administrator revoking): a column of its own, for filters and a SIEM's fields.
ALTER TABLE audit_log ADD COLUMN actor TEXT;

-- A name search finds the entries that carry only an account's id through the ids its named
-- entries carry: by the name without regard to case.
CREATE INDEX audit_log_username ON audit_log (lower(username));
