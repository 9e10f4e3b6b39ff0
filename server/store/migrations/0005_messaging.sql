-- depends: 0001_foundation 0003_jobs_notifications 0004_commerce
-- Direct messaging: conversations, their participants, messages (with media, reactions and
-- per-user deletions).
--
-- Ordering: every message gets `seq`, the next number of its conversation, taken while the
-- conversation row is locked (UPDATE conversations SET message_seq = message_seq + 1), so the
-- list order (seq), created_at (the DB clock under that lock) and commit order agree.
-- Per-user state is kept as watermarks on the participant row: read up to `last_read_seq`,
-- delivered up to `last_delivered_seq`, history hidden up to `cleared_seq` ("delete
-- conversation").

CREATE TABLE conversations (
    id uuid PRIMARY KEY,
    conversation_type text NOT NULL DEFAULT 'direct'
        CHECK (conversation_type IN ('direct', 'group')),
    -- A direct conversation's two users, smaller id first: one conversation per pair.
    user_low uuid REFERENCES users (id) ON DELETE CASCADE,
    user_high uuid REFERENCES users (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    message_seq bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz,
    CHECK (conversation_type <> 'direct' OR (user_low IS NOT NULL AND user_low < user_high))
) WITH (fillfactor = 80);
-- Every message updates its conversation row (message_seq, last_message_at): no index covers
-- those columns and pages keep room, so the update is HOT. The conversation list is served by
-- the participants' (user_id, activity_at) index, where last_message_at is copied.
CREATE UNIQUE INDEX conversations_pair_key ON conversations (user_low, user_high)
    WHERE conversation_type = 'direct';

CREATE TABLE conversation_participants (
    id uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL DEFAULT now(),
    left_at timestamptz,
    is_muted boolean NOT NULL DEFAULT false,
    -- NULL with is_muted: muted until unmuted.
    muted_until timestamptz,
    last_read_at timestamptz,
    last_read_seq bigint NOT NULL DEFAULT 0,
    last_delivered_seq bigint NOT NULL DEFAULT 0,
    delivered_at timestamptz,
    unread_count integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    -- "Mark as unread" (a flag for the owner only; no receipt is withdrawn).
    marked_unread boolean NOT NULL DEFAULT false,
    -- "Delete conversation": messages with seq <= cleared_seq are gone for this user, and the
    -- conversation is hidden from their list until a new message arrives.
    cleared_seq bigint NOT NULL DEFAULT 0,
    cleared_at timestamptz,
    hidden boolean NOT NULL DEFAULT false,
    -- The list's sort key: last message time, or when the user joined for an empty one.
    activity_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, user_id)
);
CREATE INDEX conversation_participants_user_idx ON conversation_participants (user_id);
-- The conversation list: a user's visible conversations, latest activity first (keyset).
CREATE INDEX conversation_participants_list_idx
    ON conversation_participants (user_id, activity_at DESC, conversation_id DESC)
    WHERE NOT hidden;

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    sender_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content text NOT NULL DEFAULT '',
    message_type text NOT NULL
        CHECK (message_type IN ('text', 'image', 'video', 'link', 'product_context')),
    product_id uuid REFERENCES products (id) ON DELETE SET NULL,
    -- The product card (and seller) as it was when sent: the banner outlives the product.
    product_snapshot jsonb,
    replied_to_message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    forwarded_from_message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    is_forwarded boolean NOT NULL DEFAULT false,
    -- The sender's idempotency key: a resend with the same nonce returns this message.
    client_nonce text CHECK (length(client_nonce) BETWEEN 1 AND 100),
    media_count smallint NOT NULL DEFAULT 0,
    is_edited boolean NOT NULL DEFAULT false,
    edited_at timestamptz,
    -- Deleted for everyone: a tombstone (content, product and reactions are wiped).
    -- Deletion for one user only lives in message_deletions.
    deleted_at timestamptz,
    deleted_for text CHECK (deleted_for IN ('self', 'everyone')),
    created_at timestamptz NOT NULL,
    search tsvector GENERATED ALWAYS AS (
        CASE WHEN deleted_at IS NULL THEN to_tsvector('simple', content) END
    ) STORED,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_nonce_key ON messages (sender_id, client_nonce)
    WHERE client_nonce IS NOT NULL;
CREATE INDEX messages_sender_idx ON messages (sender_id, created_at);
CREATE INDEX messages_created_idx ON messages (created_at);
CREATE INDEX messages_product_idx ON messages (product_id) WHERE product_id IS NOT NULL;
CREATE INDEX messages_replied_idx ON messages (replied_to_message_id)
    WHERE replied_to_message_id IS NOT NULL;
CREATE INDEX messages_forwarded_idx ON messages (forwarded_from_message_id)
    WHERE forwarded_from_message_id IS NOT NULL;
-- The conversation's product banner: its latest product-context message.
CREATE INDEX messages_product_context_idx ON messages (conversation_id, seq DESC)
    WHERE product_snapshot IS NOT NULL;
CREATE INDEX messages_search_idx ON messages USING gin (search);

-- A message hidden for one user ("delete for me").
CREATE TABLE message_deletions (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, message_id)
);
CREATE INDEX message_deletions_message_idx ON message_deletions (message_id);

-- Attachments (filled by the media capability; the model is ready for them).
CREATE TABLE message_media (
    id uuid PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    media_type text NOT NULL CHECK (media_type IN ('image', 'video', 'file')),
    media_url text NOT NULL,
    thumbnail_url text,
    file_name text,
    file_size bigint CHECK (file_size >= 0),
    position smallint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_media_message_idx ON message_media (message_id, position);

CREATE TABLE message_reactions (
    id uuid PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, user_id, emoji)
);
CREATE INDEX message_reactions_user_idx ON message_reactions (user_id);
