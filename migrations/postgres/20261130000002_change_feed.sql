-- Every instance keeps the busiest reads (sessions, enrolments, BankID flows) in memory; these
-- triggers tell the others, as each change commits, what to forget.
CREATE FUNCTION stjarna_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN row_data := OLD; ELSE row_data := NEW; END IF;
    IF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('stjarna_changes', 'session:' || row_data.id_hash);
    ELSIF TG_TABLE_NAME = 'bankid_flows' THEN
        PERFORM pg_notify('stjarna_changes', 'flow:' || row_data.id);
    ELSE
        PERFORM pg_notify('stjarna_changes', 'user:' || row_data.user_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION stjarna_changed();
CREATE TRIGGER bankid_flows_changed AFTER UPDATE OR DELETE ON bankid_flows
    FOR EACH ROW EXECUTE FUNCTION stjarna_changed();
CREATE TRIGGER enrolments_changed AFTER INSERT OR UPDATE OR DELETE ON enrolments
    FOR EACH ROW EXECUTE FUNCTION stjarna_changed();
CREATE TRIGGER bankid_enrolments_changed AFTER INSERT OR UPDATE OR DELETE ON bankid_enrolments
    FOR EACH ROW EXECUTE FUNCTION stjarna_changed();
CREATE TRIGGER sms_enrolments_changed AFTER INSERT OR UPDATE OR DELETE ON sms_enrolments
    FOR EACH ROW EXECUTE FUNCTION stjarna_changed();

-- Rows that go without a row each (TRUNCATE, say to log everyone out): every instance forgets all.
CREATE FUNCTION stjarna_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stjarna_changes', 'all');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_truncated AFTER TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION stjarna_truncated();
CREATE TRIGGER bankid_flows_truncated AFTER TRUNCATE ON bankid_flows
    FOR EACH STATEMENT EXECUTE FUNCTION stjarna_truncated();
CREATE TRIGGER enrolments_truncated AFTER TRUNCATE ON enrolments
    FOR EACH STATEMENT EXECUTE FUNCTION stjarna_truncated();
CREATE TRIGGER bankid_enrolments_truncated AFTER TRUNCATE ON bankid_enrolments
    FOR EACH STATEMENT EXECUTE FUNCTION stjarna_truncated();
CREATE TRIGGER sms_enrolments_truncated AFTER TRUNCATE ON sms_enrolments
    FOR EACH STATEMENT EXECUTE FUNCTION stjarna_truncated();
