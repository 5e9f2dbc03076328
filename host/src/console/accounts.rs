//! Accounts under `--auth sigv4`, as `dynabox account` manages them: an account in
//! `--console-admin` creates, rotates, revokes and deletes any; every other account sees only
//! itself, and may rotate its secret and revoke the old one. A new secret is shown once, in the
//! answer to the form that made it, and never again.

use dynabox_handler::http::Response;
use dynabox_sql::accounts::AccountListing;
use serde::Serialize;

use super::api::Failure;
use super::pages::{self, Layout};
use super::{Console, Visit};
use crate::accounts::{self, Issued};

#[derive(Serialize)]
struct AccountsPage {
    layout: Layout,
    admin: bool,
    accounts: Vec<Listed>,
    issued: Option<Issued>,
    error: Option<Failure>,
}

/// An account as the page lists it: never its secrets.
#[derive(Serialize)]
struct Listed {
    name: String,
    account_id: String,
    has_previous_secret: bool,
}

impl From<AccountListing> for Listed {
    fn from(account: AccountListing) -> Listed {
        Listed { name: account.name, account_id: account.account_id, has_previous_secret: account.has_previous_secret }
    }
}

pub async fn page(console: &Console, visit: &Visit, layout: Layout) -> Response {
    render(console, visit, layout, None, None).await
}

async fn render(
    console: &Console,
    visit: &Visit,
    layout: Layout,
    issued: Option<Issued>,
    error: Option<Failure>,
) -> Response {
    let admin = is_admin(console, visit);
    let me = layout.account.clone().unwrap_or_default();
    let Some(store) = &console.accounts else { return pages::not_found() };
    let (accounts, error) = match accounts::list(store.backend.as_ref()).await {
        Ok(all) => (all.into_iter().filter(|a| admin || a.name == me).map(Listed::from).collect(), error),
        Err(e) => (Vec::new(), Some(Failure { kind: "InternalServerError".into(), message: e.to_string() })),
    };
    let status = if error.is_some() { 400 } else { 200 };
    pages::render(status, "accounts.html", &AccountsPage { layout, admin, accounts, issued, error })
}

fn is_admin(console: &Console, visit: &Visit) -> bool {
    let (Some(store), Some(principal)) = (&console.accounts, visit.principal()) else { return false };
    store.admins.contains(&principal.access_key_id)
}

/// Runs one account action of the form. Only an admin acts on another account or creates and
/// deletes; a refusal is shown on the page and changes nothing.
pub async fn act(console: &Console, visit: &Visit, layout: Layout, action: &str) -> Response {
    let Some(store) = &console.accounts else { return pages::not_found() };
    let name = visit.form.text("name").to_string();
    let own = visit.principal().is_some_and(|p| p.access_key_id == name);
    let allowed = is_admin(console, visit) || (own && matches!(action, "rotate" | "revoke-old"));
    if !allowed {
        let refusal = Failure {
            kind: "AccessDeniedException".into(),
            message: format!("Only a console admin may {action} this account."),
        };
        return render(console, visit, layout, None, Some(refusal)).await;
    }
    let backend = store.backend.as_ref();
    let outcome = match action {
        "create" => accounts::create(backend, &store.key, &name).await.map(Some),
        "rotate" => accounts::rotate(backend, &store.key, &name).await.map(Some),
        "revoke-old" => accounts::revoke_old(backend, &name).await.map(|()| None),
        _ if visit.form.text("confirm") != name => {
            Err(anyhow::anyhow!("type the account's name to confirm that it is to be deleted"))
        }
        _ => accounts::delete(backend, &name).await.map(|_| None),
    };
    match outcome {
        Ok(issued) => render(console, visit, layout, issued, None).await,
        Err(e) => {
            let refusal = Failure { kind: "ValidationException".into(), message: e.to_string() };
            render(console, visit, layout, None, Some(refusal)).await
        }
    }
}
