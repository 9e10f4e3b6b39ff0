-- depends: 0004_commerce 0006_event_outbox
-- Posts: the centre of the social half. Content stays plain text; its entities (mentions,
-- hashtags, $shop mentions, URLs) are computed on write and stored with their offsets, so
-- clients never render user HTML.

CREATE TABLE posts (
    id uuid PRIMARY KEY,
    author_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The creator and every accepted co-author, creator first: what visibility, blocks and
    -- bylines read (maintained with post_collaborators in the same transaction).
    author_ids uuid[] NOT NULL,
    content text NOT NULL DEFAULT '',
    entities jsonb NOT NULL DEFAULT '[]',
    post_type text NOT NULL CHECK (post_type IN ('text', 'image', 'video', 'poll', 'mixed')),
    status text NOT NULL
        CHECK (status IN ('draft', 'pending_collaboration', 'scheduled', 'published')),
    visibility text NOT NULL CHECK (visibility IN ('public', 'followers', 'private')),
    is_collaborative boolean NOT NULL DEFAULT false,
    likes_count integer NOT NULL DEFAULT 0 CHECK (likes_count >= 0),
    comments_count integer NOT NULL DEFAULT 0 CHECK (comments_count >= 0),
    reposts_count integer NOT NULL DEFAULT 0 CHECK (reposts_count >= 0),
    bookmarks_count integer NOT NULL DEFAULT 0 CHECK (bookmarks_count >= 0),
    edit_count integer NOT NULL DEFAULT 0,
    edited_at timestamptz,
    publish_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    published_at timestamptz,
    deleted_at timestamptz,
    CHECK ((status = 'published') = (published_at IS NOT NULL)),
    CHECK ((status = 'scheduled') = (publish_at IS NOT NULL)),
    CHECK (author_ids[1] = author_id)
);
-- Profile grids: an author's published posts, newest first.
CREATE INDEX posts_author_published_idx ON posts (author_id, published_at DESC, id DESC)
    WHERE status = 'published' AND deleted_at IS NULL;
-- Drafts (and pending / scheduled posts) of their author, last touched first.
CREATE INDEX posts_author_unpublished_idx ON posts (author_id, updated_at DESC, id DESC)
    WHERE status <> 'published' AND deleted_at IS NULL;
CREATE INDEX posts_scheduled_idx ON posts (publish_at)
    WHERE status = 'scheduled' AND deleted_at IS NULL;
CREATE INDEX posts_deleted_idx ON posts (deleted_at) WHERE deleted_at IS NOT NULL;

-- Every edit of a published post keeps the version it replaced.
CREATE TABLE post_versions (
    id uuid PRIMARY KEY,
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    content text NOT NULL,
    entities jsonb NOT NULL,
    edited_by uuid REFERENCES users (id) ON DELETE SET NULL,
    -- When this version was current: from `valid_from` until it was replaced at `replaced_at`.
    valid_from timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL
);
CREATE INDEX post_versions_post_idx ON post_versions (post_id, id DESC);

-- Co-authors. A declined invitation deletes its row (the creator is told); `accepted` ones
-- are in posts.author_ids.
CREATE TABLE post_collaborators (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'co_author' CHECK (role IN ('co_author', 'tagged_contributor')),
    status text NOT NULL CHECK (status IN ('pending', 'accepted')),
    invited_by uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    responded_at timestamptz,
    PRIMARY KEY (post_id, user_id)
);
-- A co-author's profile grid and their pending invitations.
CREATE INDEX post_collaborators_user_idx ON post_collaborators (user_id, status, post_id);

CREATE TABLE post_mentions (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_mentions_user_idx ON post_mentions (user_id, post_id);

-- Hashtags of published posts, counted (`posts_count`: published, not deleted).
CREATE TABLE hashtags (
    id uuid PRIMARY KEY,
    tag text NOT NULL UNIQUE,
    posts_count integer NOT NULL DEFAULT 0 CHECK (posts_count >= 0),
    created_at timestamptz NOT NULL
);
CREATE TABLE post_hashtags (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    hashtag_id uuid NOT NULL REFERENCES hashtags (id) ON DELETE CASCADE,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, hashtag_id)
);
CREATE INDEX post_hashtags_feed_idx ON post_hashtags (hashtag_id, published_at DESC, post_id DESC);

-- Commerce links, drawn as the commerce read model's cards. A linked entity removed upstream
-- takes its link with it.
CREATE TABLE post_products (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    display_order smallint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, product_id)
);
CREATE INDEX post_products_product_idx ON post_products (product_id, post_id);

CREATE TABLE post_shops (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    -- `link`: attached as a card; `tag`: explicitly tagged; `mention`: `$handle` in the text.
    mention_type text NOT NULL CHECK (mention_type IN ('link', 'tag', 'mention')),
    display_order smallint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, shop_id)
);
CREATE INDEX post_shops_shop_idx ON post_shops (shop_id, post_id);

CREATE TABLE post_events (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    event_id uuid NOT NULL REFERENCES commerce_events (id) ON DELETE CASCADE,
    display_order smallint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, event_id)
);
CREATE INDEX post_events_event_idx ON post_events (event_id, post_id);

CREATE TABLE post_groups (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES buy_together_groups (id) ON DELETE CASCADE,
    display_order smallint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, group_id)
);
CREATE INDEX post_groups_group_idx ON post_groups (group_id, post_id);

CREATE TABLE post_plans (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    plan_id uuid NOT NULL REFERENCES installment_plans (id) ON DELETE CASCADE,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    display_order smallint NOT NULL,
    is_featured boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, plan_id)
);
CREATE INDEX post_plans_plan_idx ON post_plans (plan_id, post_id);
CREATE INDEX post_plans_product_idx ON post_plans (post_id, product_id);
