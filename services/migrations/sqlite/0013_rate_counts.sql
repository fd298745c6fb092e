-- Rate limits counted in the database, so that replicas sharing it share
-- each client's allowance: per limit and client, the theoretical arrival
-- time of its next request (GCRA, as the in-memory limiter counts), in
-- milliseconds. Only PostgreSQL uses it (several replicas); a single
-- SQLite process counts in memory. The table is here too so that both
-- schemas stay the same, as `chartkey migrate` and the tests require.
CREATE TABLE rate_counts (
    scope   TEXT NOT NULL,
    client  TEXT NOT NULL,
    tat_ms  INTEGER NOT NULL,
    PRIMARY KEY (scope, client)
) STRICT;
