-- Record-then-decide for a limit in one round trip. Under READ COMMITTED a single statement's count
-- could miss an attempt committed while it waited for the key's lock; in a VOLATILE function every
-- statement takes a fresh snapshot, so the count after the lock sees every attempt before it.
-- The advisory lock, held to the end of the caller's transaction, puts deciders of one key in a row
-- (across instances too).
CREATE FUNCTION stjarna_reserve_attempt(p_scope TEXT, p_key TEXT, p_at BIGINT, p_since BIGINT, p_max BIGINT)
RETURNS TABLE (id BIGINT, place BIGINT) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    seen BIGINT;
    new_id BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_scope), hashtext(p_key));
    SELECT COUNT(*) INTO seen FROM throttle_failures f
        WHERE f.scope = p_scope AND f.key = p_key AND f.at > p_since;
    IF seen >= p_max THEN
        RETURN;
    END IF;
    INSERT INTO throttle_failures (scope, key, at) VALUES (p_scope, p_key, p_at) RETURNING throttle_failures.id INTO new_id;
    id := new_id;
    place := seen + 1;
    RETURN NEXT;
END
$$;
