-- The account's pwdLastSet when the flow began: a password changed meanwhile (by its owner, by
-- another reset, by an administrator) ends the flow instead of being overwritten by it. After a
-- write of the flow's own that AD did not confirm, when it was made: AD's value may then be the
-- flow's own, from no later than that.
ALTER TABLE reset_flows ADD COLUMN pwd_last_set TEXT;
ALTER TABLE reset_flows ADD COLUMN written_maybe_at BIGINT;
