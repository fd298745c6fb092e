-- As SQLite's 0012: a pending row names the relayer whose journal holds it.
ALTER TABLE pending_relays ADD COLUMN relayer TEXT NOT NULL DEFAULT '';
