-- depends: 0015_post_media
-- Feeds: per-user home timelines (the embedded engine's fan-out-on-write store; the Redis
-- engine keeps them in sorted sets instead), followed hashtags, hourly hashtag usage for
-- trending, and the index explore's candidate query reads.

-- A cache, rebuildable from posts and follows: one row per (reader, post) pushed by the
-- fan-out job. Pages read (user_id, published_at DESC, post_id DESC); deletions retract by
-- post_id.
CREATE TABLE home_timeline (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
CREATE INDEX home_timeline_page_idx ON home_timeline (user_id, published_at DESC, post_id DESC);
CREATE INDEX home_timeline_post_idx ON home_timeline (post_id);
-- Whose timeline is built: fan-out writes only into built timelines (a reader who has not read
-- for a while costs nothing), and a reader without one is rebuilt on their next read.
CREATE TABLE home_timeline_state (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    built_at timestamptz NOT NULL,
    read_at timestamptz NOT NULL
);
CREATE INDEX home_timeline_state_read_idx ON home_timeline_state (read_at);

CREATE TABLE hashtag_follows (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hashtag_id uuid NOT NULL REFERENCES hashtags (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, hashtag_id)
);
CREATE INDEX hashtag_follows_hashtag_idx ON hashtag_follows (hashtag_id);

-- Uses of each hashtag per UTC hour (published posts; a deletion takes its use back from the
-- hour it was published in). Trending compares the last hours with the days before.
CREATE TABLE hashtag_usage_hourly (
    hashtag_id uuid NOT NULL REFERENCES hashtags (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    uses integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    PRIMARY KEY (hashtag_id, hour)
);
CREATE INDEX hashtag_usage_hour_idx ON hashtag_usage_hourly (hour, hashtag_id);

-- Explore: the most recent public, published, live posts (the candidate window).
CREATE INDEX posts_public_recent_idx ON posts (published_at DESC, id DESC)
    WHERE status = 'published' AND deleted_at IS NULL AND visibility = 'public'
      AND NOT is_repost;
