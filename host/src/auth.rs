//! The host's half of authentication. For now an open policy: any well-formed signed request is
//! accepted and belongs to the one local account. Verifying signatures against stored secrets
//! (and scoping storage per account) replaces this in the accounts issue.

use dynabox_handler::auth::Principal;

/// The account every request belongs to under the open policy (DynamoDB Local uses the same).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";

#[derive(Debug, Default)]
pub struct Authenticator;

impl Authenticator {
    pub fn authenticate(
        &self,
        access_key_id: &str,
        _scope: &str,
        _string_to_sign: &str,
        _signature: &str,
    ) -> Result<Principal, String> {
        Ok(Principal { account_id: LOCAL_ACCOUNT_ID.to_string(), access_key_id: access_key_id.to_string() })
    }
}

/// Lets the handler run natively (benchmarks) against the same policy.
impl dynabox_handler::auth::Auth for &Authenticator {
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
