-- Who did it, when a member of staff acted about someone else (the service desk verifying a
-- caller, an administrator revoking): a column of its own, for filters and a SIEM's fields.
ALTER TABLE audit_log ADD COLUMN actor TEXT;
