-- Records: what the server knows of each one is public or ciphertext.
-- The envelope itself is in the blob store under `blob` (SHA-256, hex);
-- nothing here is health data.
CREATE TABLE records (
    id           TEXT PRIMARY KEY,                     -- 0x hex, 32 bytes, chosen by the browser
    patient_id   TEXT NOT NULL REFERENCES accounts(id),
    author_id    TEXT NOT NULL REFERENCES accounts(id),
    blob         TEXT NOT NULL,                        -- SHA-256 of the envelope, hex
    size         INTEGER NOT NULL,                     -- envelope bytes
    category     INTEGER NOT NULL CHECK (category BETWEEN 0 AND 31),
    amends       TEXT REFERENCES records(id),
    batch_root   TEXT,                                 -- 0x hex Merkle root; NULL when anchored alone
    leaf_index   INTEGER,
    batch_size   INTEGER,
    signature    TEXT NOT NULL,                        -- the author's EIP-712 signature of the Anchor or AnchorBatch
    anchor_job   INTEGER NOT NULL,                     -- the relayer's job
    anchor_tx    TEXT NOT NULL,
    anchor_block INTEGER,                              -- NULL until mined
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX records_by_patient ON records (patient_id, created_at);
CREATE INDEX records_by_blob ON records (blob);
CREATE INDEX records_by_amends ON records (amends);
CREATE INDEX records_by_batch ON records (batch_root, leaf_index);

-- A record's data key wrapped (HPKE) for one reader.
CREATE TABLE record_keys (
    record_id   TEXT NOT NULL REFERENCES records(id),
    reader      TEXT NOT NULL COLLATE NOCASE,          -- ledger address
    wrapped_key TEXT NOT NULL,                         -- base64url, 81 bytes
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (record_id, reader)
) STRICT;

-- Who uploaded which envelope: a record may only name content its author
-- uploaded, so knowing a fingerprint (they are public, on the ledger)
-- never gives access to someone else's ciphertext.
CREATE TABLE blob_uploads (
    blob        TEXT NOT NULL,                         -- SHA-256 of the envelope, hex
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (blob, account_id)
) STRICT;
