-- SMART Health Links. The server holds what it needs to answer a manifest
-- request and nothing a reader could use: the link's id is the keccak256
-- of the secret in its URL (which the server never stores), the files are
-- JWEs whose key never reaches the server (kept in the blob store, named by
-- their SHA-256), the label is sealed to the patient, and a passcode is
-- kept only as a keyed hash (HMAC-SHA256 under keys/link-passcode.key).

CREATE TABLE links (
    id             TEXT PRIMARY KEY,                   -- 0x keccak256(manifest id), as on the ledger
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    flags          INTEGER NOT NULL CHECK (flags BETWEEN 0 AND 7),
    expires_at     INTEGER,                            -- unix seconds; NULL: no expiry
    passcode_hash  TEXT,                               -- 0x HMAC; NULL: no passcode
    attempts_left  INTEGER NOT NULL CHECK (attempts_left >= 0),
    label          TEXT NOT NULL,                      -- JSON SealedLabel
    content_hash   TEXT NOT NULL,                      -- as signed into the ledger
    serial         INTEGER NOT NULL DEFAULT 0,         -- the contract's serial (next update's nonce)
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
-- recipient gave, which the patient is shown.
CREATE TABLE link_uses (
    use_id     TEXT PRIMARY KEY,                       -- 0x, as in the LinkUsed event
    link_id    TEXT NOT NULL REFERENCES links(id),
    recipient  TEXT NOT NULL,
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

-- Notices gain a kind: one of the patient's links was used (by whom, as
-- the recipient said).
CREATE TABLE notices_new (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL CHECK (kind IN ('access', 'write_back', 'link_use')),
    actor_id    TEXT NOT NULL REFERENCES accounts(id),
    record_id   TEXT,
    category    INTEGER,
    tx          TEXT NOT NULL,
    at          INTEGER NOT NULL,
    read_at     INTEGER,
    link_id     TEXT,
    recipient   TEXT
) STRICT;
INSERT INTO notices_new (id, account_id, kind, actor_id, record_id, category, tx, at, read_at)
    SELECT id, account_id, kind, actor_id, record_id, category, tx, at, read_at FROM notices;
DROP TABLE notices;
ALTER TABLE notices_new RENAME TO notices;
CREATE INDEX notices_by_account ON notices (account_id, id);
