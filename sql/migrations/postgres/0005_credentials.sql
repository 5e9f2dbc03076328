-- Accounts of `--auth sigv4`: the name is the access key id; secrets are sealed by the server's
-- key (never stored in the clear). `previous_secret` keeps working until it is revoked, so
-- clients can move to a rotated secret without downtime.
CREATE TABLE dynabox.accounts (
    name            text COLLATE "C" PRIMARY KEY,
    account_id      text NOT NULL UNIQUE,
    secret          bytea NOT NULL,
    previous_secret bytea,
    created         timestamptz NOT NULL DEFAULT now()
);
