-- Passkey approvals of signed ledger messages (a share, a stop), kept for
-- later audit: the assertion's clientDataJSON carries the challenge
-- SHA-256("chartkey/approval/v1" || digest || nonce), so with the passkey's
-- public key anyone can check that this passkey approved exactly the
-- message with this EIP-712 digest (the grant or revoke on the ledger).
CREATE TABLE approvals (
    id            INTEGER PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts(id),
    digest        TEXT NOT NULL,      -- 0x hex EIP-712 digest of the message
    nonce         TEXT NOT NULL,      -- 0x hex, the server's single-use nonce
    credential_id TEXT NOT NULL,      -- base64url, the passkey that approved
    assertion     TEXT NOT NULL,      -- the PublicKeyCredential as received (JSON)
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX approvals_by_digest ON approvals (digest);
