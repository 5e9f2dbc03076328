//! Console sessions, in the server's memory: a random id in an `HttpOnly`, `SameSite=Strict`
//! cookie, a CSRF token per session that every state-changing form must send back, and the
//! signed-in principal. Under `--auth sigv4` a session keeps the secret it signed in with (in
//! memory only, like the authenticator's own), so that rotating the secret away or deleting the
//! account ends the session.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dynabox_handler::auth::{LOCAL_ACCOUNT_ID, Principal};
use dynabox_handler::sigv4::hex;

pub use crate::auth::same_secret as same_token;

const COOKIE: &str = "dynabox_console";
/// A session unused this long is forgotten.
const IDLE_LIMIT: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (anyone may start one by visiting the sign-in page): beyond, the one
/// unused for longest is forgotten.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub signed_in: Option<SignedIn>,
    last_seen: Instant,
}

#[derive(Clone)]
pub struct SignedIn {
    pub principal: Principal,
    /// The secret signed in with (empty under `--auth open`).
    secret: String,
}

impl SignedIn {
    pub fn new(principal: Principal, secret: &str) -> SignedIn {
        SignedIn { principal, secret: secret.to_string() }
    }

    /// Under `--auth open`: the local account, as any API client gets.
    pub fn open() -> SignedIn {
        let principal = Principal { account_id: LOCAL_ACCOUNT_ID.into(), access_key_id: "console".into() };
        SignedIn { principal, secret: String::new() }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session, with a fresh id and CSRF token.
    pub fn start(&self, signed_in: Option<SignedIn>) -> Session {
        let session = Session { id: random_token(), csrf: random_token(), signed_in, last_seen: Instant::now() };
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.last_seen.elapsed() < IDLE_LIMIT);
        }
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.values().min_by_key(|s| s.last_seen).map(|s| s.id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// The session with this id, unless it was idle too long.
    pub fn find(&self, id: &str) -> Option<Session> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if session.last_seen.elapsed() >= IDLE_LIMIT {
            sessions.remove(id);
            return None;
        }
        session.last_seen = Instant::now();
        Some(session.clone())
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `Set-Cookie` value for a session: scripts cannot read it (`HttpOnly`), no other site's
/// page or link sends it (`SameSite=Strict`), and a server on HTTPS gets it back only over HTTPS
/// (`Secure`).
pub fn cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict{secure}")
}

/// The session id a `Cookie` header carries, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// 256 random bits as hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_ends() {
        let sessions = Sessions::default();
        let session = sessions.start(Some(SignedIn::open()));
        let header = format!("other=1; {}", cookie(&session.id, false).split(';').next().unwrap());
        let id = cookie_value(&header).unwrap();
        assert_eq!(sessions.find(id).unwrap().csrf, session.csrf);
        assert!(cookie(id, false).contains("HttpOnly") && cookie(id, false).contains("SameSite=Strict"));
        assert!(!cookie(id, false).contains("Secure") && cookie(id, true).ends_with("; Secure"));
        sessions.end(id);
        assert!(sessions.find(id).is_none());
        assert_eq!(cookie_value("dynabox_consolex=1"), None);
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a[..63], &a));
        assert!(!same_token("", &a));
    }
}
