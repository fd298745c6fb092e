-- As SQLite's 0013: per limit and client, the theoretical arrival time of
-- its next request (milliseconds), shared by the replicas.
CREATE TABLE rate_counts (
    scope   TEXT NOT NULL,
    client  TEXT NOT NULL,
    tat_ms  BIGINT NOT NULL,
    PRIMARY KEY (scope, client)
);
