-- SMART Health Links. The server holds what it needs to answer a manifest
-- request and nothing a reader could use: the link's id is the keccak256
-- of the secret in its URL (which the server never stores), the files are
-- JWEs whose key never reaches the server (kept in the blob store, named by
-- their SHA-256), the label, URL secret and key are sealed to the patient
-- (so any of their devices can show the link again), and a passcode is
-- kept only as a keyed hash (HMAC-SHA256 under keys/link-passcode.key).

CREATE TABLE links (
    id             TEXT PRIMARY KEY,                   -- 0x keccak256(manifest id), as on the ledger
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    flags          INTEGER NOT NULL CHECK (flags BETWEEN 0 AND 7),
    expires_at     INTEGER,                            -- unix seconds; NULL: no expiry
    passcode_hash  TEXT,                               -- 0x HMAC; NULL: no passcode
    attempts_left  INTEGER NOT NULL CHECK (attempts_left >= 0),
    sealed         TEXT NOT NULL,                      -- JSON SealedLink (to the patient)
    content_hash   TEXT NOT NULL,                      -- as signed into the ledger
    created_at     INTEGER NOT NULL,
    create_tx      TEXT,
    revoked_at     INTEGER
) STRICT;
CREATE INDEX links_by_account ON links (account_id, created_at);

-- A link's files in order: the JWE's blob and what is inside.
CREATE TABLE link_files (
    link_id       TEXT NOT NULL REFERENCES links(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    content_type  TEXT NOT NULL,
    blob          TEXT NOT NULL,                       -- 0x SHA-256 of the JWE text
    size          INTEGER NOT NULL,
    PRIMARY KEY (link_id, position)
) STRICT;

-- Uses the ledger recorded (the LinkUsed event of `tx`): the label the
-- recipient gave, which the patient is shown, and the salt of the hash of
-- it the ledger holds (keccak256(salt || label)).
CREATE TABLE link_uses (
    use_id     TEXT PRIMARY KEY,                       -- 0x, as in the LinkUsed event
    link_id    TEXT NOT NULL REFERENCES links(id),
    recipient  TEXT NOT NULL,
    salt       TEXT NOT NULL,
    tx         TEXT NOT NULL,
    block      INTEGER NOT NULL,
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX link_uses_by_link ON link_uses (link_id, at);

-- Short-lived addresses of one file each (a manifest's `location`).
CREATE TABLE link_locations (
    token_hash  TEXT PRIMARY KEY,                      -- 0x SHA-256 of the URL's token
    link_id     TEXT NOT NULL REFERENCES links(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

-- Notices gain kinds: one of the patient's links was used (by whom, as
-- the recipient said), and the ledger's steps of emergency access (a
-- contact named, a request with when it opens, a refusal, an access, a
-- removal).
CREATE TABLE notices_new (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'write_back', 'link_use', 'emergency_named',
                    'emergency_requested', 'emergency_refused', 'emergency_accessed', 'emergency_removed')),
    actor_id    TEXT NOT NULL REFERENCES accounts(id),
    record_id   TEXT,
    category    INTEGER,
    tx          TEXT NOT NULL,
    at          INTEGER NOT NULL,
    read_at     INTEGER,
    link_id     TEXT,
    recipient   TEXT,
    opens_at    INTEGER
) STRICT;
INSERT INTO notices_new (id, account_id, kind, actor_id, record_id, category, tx, at, read_at)
    SELECT id, account_id, kind, actor_id, record_id, category, tx, at, read_at FROM notices;
DROP TABLE notices;
ALTER TABLE notices_new RENAME TO notices;
CREATE INDEX notices_by_account ON notices (account_id, id);

-- Emergency access. Invitations are by link: the patient gives the
-- contact a secret (stored as its SHA-256); whoever opens it signed in
-- accepts, and the patient then names them on the ledger.
CREATE TABLE emergency_invitations (
    token_hash   TEXT PRIMARY KEY,
    patient_id   TEXT NOT NULL REFERENCES accounts(id),
    wait_seconds INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    contact_id   TEXT REFERENCES accounts(id),
    accepted_at  INTEGER
) STRICT;
CREATE INDEX emergency_invitations_by_patient ON emergency_invitations (patient_id, created_at);

-- Contacts the ledger recorded as named, with the patient's summary for
-- them: an envelope in the blob store and its key wrapped to the contact
-- (released only after a recorded emergency access).
CREATE TABLE emergency_contacts (
    patient_id   TEXT NOT NULL REFERENCES accounts(id),
    contact_id   TEXT NOT NULL REFERENCES accounts(id),
    wait_seconds INTEGER NOT NULL,
    summary_id   TEXT NOT NULL,
    summary_blob TEXT NOT NULL,
    wrapped_key  TEXT NOT NULL,
    named_at     INTEGER NOT NULL,
    removed_at   INTEGER,
    PRIMARY KEY (patient_id, contact_id)
) STRICT;
CREATE INDEX emergency_contacts_by_contact ON emergency_contacts (contact_id);

-- Each step the ledger recorded.
CREATE TABLE emergency_events (
    id          INTEGER PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES accounts(id),
    contact_id  TEXT NOT NULL REFERENCES accounts(id),
    step        TEXT NOT NULL CHECK (step IN ('named', 'requested', 'refused', 'accessed', 'removed')),
    tx          TEXT NOT NULL,
    block       INTEGER NOT NULL,
    at          INTEGER NOT NULL
) STRICT;
CREATE INDEX emergency_events_by_pair ON emergency_events (patient_id, contact_id, id);
