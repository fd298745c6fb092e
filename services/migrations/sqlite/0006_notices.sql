-- Notices to an account: an access to one of a patient's records, a note a
-- clinician wrote back. What is said is who, which record (by id and
-- category) and the ledger transaction; never anything of the record.
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'write_back')),
    actor_id    TEXT NOT NULL REFERENCES accounts(id),
    record_id   TEXT,
    category    INTEGER,
    tx          TEXT NOT NULL,
    at          INTEGER NOT NULL,
    read_at     INTEGER
) STRICT;
CREATE INDEX notices_by_account ON notices (account_id, id);
