//! The host's half of authentication: the `auth` import. The handler reads the signature and
//! builds the string-to-sign; here, outside the sandbox, the signature's time and scope are
//! checked, the account's secrets are unsealed and the signature compared. The account found is
//! the only one the request's storage calls may then name (`runtime/imports.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dynabox_handler::auth::{Auth, OpenPolicy, Principal, Refusal, SignedRequest};
use dynabox_handler::sigv4;

use crate::accounts::SealingKey;
use crate::failure_log::report_storage_failure;
use crate::storage::Store;

pub use dynabox_handler::auth::LOCAL_ACCOUNT_ID;

/// How long a server trusts what it read of an account: a secret rotated or revoked, or an
/// account deleted, by `dynabox account` takes effect within this.
const ACCOUNT_TTL: Duration = Duration::from_secs(2);
/// How often a key that does not verify against what is remembered is read again, at most.
const RECHECK_AFTER: Duration = Duration::from_millis(100);
/// Accounts (known or not) remembered at most; beyond, the memory starts afresh.
const MAX_REMEMBERED: usize = 10_000;

pub enum Authenticator {
    /// `--auth open`: any well-formed signature, one shared local account (like DynamoDB Local).
    Open,
    /// `--auth sigv4`: every request signed with an account's secret.
    SigV4(Accounts),
    /// A request the host makes itself for a principal it has already authenticated (the
    /// console's signed-in account): the signature it carries is a placeholder, never checked,
    /// and the principal is the host's, whatever the request names. Never serves the API.
    SignedIn(Principal),
}

/// The accounts of the store, as the server verifies signatures with them.
pub struct Accounts {
    backend: Arc<dyn Store>,
    key: SealingKey,
    remembered: Mutex<HashMap<String, Remembered>>,
}

/// What checking a request against its account found.
enum Verdict {
    Verified(Principal),
    UnknownKey,
    Mismatch,
}

struct Remembered {
    read: Instant,
    /// Read because what was remembered before did not verify.
    for_recheck: bool,
    account: Option<Arc<Account>>,
}

struct Account {
    id: String,
    /// The current secret, then the previous one while it works.
    secrets: Vec<String>,
    signing_keys: Mutex<HashMap<(String, String), SigningKeys>>,
}

/// For one (date, region): a signing key per secret, since deriving one takes four HMACs.
type SigningKeys = Arc<[[u8; 32]]>;

impl Authenticator {
    pub fn sigv4(backend: Arc<dyn Store>, key: SealingKey) -> Authenticator {
        Authenticator::SigV4(Accounts { backend, key, remembered: Mutex::default() })
    }

    /// The mode, for the start-up line.
    pub fn mode(&self) -> &'static str {
        match self {
            Authenticator::Open => "open",
            Authenticator::SigV4(_) => "sigv4",
            Authenticator::SignedIn(_) => "signed-in",
        }
    }

    /// Whether [`Authenticator::authenticate`] looks at the string to sign.
    pub fn checks_signatures(&self) -> bool {
        matches!(self, Authenticator::SigV4(_))
    }

    pub async fn authenticate(&self, request: &SignedRequest) -> Result<Principal, Refusal> {
        match self {
            Authenticator::Open => OpenPolicy.authenticate(request),
            Authenticator::SigV4(accounts) => accounts.authenticate(request).await,
            Authenticator::SignedIn(principal) => Ok(principal.clone()),
        }
    }

    /// The principal whose account name and secret these are, checked as a signature is:
    /// against the current or previous secret, read afresh when what is remembered does not
    /// match (the console's sign-in). Under `--auth open`, the local account, whatever is given.
    pub async fn check_secret(&self, name: &str, secret: &str) -> Result<Option<Principal>, Refusal> {
        let accounts = match self {
            Authenticator::SigV4(accounts) => accounts,
            Authenticator::Open | Authenticator::SignedIn(_) => {
                let principal = Principal { account_id: LOCAL_ACCOUNT_ID.into(), access_key_id: name.into() };
                return Ok(Some(principal));
            }
        };
        for recheck in [false, true] {
            if let Some(account) = accounts.account(name, recheck).await?
                && account.secrets.iter().any(|known| same_secret(known, secret))
            {
                return Ok(Some(Principal { account_id: account.id.clone(), access_key_id: name.to_string() }));
            }
        }
        Ok(None)
    }
}

/// Compares secrets (and the console's tokens) in time that does not depend on where they differ.
pub fn same_secret(known: &str, given: &str) -> bool {
    let differences = known.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    known.len() == given.len() && std::hint::black_box(differences) == 0
}

impl Accounts {
    /// A key or signature that does not verify against what the server remembers is checked
    /// again on a fresh read (at most every [`RECHECK_AFTER`] per key), so an account just
    /// created or a secret just rotated works at once.
    async fn authenticate(&self, request: &SignedRequest) -> Result<Principal, Refusal> {
        let verdict = match self.verify(request, false).await? {
            Verdict::Verified(principal) => return Ok(principal),
            Verdict::UnknownKey | Verdict::Mismatch => self.verify(request, true).await?,
        };
        match verdict {
            Verdict::Verified(principal) => Ok(principal),
            Verdict::UnknownKey => Err(Refusal::UnrecognizedClient),
            Verdict::Mismatch => Err(sigv4::mismatch()),
        }
    }

    /// The request checked against its account as remembered, or (`recheck`) as read afresh.
    async fn verify(&self, request: &SignedRequest, recheck: bool) -> Result<Verdict, Refusal> {
        let Some(account) = self.account(&request.access_key_id, recheck).await? else {
            return Ok(Verdict::UnknownKey);
        };
        if sigv4::verify(request, |date, region| account.signing_keys(date, region))? {
            let access_key_id = request.access_key_id.clone();
            return Ok(Verdict::Verified(Principal { account_id: account.id.clone(), access_key_id }));
        }
        Ok(Verdict::Mismatch)
    }

    /// The account named `name`, from memory while fresh, else from the store. `recheck`: what is
    /// remembered did not verify, so only a read made for a recheck moments ago will do.
    async fn account(&self, name: &str, recheck: bool) -> Result<Option<Arc<Account>>, Refusal> {
        let usable = |r: &&Remembered| match recheck {
            false => r.read.elapsed() < ACCOUNT_TTL,
            true => r.for_recheck && r.read.elapsed() < RECHECK_AFTER,
        };
        if let Some(remembered) = self.lock().get(name).filter(usable) {
            return Ok(remembered.account.clone());
        }
        let record = self.backend.find_account(name).await.map_err(|e| {
            report_storage_failure(&format!("reading account {name:?}: {e:?}"));
            Refusal::Unavailable
        })?;
        let account = record.and_then(|record| {
            let secrets = self.key.open_all(name, &record);
            if secrets.is_none() {
                tracing::warn!("account {name:?} has a secret sealed under another key file; refusing it");
            }
            Some(Arc::new(Account { id: record.account_id, secrets: secrets?, signing_keys: Mutex::default() }))
        });
        let mut remembered = self.lock();
        if remembered.len() >= MAX_REMEMBERED {
            remembered.clear();
        }
        let read = Instant::now();
        remembered.insert(name.to_string(), Remembered { read, for_recheck: recheck, account: account.clone() });
        Ok(account)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.remembered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Account {
    fn signing_keys(&self, date: &str, region: &str) -> SigningKeys {
        let mut keys = self.signing_keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() > 16 {
            keys.clear();
        }
        keys.entry((date.to_string(), region.to_string()))
            .or_insert_with(|| self.secrets.iter().map(|s| sigv4::signing_key(s, date, region)).collect())
            .clone()
    }
}
