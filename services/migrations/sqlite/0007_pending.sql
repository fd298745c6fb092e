-- Bookkeeping a relayed message needs once it is mined, written before the
-- message is handed to the relayer (whose journal is another file, so no
-- transaction covers both). Once the message is mined the work is done and
-- the row deleted in one transaction; a refusal deletes it. On start, each
-- row left by a crash is matched to the relayer's journal by the hash of
-- the call's input: not journalled means never relayed (deleted), else the
-- server waits for the ledger's answer as the request would have.
CREATE TABLE pending_relays (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    input_hash  BLOB NOT NULL,      -- keccak256 of the call's input
    work        TEXT NOT NULL,      -- JSON: what to record once mined
    created_at  INTEGER NOT NULL
) STRICT;
