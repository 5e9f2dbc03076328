//! Accounts, PolarDB's way: an account's name is its access key id, and a generated key is its
//! secret access key. `dynabox account ...` manages them in the same store a server runs on.
//!
//! Secrets are kept sealed (`dynabox_sql::accounts::SealingKey`) under the server's key, a file of
//! its own outside the store.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::json;

use dynabox_handler::sigv4::hex;
use dynabox_handler::storage::{Request, StorageError};
pub use dynabox_sql::accounts::SealingKey;
use dynabox_sql::accounts::{AccountListing, AccountRecord};

use crate::storage::{Ask, Store};

/// Secret access keys are 40 characters, like AWS's.
const SECRET_CHARS: usize = 40;
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Reads the key file (64 hex digits), or creates it, readable by its owner only, when there is
/// none yet.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<SealingKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => SealingKey::from_hex(&text)
            .with_context(|| format!("{} does not hold a key (64 hex digits)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            write_private(path, &hex(&bytes)).with_context(|| format!("creating the key file {}", path.display()))?;
            Ok(SealingKey::from_bytes(bytes))
        }
        Err(e) => Err(e).with_context(|| format!("reading the key file {}", path.display())),
    }
}

/// Where the key file is when no flag says: `$XDG_CONFIG_HOME/dynabox/secret.key`, else
/// `~/.config/dynabox/secret.key`.
pub fn default_key_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("dynabox").join("secret.key"))
}

/// What `dynabox account` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AccountCommand {
    /// Creates an account; prints `NAME SECRET` (the only time the secret is shown).
    Create { name: String },
    /// Lists the accounts (never their secrets).
    List,
    /// Deletes an account with all its tables and backups.
    Delete { name: String },
    /// Gives the account a new secret; prints `NAME SECRET`. The old secret keeps working until
    /// `revoke-old`, so clients can move over without downtime.
    Rotate { name: String },
    /// Stops the secret before the last rotation from working.
    RevokeOld { name: String },
}

/// A secret just made for an account, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    pub name: String,
    pub secret: String,
    pub account_id: String,
}

