-- The account's pwdLastSet when the flow began: a password changed meanwhile (by its owner, by
-- another reset, by an administrator) ends the flow instead of being overwritten by it.
ALTER TABLE reset_flows ADD COLUMN pwd_last_set TEXT;
