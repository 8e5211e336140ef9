-- A session moves to a new id (after a password change or a re-authentication) with an UPDATE of
-- its key, so that a concurrent end of the user's sessions (which waits for the row and then
-- sees it moved) ends it too. Every other instance must then forget the old id.
CREATE OR REPLACE FUNCTION stjarna_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN row_data := OLD; ELSE row_data := NEW; END IF;
    IF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('stjarna_changes', 'session:' || row_data.id_hash);
        IF TG_OP = 'UPDATE' AND OLD.id_hash IS DISTINCT FROM NEW.id_hash THEN
            PERFORM pg_notify('stjarna_changes', 'session:' || OLD.id_hash);
        END IF;
    ELSIF TG_TABLE_NAME = 'bankid_flows' THEN
        PERFORM pg_notify('stjarna_changes', 'flow:' || row_data.id);
    ELSE
        PERFORM pg_notify('stjarna_changes', 'user:' || row_data.user_id);
    END IF;
    RETURN NULL;
END
$$;
