-- depends: 0007_media 0013_polls_reposts
-- Media on posts (the PostMedia model: the uploader's own processed media, in order) and
-- image tags on them (users, products or shops at x / y percent of the image).

CREATE TABLE post_media (
    post_id uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    media_id uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    media_order smallint NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (post_id, media_id),
    UNIQUE (post_id, media_order)
);
-- What else shows a media (its release waits until nothing does).
CREATE INDEX post_media_media_idx ON post_media (media_id);

CREATE TABLE image_tags (
    id uuid PRIMARY KEY,
    post_id uuid NOT NULL,
    media_id uuid NOT NULL,
    tag_type text NOT NULL CHECK (tag_type IN ('user', 'product', 'shop')),
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    product_id uuid REFERENCES products (id) ON DELETE CASCADE,
    shop_id uuid REFERENCES shops (id) ON DELETE CASCADE,
    x_position numeric(5, 2) NOT NULL CHECK (x_position BETWEEN 0 AND 100),
    y_position numeric(5, 2) NOT NULL CHECK (y_position BETWEEN 0 AND 100),
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    FOREIGN KEY (post_id, media_id) REFERENCES post_media (post_id, media_id) ON DELETE CASCADE,
    CHECK (num_nonnulls(user_id, product_id, shop_id) = 1),
    CHECK ((tag_type = 'user') = (user_id IS NOT NULL)),
    CHECK ((tag_type = 'product') = (product_id IS NOT NULL)),
    CHECK ((tag_type = 'shop') = (shop_id IS NOT NULL))
);
CREATE INDEX image_tags_media_idx ON image_tags (post_id, media_id, id);
CREATE INDEX image_tags_user_idx ON image_tags (user_id) WHERE user_id IS NOT NULL;
