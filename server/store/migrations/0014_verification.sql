-- depends: 0008_account_security
-- Email verification (issue 17, finding 4): with auth.registration = "verify_email" a new
-- account signs in only once its owner follows the link mailed to it, so registration can
-- answer alike for a fresh and a taken email. NULL: not verified. Accounts that existed
-- before this migration count as verified (they were created without the check).

ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
UPDATE users SET email_verified_at = created_at;

-- Single-use, expiring verification links (only the SHA-256 of the token is stored).
CREATE TABLE email_verifications (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX email_verifications_user_idx ON email_verifications (user_id);
