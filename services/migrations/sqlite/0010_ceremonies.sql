-- WebAuthn ceremonies in progress (single use, expiring), in the database
-- rather than one process's memory: a restart loses none, and a second
-- replica sharing the database can finish what another began. The browser
-- holds only the ceremony's id; the row is found by its hash.
CREATE TABLE ceremonies (
    id_hash     TEXT PRIMARY KEY,   -- SHA-256 of the id the browser holds
    client      TEXT NOT NULL,      -- the client (an address, or an IPv6 /64)
    network     TEXT NOT NULL,      -- its IPv4 /24 or IPv6 /48
    wide        TEXT NOT NULL,      -- its IPv4 /16 or IPv6 /32
    state       TEXT NOT NULL,      -- JSON: the ceremony (webauthn-rs state, challenge, who)
    started_ms  INTEGER NOT NULL    -- Unix milliseconds
) STRICT;
CREATE INDEX ceremonies_by_client ON ceremonies (client);
CREATE INDEX ceremonies_by_network ON ceremonies (network);
CREATE INDEX ceremonies_by_wide ON ceremonies (wide);
CREATE INDEX ceremonies_by_start ON ceremonies (started_ms);
