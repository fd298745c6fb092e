-- Sharing. The ledger decides every access; these rows are what the server
-- relayed, kept to answer lists quickly and to release ciphertext only
-- after the ledger has recorded an access. Nothing here is health data.

-- Grants the server relayed, newest serial per pair the one in force on the
-- ledger (which is checked again on every open).
CREATE TABLE grants (
    patient_id  TEXT NOT NULL REFERENCES accounts(id),
    grantee_id  TEXT NOT NULL REFERENCES accounts(id),
    serial      INTEGER NOT NULL,                      -- the contract's serial of this grant
    scope       INTEGER NOT NULL CHECK (scope BETWEEN 0 AND 2),
    categories  INTEGER NOT NULL,
    records     TEXT NOT NULL,                         -- JSON list of 0x record ids (scope 0)
    write       INTEGER NOT NULL CHECK (write IN (0, 1)),
    expires_at  INTEGER NOT NULL,                      -- unix seconds, ledger time
    grant_tx    TEXT NOT NULL,
    grant_block INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (patient_id, grantee_id, serial)
) STRICT;

-- Accesses the ledger recorded (the Accessed event of `tx`). An envelope is
-- released to a grantee only for a record with such a row, for a short
-- while after it.
CREATE TABLE accesses (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES accounts(id),
    grantee_id  TEXT NOT NULL REFERENCES accounts(id),
    record_id   TEXT NOT NULL REFERENCES records(id),
    tx          TEXT NOT NULL,
    block       INTEGER NOT NULL,
    at          INTEGER NOT NULL
) STRICT;
CREATE INDEX accesses_by_patient ON accesses (patient_id, at);
CREATE INDEX accesses_by_grantee ON accesses (grantee_id, record_id, at);
