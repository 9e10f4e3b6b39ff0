-- depends: 0005_messaging
-- The transactional outbox of the event sink (server/domain/events.py): one row per committed
-- transaction that staged events, written in the same commit. The node that committed deletes
-- it once the events are published; a row still here after `events.republish_after_s` belongs
-- to a node that died between COMMIT and publish, and any node's sweeper republishes it.

CREATE TABLE event_outbox (
    id uuid PRIMARY KEY,
    node_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- [{"k": "u", "to": [user ids], "t": type, "d": data} | {"k": "t", "to": topic, ...}]
    events jsonb NOT NULL
);
CREATE INDEX event_outbox_created_idx ON event_outbox (created_at);
