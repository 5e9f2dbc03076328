//! The host's half of authentication. For now the handler's open policy: any well-formed signed
//! request is accepted and belongs to the one local account. Verifying signatures against stored
//! secrets (and scoping storage per account) replaces this in the accounts issue.

use dynabox_handler::auth::{Auth, OpenPolicy, Principal};

pub use dynabox_handler::auth::LOCAL_ACCOUNT_ID;

#[derive(Debug, Default)]
pub struct Authenticator;

impl Authenticator {
    pub fn authenticate(
        &self,
        access_key_id: &str,
        scope: &str,
        string_to_sign: &str,
        signature: &str,
    ) -> Result<Principal, String> {
        OpenPolicy.authenticate(access_key_id, scope, string_to_sign, signature)
    }
}

/// Lets the handler run natively (benchmarks) against the same policy.
impl Auth for &Authenticator {
    fn authenticate(
        &mut self,
        access_key_id: &str,
        scope: &str,
        string_to_sign: &str,
        signature: &str,
    ) -> Result<Principal, String> {
        Authenticator::authenticate(self, access_key_id, scope, string_to_sign, signature)
    }
}
