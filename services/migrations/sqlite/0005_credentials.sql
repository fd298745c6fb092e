-- Clinician credentials. The ledger holds the credential itself (authority,
-- licence hash, specialty, expiry, revoked); these rows are the requests
-- that lead to one, and the operator's naming of authorities, waiting for
-- the server to send it to the ledger. Nothing here is health data.

-- A clinician's request to be verified by an authority. At most one is
-- pending per clinician; a decided one stays as history.
CREATE TABLE credential_requests (
    id             INTEGER PRIMARY KEY,
    clinician_id   TEXT NOT NULL REFERENCES accounts(id),
    authority_id   TEXT NOT NULL REFERENCES accounts(id),
    license_number TEXT NOT NULL,
    specialty      TEXT NOT NULL,
    jurisdiction   TEXT NOT NULL,
    organisation   TEXT NOT NULL,
    requested_at   INTEGER NOT NULL,
    decision       TEXT CHECK (decision IN ('issued', 'declined')),
    decided_at     INTEGER,
    decision_tx    TEXT
) STRICT;
CREATE UNIQUE INDEX one_pending_request ON credential_requests (clinician_id) WHERE decision IS NULL;
CREATE INDEX requests_by_authority ON credential_requests (authority_id, decision);

-- `chartkey authority add|remove`: written by the command, applied by the
-- running server with the administrator key (applied_at, tx or error set).
CREATE TABLE authority_changes (
    id           INTEGER PRIMARY KEY,
    address      TEXT NOT NULL,                  -- 0x lowercase
    enabled      INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    requested_at INTEGER NOT NULL,
    applied_at   INTEGER,
    tx           TEXT,
    error        TEXT
) STRICT;
