-- Record-then-decide for a limit counted as AD counts bad passwords: the failures of the current
-- run, each less than p_gap seconds after the one before (a quiet gap of p_gap or more starts a
-- new run), looking back at most p_max runs' length. Locked and counted as stjarna_reserve_attempt.
CREATE FUNCTION stjarna_reserve_in_run(p_scope TEXT, p_key TEXT, p_at BIGINT, p_gap BIGINT, p_max BIGINT)
RETURNS TABLE (id BIGINT, place BIGINT) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    run_start BIGINT;
    seen BIGINT;
    new_id BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_scope), hashtext(p_key));
    SELECT MAX(w.a) INTO run_start FROM (
        SELECT f.at AS a, LEAD(f.at, 1, p_at) OVER (ORDER BY f.at) AS b FROM throttle_failures f
        WHERE f.scope = p_scope AND f.key = p_key AND f.at > p_at - p_max * p_gap
    ) w WHERE w.b - w.a >= p_gap;
    SELECT COUNT(*) INTO seen FROM throttle_failures f
        WHERE f.scope = p_scope AND f.key = p_key AND f.at > p_at - p_max * p_gap
          AND f.at > COALESCE(run_start, p_at - p_max * p_gap);
    IF seen >= p_max THEN
        RETURN;
    END IF;
    INSERT INTO throttle_failures (scope, key, at) VALUES (p_scope, p_key, p_at) RETURNING throttle_failures.id INTO new_id;
    id := new_id;
    place := seen + 1;
    RETURN NEXT;
END
$$;
