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
