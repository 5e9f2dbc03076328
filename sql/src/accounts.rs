//! The accounts of `--auth sigv4`, as the store keeps them: rows of the catalog, secrets sealed
//! by the server (the store never sees them in the clear). [`SqlStore`] runs the statements for
//! SQLite and Spin; the host's PostgreSQL backend runs the same statements on its pool.
//!
//! Secrets are sealed with ChaCha20-Poly1305, the account's name as associated data, under a key
//! kept outside the store (the host's key file, the Spin variable `secret_key`): a copy of the
//! database alone reveals no secret, and a sealed secret cannot be moved to another account's row.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use dynabox_handler::sigv4::unhex;

use crate::dialect::Catalog;
use crate::{Columns, Connection, Param, Row, SqlError, SqlStore};

const NONCE_BYTES: usize = 12;

/// The key that seals secrets.
pub struct SealingKey(Key);

impl SealingKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SealingKey {
        SealingKey(bytes.into())
    }

    /// A key written as 64 hex digits, as the key file and the Spin variable hold it.
    pub fn from_hex(text: &str) -> Option<SealingKey> {
        let bytes: [u8; 32] = unhex(text.trim())?.try_into().ok()?;
        Some(SealingKey::from_bytes(bytes))
    }

    pub fn seal(&self, account: &str, secret: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the system has randomness");
        let payload = Payload { msg: secret.as_bytes(), aad: account.as_bytes() };
        let sealed = ChaCha20Poly1305::new(&self.0).encrypt(Nonce::from_slice(&nonce), payload);
        [&nonce[..], &sealed.expect("sealing a short secret cannot fail")].concat()
    }

    /// None when the secret was sealed under another key or for another account.
    pub fn open(&self, account: &str, sealed: &[u8]) -> Option<String> {
        let (nonce, sealed) = sealed.split_at_checked(NONCE_BYTES)?;
        let payload = Payload { msg: sealed, aad: account.as_bytes() };
        let secret = ChaCha20Poly1305::new(&self.0).decrypt(Nonce::from_slice(nonce), payload).ok()?;
        String::from_utf8(secret).ok()
    }

    /// The account's working secrets, the current one first; None when one was sealed under
    /// another key.
    pub fn open_all(&self, account: &str, record: &AccountRecord) -> Option<Vec<String>> {
        std::iter::once(&record.secret)
            .chain(&record.previous_secret)
            .map(|sealed| self.open(account, sealed))
            .collect()
    }
}

/// An account's credentials: its id (in ARNs and the catalog) and its sealed secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account_id: String,
    pub secret: Vec<u8>,
    /// The secret before the last rotation, until it is revoked.
    pub previous_secret: Option<Vec<u8>>,
}

/// An account as `dynabox account list` shows it; never its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountListing {
    pub name: String,
    pub account_id: String,
    pub has_previous_secret: bool,
    /// Seconds since the epoch.
    pub created: i64,
}

impl SqlStore {
    /// Records a new account with its sealed secret; false when the name is taken.
    pub async fn create_account(
        &self,
        conn: &mut impl Connection,
        name: &str,
        account_id: &str,
        secret: &[u8],
    ) -> Result<bool, SqlError> {
        let params = [Param::Text(name), Param::Text(account_id), Param::Bytes(secret)];
        self.found(conn, |catalog| catalog.insert_account, &params).await
    }

    pub async fn find_account(
        &self,
        conn: &mut impl Connection,
        name: &str,
    ) -> Result<Option<AccountRecord>, SqlError> {
        let rows = self.catalog_query(conn, |catalog| catalog.find_account, &[Param::Text(name)]).await?;
        let Some(mut row) = rows.into_iter().next() else { return Ok(None) };
        let previous_secret = row.optional_bytes(2)?;
        Ok(Some(AccountRecord { account_id: row.text(0)?, secret: row.bytes(1)?, previous_secret }))
    }

    pub async fn list_accounts(&self, conn: &mut impl Connection) -> Result<Vec<AccountListing>, SqlError> {
        let rows = self.catalog_query(conn, |catalog| catalog.list_accounts, &[]).await?;
        rows.into_iter()
            .map(|mut row| {
                Ok(AccountListing {
                    name: row.text(0)?,
                    account_id: row.text(1)?,
                    has_previous_secret: row.int(2)? != 0,
                    created: row.int(3)?,
                })
            })
            .collect()
    }

    /// Whether there was such an account. Its tables are the caller's to delete.
    pub async fn delete_account(&self, conn: &mut impl Connection, name: &str) -> Result<bool, SqlError> {
        self.found(conn, |catalog| catalog.delete_account, &[Param::Text(name)]).await
    }

    /// Makes `secret` the account's secret and the current one its previous; false when there is
    /// no such account.
    pub async fn rotate_secret(&self, conn: &mut impl Connection, name: &str, secret: &[u8]) -> Result<bool, SqlError> {
        self.found(conn, |catalog| catalog.rotate_secret, &[Param::Text(name), Param::Bytes(secret)]).await
    }

    /// Stops the previous secret from working; false when there is no such account.
    pub async fn revoke_previous_secret(&self, conn: &mut impl Connection, name: &str) -> Result<bool, SqlError> {
        self.found(conn, |catalog| catalog.revoke_previous_secret, &[Param::Text(name)]).await
    }

    /// Whether a statement that returns a row when it finds its account did.
    async fn found(
        &self,
        conn: &mut impl Connection,
        statement: fn(&Catalog) -> &'static str,
        params: &[Param<'_>],
    ) -> Result<bool, SqlError> {
        Ok(!self.catalog_query(conn, statement, params).await?.is_empty())
    }

    async fn catalog_query(
        &self,
        conn: &mut impl Connection,
        statement: fn(&Catalog) -> &'static str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, SqlError> {
        conn.query(statement(self.dialect().catalog()), params).await
    }
}
