-- An order opened in the app on this device ("open BankID") counts only once the app has sent the
-- user back to the browser that started it: the return URL given to BankID carries a nonce (kept
-- here as a hash), and the return from that browser is recorded. A relayed autostart link sends
-- the victim's phone back, never the attacker's browser.
ALTER TABLE bankid_flows ADD COLUMN return_nonce_hash TEXT;
ALTER TABLE bankid_flows ADD COLUMN returned_at BIGINT;
