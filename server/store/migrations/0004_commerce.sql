-- depends: 0001_foundation
-- The commerce read model: shops, products, events, buy-together groups and installment
-- plans, fed by the commerce services through /api/internal/commerce/*.
-- `updated_at` is the version the commerce service stamped on the entity (out-of-order
-- deliveries older than it are ignored); `ingested_at` is when this server last applied one.

CREATE TABLE shops (
    id uuid PRIMARY KEY,
    handle text NOT NULL CHECK (handle ~ '^[a-z0-9_]{2,40}$'),
    name text NOT NULL,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    logo_url text,
    description text,
    is_verified boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', handle || ' ' || name), 'A')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'C')
    ) STORED
);
CREATE UNIQUE INDEX shops_handle_key ON shops (handle);
CREATE INDEX shops_owner_idx ON shops (owner_id, id DESC);
CREATE INDEX shops_search_idx ON shops USING gin (search);

CREATE TABLE products (
    id uuid PRIMARY KEY,
    shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    images text[] NOT NULL DEFAULT '{}',
    price numeric(19, 4) NOT NULL CHECK (price >= 0),
    currency char(3) NOT NULL,
    is_available boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'C')
    ) STORED
);
CREATE INDEX products_shop_idx ON products (shop_id, id DESC);
CREATE INDEX products_owner_idx ON products (owner_id);
CREATE INDEX products_search_idx ON products USING gin (search);

CREATE TABLE commerce_events (
    id uuid PRIMARY KEY,
    organizer_id uuid REFERENCES users (id) ON DELETE SET NULL,
    shop_id uuid REFERENCES shops (id) ON DELETE SET NULL,
    title text NOT NULL,
    description text,
    image_url text,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz,
    timezone text NOT NULL DEFAULT 'UTC',
    location_name text,
    location_address text,
    is_online boolean NOT NULL DEFAULT false,
    ticket_status text NOT NULL
        CHECK (ticket_status IN ('available', 'limited', 'sold_out', 'not_on_sale', 'cancelled')),
    price_min numeric(19, 4) CHECK (price_min >= 0),
    price_max numeric(19, 4) CHECK (price_max >= price_min),
    currency char(3),
    updated_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR ends_at >= starts_at),
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A')
        || setweight(to_tsvector('simple',
               coalesce(location_name, '') || ' ' || coalesce(location_address, '')), 'B')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'C')
    ) STORED
);
CREATE INDEX commerce_events_starts_idx ON commerce_events (starts_at, id);
CREATE INDEX commerce_events_search_idx ON commerce_events USING gin (search);

CREATE TABLE buy_together_groups (
    id uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    creator_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_price numeric(19, 4) NOT NULL CHECK (target_price >= 0),
    individual_price numeric(19, 4) NOT NULL CHECK (individual_price >= target_price),
    currency char(3) NOT NULL,
    total_spots integer NOT NULL CHECK (total_spots BETWEEN 2 AND 10000),
    participant_count integer NOT NULL DEFAULT 0 CHECK (participant_count >= 0),
    expires_at timestamptz NOT NULL,
    -- The commerce service's own lifecycle; open / almost full / full / expired are derived.
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cancelled')),
    -- Set once the expiry has been published on `group:<id>` (or needs no announcement).
    expiry_announced boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX buy_together_groups_creator_idx ON buy_together_groups (creator_id, id DESC);
CREATE INDEX buy_together_groups_product_idx ON buy_together_groups (product_id, id DESC);
CREATE INDEX buy_together_groups_expiry_idx ON buy_together_groups (expires_at)
    WHERE NOT expiry_announced;

-- One row per (group, user) ever seen; `joined` false is a leave kept as a version marker so
-- a late, older join cannot undo it.
CREATE TABLE buy_together_participants (
    group_id uuid NOT NULL REFERENCES buy_together_groups (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined boolean NOT NULL,
    joined_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX buy_together_participants_user_idx ON buy_together_participants (user_id, group_id)
    WHERE joined;

CREATE TABLE installment_plans (
    id uuid PRIMARY KEY,
    product_id uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    duration_months integer NOT NULL CHECK (duration_months BETWEEN 1 AND 120),
    monthly_amount numeric(19, 4) NOT NULL CHECK (monthly_amount >= 0),
    total_cost numeric(19, 4) NOT NULL CHECK (total_cost >= 0),
    interest_rate numeric(7, 4) NOT NULL DEFAULT 0 CHECK (interest_rate BETWEEN 0 AND 100),
    down_payment numeric(19, 4) NOT NULL DEFAULT 0 CHECK (down_payment >= 0),
    currency char(3) NOT NULL,
    updated_at timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX installment_plans_product_idx ON installment_plans (product_id, duration_months, id);

-- Deleted entities: a delete is a version too, so an older upsert arriving after it is ignored.
CREATE TABLE commerce_tombstones (
    kind text NOT NULL,
    id uuid NOT NULL,
    version timestamptz NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);
CREATE INDEX commerce_tombstones_deleted_idx ON commerce_tombstones (deleted_at);
