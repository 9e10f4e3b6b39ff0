-- depends: 0005_messaging
-- The transactional outbox of the event sink (server/domain/events.py): one row per committed
-- transaction that staged events, written in the same commit. The node that committed deletes
-- it once the events are published; a row still here after `events.republish_after_s` belongs
-- to a node that died between COMMIT and publish, and any node's sweeper republishes it.
-- UNLOGGED (no WAL: about half the outbox's cost on the message path): the rows bridge an
-- application crash, which PostgreSQL survives. What it gives up: after a crash of PostgreSQL
-- itself, or a failover to a replica, the table is empty, so events that were still waiting
-- for the sweeper at that moment (their node had died, or its bus was down) are not
-- republished; the writes themselves are intact and clients see them on their next fetch.

CREATE UNLOGGED TABLE event_outbox (
    id uuid PRIMARY KEY,
    node_id text NOT NULL,
    -- Commit time (set by the INSERT that travels with COMMIT); a failed republish moves it on.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Republish attempts that failed; past the sweeper's limit the row is dropped (logged).
    attempts integer NOT NULL DEFAULT 0,
    -- JSON text (never queried, only read back by the sweeper: no jsonb parse on the hot path):
    -- [{"k": "u", "to": [user ids], "t": type, "d": data} | {"k": "t", "to": topic, ...}]
    events text NOT NULL
) WITH (toast_tuple_target = 8160);
-- A row lives a few milliseconds: keep typical ones (a message view to both participants, a
-- few KB) inline and uncompressed instead of paying pglz and a TOAST insert on the hot path.
ALTER TABLE event_outbox ALTER COLUMN events SET STORAGE EXTERNAL;
CREATE INDEX event_outbox_created_idx ON event_outbox (created_at);
