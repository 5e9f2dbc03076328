//! Authentication as the handler sees it (mirrors WIT interface `auth`). The handler reads the
//! SigV4 signature and builds the string-to-sign (`sigv4`); the host knows secrets and checks the
//! signature, outside the sandbox. Under Spin, which has no such outside, [`ClaimedAccount`]
//! checks it by the same rules.

use crate::sigv4;
pub use crate::sigv4::{Refusal, SignedRequest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub access_key_id: String,
}

pub trait Auth {
    fn authenticate(&mut self, request: &SignedRequest) -> Result<Principal, Refusal>;

    /// Whether [`Auth::authenticate`] checks the signature, and so needs the string to sign.
    fn checks_signatures(&self) -> bool {
        true
    }
}

/// The account every request belongs to under the open policy (DynamoDB Local uses the same).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";

/// Local development's policy (`--auth open`): any well-formed signed request is accepted and
/// belongs to the one local account. The host and the Spin component both apply it, so a Spin app
/// and a host on one PostgreSQL database share their tables.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenPolicy;

impl Auth for OpenPolicy {
    fn authenticate(&mut self, request: &SignedRequest) -> Result<Principal, Refusal> {
        Ok(Principal { account_id: LOCAL_ACCOUNT_ID.to_string(), access_key_id: request.access_key_id.clone() })
    }

    fn checks_signatures(&self) -> bool {
        false
    }
}

/// The policy of a front with no host outside the sandbox (the Spin component, `auth = sigv4`):
/// the account the request claims, read before the request runs, checked as the host checks it.
pub enum ClaimedAccount {
    Found {
        account_id: String,
        secrets: Vec<String>,
    },
    Unknown,
    /// The accounts could not be read.
    Unreadable,
}

impl Auth for ClaimedAccount {
    fn authenticate(&mut self, request: &SignedRequest) -> Result<Principal, Refusal> {
        let (account_id, secrets) = match self {
            ClaimedAccount::Found { account_id, secrets } => (account_id, secrets),
            ClaimedAccount::Unknown => return Err(Refusal::UnrecognizedClient),
            ClaimedAccount::Unreadable => return Err(Refusal::Unavailable),
        };
        let keys = |date: &str, region: &str| -> Vec<[u8; 32]> {
            secrets.iter().map(|secret| sigv4::signing_key(secret, date, region)).collect()
        };
        match sigv4::verify(request, keys)? {
            true => Ok(Principal { account_id: account_id.clone(), access_key_id: request.access_key_id.clone() }),
            false => Err(sigv4::mismatch()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    /// A request signed just now by `secret` for account key `alice`.
    fn signed_now(secret: &str) -> SignedRequest {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let time = crate::time::basic_iso8601(now);
        let scope = format!("{}/eu-west-1/dynamodb/aws4_request", &time[..8]);
        let string_to_sign = format!("AWS4-HMAC-SHA256\n{time}\n{scope}\nhash");
        let key = sigv4::signing_key(secret, &time[..8], "eu-west-1");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(string_to_sign.as_bytes());
        let signature = sigv4::hex(&mac.finalize().into_bytes());
        SignedRequest {
            access_key_id: "alice".into(),
            credential_scope: scope,
            string_to_sign,
            signature,
            expires: None,
        }
    }

    #[test]
    fn a_claimed_account_verifies_with_its_current_or_previous_secret() {
        let mut account = ClaimedAccount::Found { account_id: "123".into(), secrets: vec!["new".into(), "old".into()] };
        for secret in ["new", "old"] {
            let principal = account.authenticate(&signed_now(secret)).unwrap();
            assert_eq!((principal.account_id.as_str(), principal.access_key_id.as_str()), ("123", "alice"));
        }
        assert_eq!(account.authenticate(&signed_now("wrong")), Err(sigv4::mismatch()));
        assert_eq!(ClaimedAccount::Unknown.authenticate(&signed_now("new")), Err(Refusal::UnrecognizedClient));
        assert_eq!(ClaimedAccount::Unreadable.authenticate(&signed_now("new")), Err(Refusal::Unavailable));
    }
}
