-- A session remembers the passkey it signed in with, so removing that
-- passkey ends it. Sessions from before this migration are ended: they
-- cannot be tied to a passkey.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_by_credential ON sessions (credential_id);
