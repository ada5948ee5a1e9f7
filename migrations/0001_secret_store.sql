-- Encrypted, versioned secret store (bulwark-secrets `PostgresStore`).
--
-- Every write of a secret is a new row (version). The value is sealed with AES-256-GCM
-- under a random per-version data key; the data key is sealed (wrapped) under the master
-- key identified by key_id. Associated data binds the ciphertext to (store, name, version)
-- and the wrapped key additionally to key_id, so rows cannot be swapped or re-labelled.
-- Rotating the master key re-wraps wrapped_dek (and updates key_id) without touching
-- ciphertext. Deletes are soft: deleted_at is set and the row is no longer served.
-- No column ever holds plaintext.
CREATE TABLE bulwark_secret_versions (
    store        TEXT        NOT NULL CHECK (length(store) BETWEEN 1 AND 256),
    name         TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 512),
    version      INTEGER     NOT NULL CHECK (version > 0),
    alg          TEXT        NOT NULL DEFAULT 'A256GCM' CHECK (alg = 'A256GCM'),
    key_id       TEXT        NOT NULL,
    dek_nonce    BYTEA       NOT NULL CHECK (octet_length(dek_nonce) = 12),
    wrapped_dek  BYTEA       NOT NULL CHECK (octet_length(wrapped_dek) = 48),
    value_nonce  BYTEA       NOT NULL CHECK (octet_length(value_nonce) = 12),
    ciphertext   BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    rewrapped_at TIMESTAMPTZ,
    deleted_at   TIMESTAMPTZ,
    PRIMARY KEY (store, name, version)
);

-- Finds the rows still wrapped under an old master key during rotation.
CREATE INDEX bulwark_secret_versions_key_id ON bulwark_secret_versions (store, key_id);
