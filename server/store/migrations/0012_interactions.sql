-- depends: 0011_posts
-- Interactions with posts: likes, comments (nested) and their likes, bookmarks in collections,
-- hidden posts, polls with options and votes, and reposts / quote posts (as posts).
-- Counters live on their parent rows and move in the same transaction as the rows they count.

CREATE TABLE post_likes (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, user_id)
);
-- The likers list, newest first.
CREATE INDEX post_likes_list_idx ON post_likes (post_id, created_at DESC, user_id DESC);
CREATE INDEX post_likes_user_idx ON post_likes (user_id, post_id);

CREATE TABLE comments (
    id uuid PRIMARY KEY,
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_id uuid REFERENCES comments (id) ON DELETE CASCADE,
    depth smallint NOT NULL CHECK (depth >= 0),
    content text NOT NULL,
    entities jsonb NOT NULL DEFAULT '[]',
    likes_count integer NOT NULL DEFAULT 0 CHECK (likes_count >= 0),
    replies_count integer NOT NULL DEFAULT 0 CHECK (replies_count >= 0),
    edited_at timestamptz,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    CHECK ((parent_id IS NULL) = (depth = 0))
);
-- Top-level comments of a post, oldest first; the replies of a comment, oldest first.
CREATE INDEX comments_top_idx ON comments (post_id, id) WHERE parent_id IS NULL;
CREATE INDEX comments_replies_idx ON comments (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX comments_post_idx ON comments (post_id) WHERE deleted_at IS NULL;
CREATE INDEX comments_author_idx ON comments (author_id, post_id) WHERE deleted_at IS NULL;

CREATE TABLE comment_likes (
    comment_id uuid NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (comment_id, user_id)
);

CREATE TABLE bookmark_collections (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    bookmarks_count integer NOT NULL DEFAULT 0 CHECK (bookmarks_count >= 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX bookmark_collections_name_key ON bookmark_collections (user_id, lower(name));
CREATE INDEX bookmark_collections_user_idx ON bookmark_collections (user_id, id DESC);

CREATE TABLE bookmarks (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    collection_id uuid REFERENCES bookmark_collections (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (user_id, post_id)
);
CREATE INDEX bookmarks_user_idx ON bookmarks (user_id, id DESC);
CREATE INDEX bookmarks_collection_idx ON bookmarks (collection_id, id DESC)
    WHERE collection_id IS NOT NULL;

-- "Hide / not interested": out of that user's feeds.
CREATE TABLE post_hides (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, post_id)
);
