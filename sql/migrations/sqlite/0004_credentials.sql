-- Accounts of `--auth sigv4`: the name is the access key id; secrets are sealed by the server's
-- key (never stored in the clear). `previous_secret` keeps working until it is revoked, so
-- clients can move to a rotated secret without downtime.
CREATE TABLE accounts (
    name            TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL UNIQUE,
    secret          BLOB NOT NULL,
    previous_secret BLOB,
    created         INTEGER NOT NULL DEFAULT (unixepoch())
);
