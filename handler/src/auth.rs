//! Authentication as the handler sees it (mirrors WIT interface `auth`). The handler reads the
//! SigV4 signature and builds the string-to-sign (`sigv4`); only the host knows secrets and checks
//! the signature.

pub use crate::sigv4::SignedRequest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub access_key_id: String,
}

/// Why a signed request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such access key id.
    UnrecognizedClient,
    /// The signature does not match, or its time or scope is wrong; the message for the client.
    InvalidSignature(String),
    /// The accounts could not be read; the client may retry.
    Unavailable,
}

pub trait Auth {
    fn authenticate(&mut self, request: &SignedRequest) -> Result<Principal, Refusal>;
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
}
