-- One stored form per value (chartkey_core::value): addresses in lowercase
-- hex (accounts held EIP-55 mixed case, other tables lowercase, and
-- lookups papered over it with COLLATE NOCASE), and envelope hashes
-- 0x-prefixed like every other hash (they were bare hex).
UPDATE accounts SET address = lower(address);
UPDATE record_keys SET reader = lower(reader);
UPDATE authority_changes SET address = lower(address);
UPDATE records SET blob = '0x' || lower(blob) WHERE blob NOT LIKE '0x%';
UPDATE blob_uploads SET blob = '0x' || lower(blob) WHERE blob NOT LIKE '0x%';
