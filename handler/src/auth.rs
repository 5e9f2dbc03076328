//! Authentication as the handler sees it (mirrors WIT interface `auth`). The handler builds the
//! SigV4 string-to-sign (`sigv4`); only the host knows secrets and checks the signature.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub access_key_id: String,
}

pub trait Auth {
    /// `Err` carries the reason, worded for the client.
    fn authenticate(
        &mut self,
        access_key_id: &str,
        credential_scope: &str,
        string_to_sign: &str,
        signature: &str,
    ) -> Result<Principal, String>;
}

/// The account every request belongs to under the open policy (DynamoDB Local uses the same).
pub const LOCAL_ACCOUNT_ID: &str = "000000000000";

/// The policy until accounts arrive: any well-formed signed request is accepted and belongs to
/// the one local account. The host and the Spin component both apply it, so a Spin app and a
/// host on one PostgreSQL database share their tables.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenPolicy;

impl Auth for OpenPolicy {
    fn authenticate(
        &mut self,
        access_key_id: &str,
        _scope: &str,
        _string_to_sign: &str,
        _signature: &str,
    ) -> Result<Principal, String> {
        Ok(Principal { account_id: LOCAL_ACCOUNT_ID.to_string(), access_key_id: access_key_id.to_string() })
    }
}
