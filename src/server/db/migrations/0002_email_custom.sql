-- Email + password and custom-id logins live on the user row.
ALTER TABLE users
    ADD COLUMN email     VARCHAR(255) CONSTRAINT users_email_key UNIQUE,
    ADD COLUMN custom_id VARCHAR(128) CONSTRAINT users_custom_id_key UNIQUE,
    ADD COLUMN password  TEXT; -- argon2id, libsodium crypto_pwhash_str format
