-- depends: 0011_posts 0012_interactions 0013_polls_reposts
-- Issue 14, part S: lists (curated feeds), full-text search over posts, muted words (keyword
-- filters) and search history.

-- Lists: named collections of users, private (owner only) or public.
CREATE TABLE lists (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    is_private boolean NOT NULL DEFAULT false,
    members_count integer NOT NULL DEFAULT 0 CHECK (members_count >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- The owner's lists, newest first.
CREATE INDEX lists_owner_idx ON lists (owner_id, id DESC);

CREATE TABLE list_members (
    id uuid PRIMARY KEY,
    list_id uuid NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL,
    UNIQUE (list_id, user_id)
);
-- The members page (newest first) and, for a deleted account, its memberships.
CREATE INDEX list_members_page_idx ON list_members (list_id, id DESC);
CREATE INDEX list_members_user_idx ON list_members (user_id);

-- Full text over posts: NFC-normalised content (hashtags are in the text: `#café` gives the
-- word `café`) with the 'simple' configuration (no stemming: the app serves every language;
-- the same configuration as the users and commerce indexes). The GIN index holds only what
-- search can ever return: published, not deleted.
ALTER TABLE posts ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple', normalize(content, NFC))
) STORED;
CREATE INDEX posts_search_idx ON posts USING gin (search)
    WHERE status = 'published' AND deleted_at IS NULL;

-- Hashtag search: prefix matches on the tag (LIKE 'caf%' needs text_pattern_ops), and the most
-- used first.
CREATE INDEX hashtags_tag_prefix_idx ON hashtags (tag text_pattern_ops);
CREATE INDEX hashtags_popular_idx ON hashtags (posts_count DESC, id DESC);

-- User search ranks popular accounts higher: a scan in followers order (filtered by the text
-- match) answers broad prefixes ("a") without sorting every match.
CREATE INDEX users_popular_idx ON users (followers_count DESC, id DESC) WHERE is_active;

-- Muted words (keyword filters, as Mastodon's): whole-word, case-insensitive phrases that hide
-- matching posts from the user's feeds and search. `phrase` is stored NFC-normalised and lower
-- case; `query` is its phrase tsquery, matched against posts.search (same configuration).
CREATE TABLE muted_words (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phrase text NOT NULL,
    query tsquery GENERATED ALWAYS AS (phraseto_tsquery('simple', phrase)) STORED,
    expires_at timestamptz,
    created_at timestamptz NOT NULL,
    UNIQUE (user_id, phrase)
);
CREATE INDEX muted_words_user_idx ON muted_words (user_id, id DESC);
-- OR of tsqueries (the `||` operator as an aggregate): a viewer's muted words become one query,
-- computed once per statement, instead of a lookup per post read.
CREATE AGGREGATE tsquery_any (tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

-- Search history (optional, per user): one row per (type, query), bumped when repeated.
CREATE TABLE search_history (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    search_query text NOT NULL,
    search_type text NOT NULL CHECK (search_type IN (
        'user', 'post', 'hashtag', 'product', 'shop', 'event', 'group', 'installment_plan',
        'all')),
    created_at timestamptz NOT NULL,
    UNIQUE (user_id, search_type, search_query)
);
CREATE INDEX search_history_user_idx ON search_history (user_id, created_at DESC, id DESC);
