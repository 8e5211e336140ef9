-- The password set that started an enrolment's cooling-off again (it was set while the service
-- was still cooling off: whoever enrolled it may have known only the old password), as the portal
-- saw it. AD keeps only the last pwdLastSet, so a later set (a service desk's reset, say) would
-- hide it; kept here, it holds. A replacement clears it.
ALTER TABLE enrolments ADD COLUMN restarted_at BIGINT;
