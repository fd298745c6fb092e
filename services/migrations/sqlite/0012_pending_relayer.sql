-- Replicas share the database but each relays with its own key and
-- journal: a pending row names the relayer (its address) whose journal
-- holds the request, so a replica starting up picks up only its own rows.
-- Rows from before this migration ('') were written by the one relayer
-- there was.
ALTER TABLE pending_relays ADD COLUMN relayer TEXT NOT NULL DEFAULT '';
