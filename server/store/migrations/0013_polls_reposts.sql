-- depends: 0012_interactions
-- Polls (one per post, 2-10 options, single or multiple choice, anonymous or not, an optional
-- deadline) and reposts / quote posts, which are posts pointing at their original.

CREATE TABLE polls (
    id uuid PRIMARY KEY,
    post_id uuid NOT NULL UNIQUE REFERENCES posts (id) ON DELETE CASCADE,
    question text,
    allow_multiple boolean NOT NULL DEFAULT false,
    is_anonymous boolean NOT NULL DEFAULT false,
    -- Open this long after the post is published (then `expires_at` is set); NULL: no deadline.
    duration_s integer CHECK (duration_s > 0),
    expires_at timestamptz,
    closed_at timestamptz,
    -- Votes cast (a multiple-choice voter casts several) and people who voted.
    total_votes integer NOT NULL DEFAULT 0 CHECK (total_votes >= 0),
    voters_count integer NOT NULL DEFAULT 0 CHECK (voters_count >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE poll_options (
    id uuid PRIMARY KEY,
    poll_id uuid NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    position smallint NOT NULL,
    text text NOT NULL,
    votes_count integer NOT NULL DEFAULT 0 CHECK (votes_count >= 0),
    UNIQUE (poll_id, position)
);

CREATE TABLE poll_votes (
    poll_id uuid NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    option_id uuid NOT NULL REFERENCES poll_options (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (poll_id, user_id, option_id)
);
CREATE INDEX poll_votes_option_idx ON poll_votes (option_id, created_at DESC);

ALTER TABLE posts
    ADD COLUMN original_post_id uuid REFERENCES posts (id) ON DELETE SET NULL,
    ADD COLUMN is_repost boolean NOT NULL DEFAULT false,
    ADD COLUMN is_quote boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT posts_repost_has_original
        CHECK (NOT (is_repost OR is_quote) OR original_post_id IS NOT NULL OR deleted_at IS NOT NULL
               OR is_quote);
-- One live repost per user and post; the reposts list of a post, newest first.
CREATE UNIQUE INDEX posts_one_repost_key ON posts (author_id, original_post_id)
    WHERE is_repost AND deleted_at IS NULL;
CREATE INDEX posts_reposts_idx ON posts (original_post_id, id DESC)
    WHERE original_post_id IS NOT NULL AND deleted_at IS NULL;
