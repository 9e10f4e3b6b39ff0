-- depends: 0006_event_outbox
-- Sign-in sessions (server/domain/sessions.py): one row per refresh-token family, i.e. per
-- login on a device, so a user can list where they are signed in and end one. `id` is the
-- family id, also the `sid` claim of the session's access tokens. `last_used_at` moves on each
-- refresh (at least every access-token lifetime while the device is active), never per request.

CREATE TABLE auth_sessions (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    user_agent text NOT NULL DEFAULT '',
    ip text NOT NULL DEFAULT '',
    revoked_at timestamptz
);
-- The "my devices" list: a user's live sessions, newest first (keyset on id, a UUIDv7).
CREATE INDEX auth_sessions_user_live_idx ON auth_sessions (user_id, id DESC)
    WHERE revoked_at IS NULL;
-- Recent revocations, re-recorded in the bus when a process starts (a memory bus forgets them).
CREATE INDEX auth_sessions_revoked_idx ON auth_sessions (revoked_at)
    WHERE revoked_at IS NOT NULL;

-- Families signed in before this migration become sessions too (no device details known).
INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at)
SELECT family_id, user_id, min(created_at), max(created_at), max(expires_at)
FROM refresh_tokens
WHERE revoked_at IS NULL
GROUP BY family_id, user_id
ON CONFLICT (id) DO NOTHING;
