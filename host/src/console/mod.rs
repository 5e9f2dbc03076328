//! The web console at `/console`: server-rendered pages (minijinja templates in `host/templates/`,
//! every value escaped) for tables, items and accounts, with no script at all. Every data action
//! is a DynamoDB API request run through the sandbox like any other (`Runtime::handle_as`), bound
//! to the signed-in account, so the console can do nothing the account cannot. Sessions live in
//! the server's memory; every form that changes something carries the session's CSRF token. The
//! metrics page draws the server's own `/metrics` numbers.

mod accounts;
pub(crate) mod api;
mod form;
mod items;
mod metrics;
mod pages;
mod session;
mod tables;

use std::sync::Arc;
use std::time::Duration;

use dynabox_handler::auth::Principal;
use dynabox_handler::http::Response;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::accounts::SealingKey;
use crate::auth::Authenticator;
use crate::runtime::{Reservation, Runtime};
use crate::storage::Store;
use form::Form;
use pages::Layout;
use session::{Session, Sessions};

/// The most a console form may send: an item (400 KB of DynamoDB JSON) with room for its escapes.
const MAX_FORM_BYTES: usize = 4 << 20;

/// Whether `path` is the console's: everything else stays the API's (which serves `/` only).
pub fn serves(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// What `--auth sigv4` gives the console's accounts page: the store and the key that seals
/// secrets, as `dynabox account` uses them, and the accounts that may manage the others.
pub struct AccountAdmin {
    pub backend: Arc<dyn Store>,
    pub key: SealingKey,
    pub admins: Vec<String>,
}

pub struct Console {
    runtime: Arc<Runtime>,
    auth: Arc<Authenticator>,
    /// None under `--auth open`: no sign-in, no accounts, loopback clients only.
    accounts: Option<AccountAdmin>,
    sessions: Sessions,
    body_timeout: Duration,
    /// The server speaks only HTTPS: session cookies are `Secure`.
    over_tls: bool,
    metrics: metrics::History,
}

/// One request to the console, once its session is known.
struct Visit {
    session: Session,
    query: Form,
    form: Form,
}

impl Visit {
    fn principal(&self) -> Option<&Principal> {
        self.session.signed_in.as_ref().map(|s| &s.principal)
    }
}

impl Console {
    pub fn new(
        runtime: Arc<Runtime>,
        auth: Arc<Authenticator>,
        accounts: Option<AccountAdmin>,
        body_timeout: Duration,
        over_tls: bool,
    ) -> Console {
        let (sessions, metrics) = Default::default();
        Console { runtime, auth, accounts, sessions, body_timeout, over_tls, metrics }
    }

    /// Reads the metrics for the metrics page every few seconds; runs until dropped.
    pub async fn sample_metrics(&self) {
        self.metrics.sample().await
    }

    /// Answers a request for a console path. Under `--auth open` (no sign-in) only a client on
    /// this machine gets a console; to anyone else the path does not exist.
    pub async fn answer(&self, request: hyper::Request<Incoming>, from_loopback: bool) -> Response {
        if self.accounts.is_none() && !from_loopback {
            return pages::not_found();
        }
        let (parts, body) = request.into_parts();
        let method = parts.method.as_str().to_string();
        let path = parts.uri.path().to_string();
        let query = Form::parse(parts.uri.query().unwrap_or(""));
        let cookie = parts
            .headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .find_map(|v| session::cookie_value(v.to_str().ok()?).map(str::to_string));
        let mut held = Reservation::default();
        let form = if method == "POST" {
            let announced =
                parts.headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
            self.runtime
                .memory_budget()
                .reserve(&mut held, announced.unwrap_or(MAX_FORM_BYTES).min(MAX_FORM_BYTES))
                .await;
            match tokio::time::timeout(self.body_timeout, Limited::new(body, MAX_FORM_BYTES).collect()).await {
                Ok(Ok(collected)) => Form::parse_bytes(&collected.to_bytes()),
                Ok(Err(_)) => return pages::message(413, "Too large", "The form sent more than the console takes."),
                Err(_) => return Response { status: 408, headers: Vec::new(), body: Vec::new() },
            }
        } else {
            drop(body);
            Form::default()
        };
        let (mut session, mut fresh) = match cookie.as_deref().and_then(|id| self.sessions.find(id)) {
            Some(session) => (session, false),
            None => (self.sessions.start(self.open_principal()), true),
        };
        if !self.still_signed_in(&session).await {
            self.sessions.end(&session.id);
            (session, fresh) = (self.sessions.start(None), true);
        }
        let id = session.id.clone();
        let mut response = self.route(&method, &path, Visit { session, query, form }).await;
        // A response that starts a session of its own (sign-in) names it itself.
        if fresh && !response.headers.iter().any(|(name, _)| name == "set-cookie") {
            response.headers.push(("set-cookie".into(), session::cookie(&id, self.over_tls)));
        }
        response
    }

    /// The principal of every session under `--auth open`: the local account.
    fn open_principal(&self) -> Option<session::SignedIn> {
        self.accounts.is_none().then(session::SignedIn::open)
    }

    /// Whether a signed-in session's secret still opens its account: a deleted account or a
    /// revoked secret ends the session (within the authenticator's memory of accounts).
    async fn still_signed_in(&self, session: &Session) -> bool {
        match (&session.signed_in, &self.accounts) {
            (Some(signed_in), Some(_)) => {
                let name = &signed_in.principal.access_key_id;
                matches!(self.auth.check_secret(name, signed_in.secret()).await, Ok(Some(_)))
            }
            _ => true,
        }
    }

    async fn route(&self, method: &str, path: &str, visit: Visit) -> Response {
        let rest = path.strip_prefix("/console").unwrap_or_default();
        let segments: Vec<String> = rest.split('/').skip(1).map(form::percent_decode).collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        if method == "POST"
            && !visit.form.get("csrf").is_some_and(|token| session::same_token(token, &visit.session.csrf))
        {
            return pages::message(
                403,
                "Refused",
                "This form was sent without the console's CSRF token for your session, so nothing was done. \
                 Reload the page and send it again.",
            );
        }
        match (method, segments.as_slice()) {
            ("GET" | "HEAD", [] | [""]) => pages::redirect("/console/tables"),
            ("GET" | "HEAD", ["sign-in"]) if self.accounts.is_some() => self.sign_in_page(&visit, None),
            ("POST", ["sign-in"]) if self.accounts.is_some() => self.sign_in(&visit).await,
            ("POST", ["sign-out"]) if self.accounts.is_some() => {
                self.sessions.end(&visit.session.id);
                pages::redirect("/console/sign-in")
            }
            _ if visit.principal().is_none() => {
                if matches!(method, "GET" | "HEAD") && known(&segments) {
                    pages::redirect("/console/sign-in")
                } else {
                    pages::not_found()
                }
            }
            _ => self.signed_in_route(method, &segments, &visit).await,
        }
    }

    async fn signed_in_route(&self, method: &str, segments: &[&str], visit: &Visit) -> Response {
        let page = self.layout(visit);
        match (method, segments) {
            ("GET" | "HEAD", ["tables"]) => tables::list(self, visit, page).await,
            ("GET" | "HEAD", ["tables", "new"]) => tables::create_form(&visit.query, page, None),
            ("POST", ["tables", "new"]) => tables::create(self, visit, page).await,
            ("GET" | "HEAD", ["tables", table]) => items::browse(self, visit, page, table).await,
            ("POST", ["tables", table, "delete"]) => tables::delete(self, visit, page, table).await,
            ("GET" | "HEAD", ["tables", table, "search"]) => items::search(self, visit, page, table).await,
            ("GET" | "HEAD", ["tables", table, "item"]) => items::view(self, visit, page, table).await,
            ("POST", ["tables", table, "item"]) => items::save(self, visit, page, table).await,
            ("GET" | "HEAD", ["tables", table, "new-item"]) => items::new_form(self, visit, page, table).await,
            ("POST", ["tables", table, "new-item"]) => items::add(self, visit, page, table).await,
            ("POST", ["tables", table, "delete-item"]) => items::delete(self, visit, page, table).await,
            ("POST", ["tables", table, "delete-items"]) => items::delete_selection(self, visit, table).await,
            ("GET" | "HEAD", ["accounts"]) if self.accounts.is_some() => accounts::page(self, visit, page).await,
            ("GET" | "HEAD", ["metrics"]) if page.metrics => {
                pages::render(200, "metrics.html", &metrics::Page { layout: page, numbers: self.metrics.page() })
            }
            ("POST", ["accounts", action @ ("create" | "rotate" | "revoke-old" | "delete")])
                if self.accounts.is_some() =>
            {
                accounts::act(self, visit, page, action).await
            }
            _ => pages::not_found(),
        }
    }

    fn layout(&self, visit: &Visit) -> Layout {
        Layout {
            account: self.accounts.as_ref().and(visit.principal()).map(|p| p.access_key_id.clone()),
            csrf: visit.session.csrf.clone(),
            metrics: self.shows_metrics(visit),
        }
    }

    /// The metrics are the whole server's, every account's tables: under `--auth sigv4` only a
    /// console admin sees them.
    fn shows_metrics(&self, visit: &Visit) -> bool {
        match (&self.accounts, visit.principal()) {
            (None, _) => true,
            (Some(accounts), Some(principal)) => accounts.admins.contains(&principal.access_key_id),
            (Some(_), None) => false,
        }
    }

    fn sign_in_page(&self, visit: &Visit, error: Option<String>) -> Response {
        let page = pages::SignIn {
            layout: Layout { account: None, csrf: visit.session.csrf.clone(), metrics: false },
            name: visit.form.get("name").unwrap_or_default().to_string(),
            error,
        };
        pages::render(if page.error.is_some() { 400 } else { 200 }, "sign_in.html", &page)
    }

    async fn sign_in(&self, visit: &Visit) -> Response {
        let (name, secret) = (visit.form.get("name").unwrap_or_default(), visit.form.get("secret").unwrap_or_default());
        match self.auth.check_secret(name, secret).await {
            Ok(Some(principal)) => {
                // A new session id on sign-in: an id known before it (fixation) gets nothing.
                self.sessions.end(&visit.session.id);
                let session = self.sessions.start(Some(session::SignedIn::new(principal, secret)));
                let mut response = pages::redirect("/console/tables");
                response.headers.push(("set-cookie".into(), session::cookie(&session.id, self.over_tls)));
                response
            }
            Ok(None) => self.sign_in_page(visit, Some("No account has this name and secret.".into())),
            Err(_) => self.sign_in_page(visit, Some("The accounts could not be read; try again.".into())),
        }
    }

    /// Runs one DynamoDB API operation as the visit's principal.
    async fn call(
        &self,
        visit: &Visit,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, api::Failure> {
        let principal = visit.principal().expect("only signed-in visits call the API").clone();
        api::call(&self.runtime, principal, operation, body).await
    }
}

/// Whether the path is a page that exists for someone signed in (so a visitor who is not is sent
/// to sign in rather than told it does not exist).
fn known(segments: &[&str]) -> bool {
    matches!(segments, [] | [""] | ["tables", ..] | ["accounts"] | ["metrics"])
}
