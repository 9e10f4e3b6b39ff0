-- depends: 0001_foundation
-- Durable background jobs, and notifications with their unread counters and preferences.

-- The job queue. A worker claims ready rows with FOR UPDATE SKIP LOCKED and leases them
-- (status 'running', locked_until); the lease is renewed while the job runs. A row whose lease
-- expired belongs to a dead worker and is claimable again.
CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'dead')),
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: the worker's configured jobs.max_attempts.
    max_attempts integer CHECK (max_attempts > 0),
    -- While a job with this key is still queued, enqueueing another one is a no-op.
    coalesce_key text,
    -- The payload is wiped once the job is finished (it may hold a secret, e.g. a reset link).
    sensitive boolean NOT NULL DEFAULT false,
    locked_by text,
    locked_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX jobs_ready_idx ON jobs (run_at) WHERE status = 'queued';
CREATE INDEX jobs_lease_idx ON jobs (locked_until) WHERE status = 'running';
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE status IN ('done', 'dead');
CREATE UNIQUE INDEX jobs_coalesce_key ON jobs (coalesce_key)
    WHERE status = 'queued' AND coalesce_key IS NOT NULL;

-- One row per (periodic job, period): whichever worker inserts it enqueues that period's job,
-- so several workers schedule each period exactly once.
CREATE TABLE periodic_runs (
    name text NOT NULL,
    period_start timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, period_start)
);

-- Notifications. One row per batch: the same type + entity for a recipient within five minutes
-- (and while unread) updates the open row instead of adding one; the unique partial index on
-- the batch key makes that an atomic INSERT ... ON CONFLICT even under concurrency.
CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    recipient_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL,
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    -- The latest actor (NULL for system notifications or a deleted account).
    actor_id uuid REFERENCES users (id) ON DELETE SET NULL,
    -- Distinct actors, latest first, at most 100.
    actor_ids uuid[] NOT NULL DEFAULT '{}',
    actor_count integer NOT NULL DEFAULT 0 CHECK (actor_count >= 0),
    event_count integer NOT NULL DEFAULT 1 CHECK (event_count >= 1),
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    content text NOT NULL DEFAULT '',
    -- false: the recipient turned in-app off for this category; kept only for push / email.
    visible boolean NOT NULL DEFAULT true,
    is_read boolean NOT NULL DEFAULT false,
    read_at timestamptz,
    batch_open boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    latest_at timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT (batch_open AND is_read))
);
CREATE UNIQUE INDEX notifications_batch_key
    ON notifications (recipient_id, type, entity_type, entity_id) WHERE batch_open;
CREATE INDEX notifications_feed_idx ON notifications (recipient_id, latest_at DESC, id DESC);
CREATE INDEX notifications_unread_idx
    ON notifications (recipient_id, latest_at DESC, id DESC) WHERE NOT is_read;
CREATE INDEX notifications_type_idx
    ON notifications (recipient_id, type, latest_at DESC, id DESC);
CREATE INDEX notifications_entity_idx ON notifications (entity_type, entity_id);

-- O(1) unread count, moved in the same transactions as the rows; never negative.
CREATE TABLE notification_counters (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    unread integer NOT NULL DEFAULT 0 CHECK (unread >= 0),
    last_notified_at timestamptz,
    daily_digest_until timestamptz,
    weekly_digest_until timestamptz
);
CREATE INDEX notification_counters_notified_idx
    ON notification_counters (last_notified_at, user_id);

-- Preferences: only what the user changed (sparse JSON); defaults are applied in code.
CREATE TABLE notification_settings (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    prefs jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now()
);