/// Runs one account command against the store; what it prints, as lines or as one JSON value.
pub async fn run(
    command: &AccountCommand,
    backend: &dyn Store,
    key: &SealingKey,
    json: bool,
) -> anyhow::Result<String> {
    let secret_line = |issued: Issued| {
        if json {
            json!({"AccessKeyId": issued.name, "SecretAccessKey": issued.secret, "AccountId": issued.account_id})
                .to_string()
        } else {
            format!("{} {}", issued.name, issued.secret)
        }
    };
    match command {
        AccountCommand::Create { name } => Ok(secret_line(create(backend, key, name).await?)),
        AccountCommand::List => {
            let accounts = list(backend).await?;
            if json {
                let accounts: Vec<_> = accounts
                    .iter()
                    .map(|a| {
                        json!({"AccessKeyId": a.name, "AccountId": a.account_id, "Created": a.created,
                               "PreviousSecretActive": a.has_previous_secret})
                    })
                    .collect();
                return Ok(serde_json::Value::from(accounts).to_string());
            }
            Ok(accounts
                .iter()
                .map(|a| {
                    let previous = if a.has_previous_secret { " (previous secret still active)" } else { "" };
                    format!("{} {}{previous}", a.name, a.account_id)
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        AccountCommand::Delete { name } => {
            let Deleted { tables, backups } = delete(backend, name).await?;
            Ok(if json {
                json!({"AccessKeyId": name, "DeletedTables": tables, "DeletedBackups": backups}).to_string()
            } else {
                format!("deleted {name}, its {tables} tables and its {backups} backups")
            })
        }
        AccountCommand::Rotate { name } => Ok(secret_line(rotate(backend, key, name).await?)),
        AccountCommand::RevokeOld { name } => {
            revoke_old(backend, name).await?;
            Ok(if json { json!({"AccessKeyId": name}).to_string() } else { format!("{name}: previous secret revoked") })
        }
    }
}

/// Creates an account named `name` with a new secret.
pub async fn create(backend: &dyn Store, key: &SealingKey, name: &str) -> anyhow::Result<Issued> {
    check_name(name)?;
    let (secret, account_id) = (random_text(SECRET_CHARS, ALPHANUMERIC), random_text(12, b"0123456789"));
    if !backend.create_account(name, &account_id, &key.seal(name, &secret)).await.map_err(failed)? {
        bail!("an account named {name} exists already");
    }
    Ok(Issued { name: name.to_string(), secret, account_id })
}

/// Every account, never with its secrets.
pub async fn list(backend: &dyn Store) -> anyhow::Result<Vec<AccountListing>> {
    backend.list_accounts().await.map_err(failed)
}

/// What deleting an account deleted with it.
pub struct Deleted {
    pub tables: usize,
    pub backups: usize,
}

/// Deletes an account with its tables and backups.
pub async fn delete(backend: &dyn Store, name: &str) -> anyhow::Result<Deleted> {
    let record = existing(backend, name).await?;
    let account = &record.account_id;
    let mut deleted = Deleted { tables: 0, backups: 0 };
    // Tables and backups first: an account that is gone would leave them unreachable.
    loop {
        let tables = backend.ask(account, Request::list_tables(None, 100)).await.map_err(failed)?;
        if tables.is_empty() {
            break;
        }
        for table in tables {
            let found = backend.ask(account, Request::delete_table(&table)).await;
            deleted.tables += usize::from(found.map_err(failed)?);
        }
    }
    loop {
        let backups = backend.ask(account, Request::list_backups(None, 100)).await.map_err(failed)?;
        if backups.is_empty() {
            break;
        }
        for backup in backups {
            let found = backend.ask(account, Request::delete_backup(&backup.arn)).await;
            deleted.backups += usize::from(found.map_err(failed)?.is_some());
        }
    }
    backend.delete_account(name).await.map_err(failed)?;
    Ok(deleted)
}

/// Gives the account a new secret; the old one keeps working until [`revoke_old`].
pub async fn rotate(backend: &dyn Store, key: &SealingKey, name: &str) -> anyhow::Result<Issued> {
    let record = existing(backend, name).await?;
    let secret = random_text(SECRET_CHARS, ALPHANUMERIC);
    if !backend.rotate_secret(name, &key.seal(name, &secret)).await.map_err(failed)? {
        bail!("no account named {name}");
    }
    Ok(Issued { name: name.to_string(), secret, account_id: record.account_id })
}

/// Stops the secret before the last rotation from working.
pub async fn revoke_old(backend: &dyn Store, name: &str) -> anyhow::Result<()> {
    if !backend.revoke_previous_secret(name).await.map_err(failed)? {
        bail!("no account named {name}");
    }
    Ok(())
}

async fn existing(backend: &dyn Store, name: &str) -> anyhow::Result<AccountRecord> {
    backend.find_account(name).await.map_err(failed)?.with_context(|| format!("no account named {name}"))
}

/// A store's error as the command reports it.
fn failed(e: StorageError) -> anyhow::Error {
    match e {
        StorageError::Internal(detail) => anyhow::anyhow!("the store failed: {detail}"),
        StorageError::NoSuchKeyspace => anyhow::anyhow!("the store lost a table while the command ran"),
        StorageError::OutcomeUnknown => anyhow::anyhow!("the store lost its connection; the change may have been made"),
    }
}

/// Access key ids are what SigV4 credentials can carry: letters, digits, `_` and `-`, at most 128.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid =
        (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        bail!("an account name is 1 to 128 letters, digits, '_' or '-' (it is the access key id)");
    }
    Ok(())
}

/// `length` characters drawn uniformly from `alphabet`.
fn random_text(length: usize, alphabet: &[u8]) -> String {
    // Bytes at or above the largest multiple of the alphabet's size are redrawn, so no character
    // is likelier than another.
    let limit = 256 - 256 % alphabet.len();
    let mut text = String::with_capacity(length);
    while text.len() < length {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the system has randomness");
        for byte in bytes.into_iter().filter(|b| usize::from(*b) < limit).take(length - text.len()) {
            text.push(alphabet[usize::from(byte) % alphabet.len()] as char);
        }
    }
    text
}

/// Writes a new file (never over an old one) readable by its owner only, making its directory.
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_for_its_account() {
        let dir = std::env::temp_dir().join(format!("dynabox-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = load_or_create_key(&dir.join("secret.key")).unwrap();
        let sealed = key.seal("alice", "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"), "the secret is not stored in the clear");
        let reloaded = load_or_create_key(&dir.join("secret.key")).unwrap();
        assert_eq!(reloaded.open("alice", &sealed).as_deref(), Some("s3cret"));
        assert_eq!(reloaded.open("bob", &sealed), None, "a sealed secret is bound to its account");
        let other = load_or_create_key(&dir.join("other.key")).unwrap();
        assert_eq!(other.open("alice", &sealed), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generated_secrets_look_like_aws_secrets() {
        let secret = random_text(SECRET_CHARS, ALPHANUMERIC);
        assert_eq!(secret.len(), 40);
        assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(secret, random_text(SECRET_CHARS, ALPHANUMERIC));
    }
}
