-- depends: 0001_foundation 0005_messaging 0006_event_outbox
-- Media: uploaded images and videos, their processing state and variants, and the resumable
-- uploads in flight.
--
-- Lifecycle: an upload is unattached and purged at `purge_after` (upload time + 24 h) unless
-- something attaches it first (a message, a profile picture or cover photo), which clears
-- `purge_after`. Releasing it (its message deleted for everyone, the profile picture replaced)
-- sets `purge_after` again once nothing else refers to it (forwards share the media). The purge
-- job deletes due rows and hands their stored objects to a deletion job in the same commit.

CREATE TABLE media (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media_type text NOT NULL CHECK (media_type IN ('image', 'video')),
    status text NOT NULL DEFAULT 'processing'
        CHECK (status IN ('processing', 'ready', 'failed')),
    failure_reason text,
    -- What sniffing found (never the client's Content-Type or file name).
    content_type text NOT NULL,
    byte_size bigint NOT NULL CHECK (byte_size >= 0),
    file_name text CHECK (length(file_name) <= 255),
    width integer,
    height integer,
    duration_s double precision,
    blurhash text,
    -- name -> {key, content_type, width, height, bytes} (and the HLS playlist for videos).
    variants jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The uploaded bytes, kept privately until processed (never served: metadata inside).
    source_key text,
    attached_at timestamptz,
    purge_after timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX media_owner_idx ON media (owner_id, created_at DESC, id DESC);
CREATE INDEX media_purge_idx ON media (purge_after) WHERE purge_after IS NOT NULL;

-- A message attachment points at the media it shows (forwards copy the pointer).
ALTER TABLE message_media ADD COLUMN media_id uuid REFERENCES media (id) ON DELETE SET NULL;
CREATE INDEX message_media_media_idx ON message_media (media_id) WHERE media_id IS NOT NULL;

-- The media behind the profile's picture and cover URLs (released when replaced).
ALTER TABLE users
    ADD COLUMN profile_picture_media_id uuid REFERENCES media (id) ON DELETE SET NULL,
    ADD COLUMN cover_photo_media_id uuid REFERENCES media (id) ON DELETE SET NULL;
CREATE INDEX users_profile_picture_media_idx ON users (profile_picture_media_id)
    WHERE profile_picture_media_id IS NOT NULL;
CREATE INDEX users_cover_photo_media_idx ON users (cover_photo_media_id)
    WHERE cover_photo_media_id IS NOT NULL;

-- Resumable uploads (tus 1.0): the bytes so far live in the node's upload spool; this row says
-- whose they are and how long the whole will be.
CREATE TABLE media_uploads (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upload_length bigint NOT NULL CHECK (upload_length > 0),
    file_name text CHECK (length(file_name) <= 255),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX media_uploads_owner_idx ON media_uploads (owner_id);
CREATE INDEX media_uploads_expires_idx ON media_uploads (expires_at);
