-- Accounts, their passkeys and sessions. Public data only: the account
-- secret exists here solely as a sealed key store the server cannot open.

CREATE TABLE accounts (
    id                    TEXT PRIMARY KEY,          -- UUID; also the WebAuthn user handle
    display_name          TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('patient', 'clinician', 'verifier', 'credentialing_authority')),
    address               TEXT NOT NULL UNIQUE COLLATE NOCASE, -- ledger address, EIP-55
    encryption_key        TEXT NOT NULL,             -- X25519 public key, 0x hex
    directory_signature   TEXT NOT NULL,             -- EIP-712 signature by `address`
    recovery_confirmed_at INTEGER,
    created_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE passkeys (
    credential_id   TEXT PRIMARY KEY,                -- base64url
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    label           TEXT NOT NULL,
    passkey_json    TEXT NOT NULL,                   -- webauthn-rs public credential and counter
    sealed_keystore TEXT NOT NULL,                   -- opaque: sealed in the browser
    uses_passphrase INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
) STRICT;
CREATE INDEX passkeys_by_account ON passkeys (account_id);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,                   -- SHA-256 of the cookie's token
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_account ON sessions (account_id);
