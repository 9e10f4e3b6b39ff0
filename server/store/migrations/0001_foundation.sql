-- Accounts, tokens and the social graph.

CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    bio text,
    profile_picture_url text,
    cover_photo_url text,
    location text,
    website text,
    is_private boolean NOT NULL DEFAULT false,
    is_verified boolean NOT NULL DEFAULT false,
    is_active boolean NOT NULL DEFAULT true,
    roles text[] NOT NULL DEFAULT ARRAY['user'],
    followers_count integer NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    following_count integer NOT NULL DEFAULT 0 CHECK (following_count >= 0),
    posts_count integer NOT NULL DEFAULT 0 CHECK (posts_count >= 0),
    likes_received integer NOT NULL DEFAULT 0 CHECK (likes_received >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_search_idx ON users USING gin (
    to_tsvector('simple', username || ' ' || display_name || ' ' || coalesce(bio, ''))
);

CREATE TABLE follows (
    id uuid PRIMARY KEY,
    follower_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    following_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status text NOT NULL CHECK (status IN ('pending', 'accepted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    accepted_at timestamptz,
    CHECK (follower_id <> following_id),
    UNIQUE (follower_id, following_id)
);
CREATE INDEX follows_following_idx ON follows (following_id, status, id DESC);
CREATE INDEX follows_follower_idx ON follows (follower_id, status, id DESC);

CREATE TABLE blocks (
    id uuid PRIMARY KEY,
    blocker_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (blocker_id <> blocked_id),
    UNIQUE (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocker_idx ON blocks (blocker_id, id DESC);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id);

CREATE TABLE mutes (
    id uuid PRIMARY KEY,
    muter_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    muted_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (muter_id <> muted_id),
    UNIQUE (muter_id, muted_id)
);
CREATE INDEX mutes_muter_idx ON mutes (muter_id, id DESC);

CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE password_resets (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);
