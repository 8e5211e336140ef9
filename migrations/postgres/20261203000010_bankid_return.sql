-- An order opened in the app on this device ("open BankID") counts only once the app has sent the
-- user back to the browser that started it (the return URL given to BankID carries a nonce, kept
-- here as a hash), or when BankID saw the app at that browser's address. The address the order
-- was started from (its key: IPv4, or an IPv6 /64) tells a return opened in another browser on the
-- same device from one on a relay victim's phone.
ALTER TABLE bankid_flows ADD COLUMN return_nonce_hash TEXT;
ALTER TABLE bankid_flows ADD COLUMN returned_at BIGINT;
ALTER TABLE bankid_flows ADD COLUMN start_address TEXT;
