//! `--auth sigv4` end to end: accounts made with `dynabox account` against the store a server
//! runs on, signatures checked as AWS checks them, and every account seeing only its own tables.
//! On both backends.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};
use support::{Server, Store, account, create_hash_table, new_account, raw_request, stores, temp_dir, unique};

fn sigv4_server(store: &Store, key_file: &Path) -> Server {
    let key_file = key_file.to_str().unwrap();
    Server::start_with(store, &["--auth", "sigv4", "--secret-key-file", key_file])
}

fn key_file() -> PathBuf {
    temp_dir("keys").join("secret.key")
}

async fn error_code<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> String {
    result.err().expect("the call is refused").code().unwrap_or_default().to_string()
}

async fn table_names(client: &Client) -> Vec<String> {
    client.list_tables().send().await.expect("list tables").table_names().to_vec()
}

#[tokio::test]
async fn each_account_sees_only_its_own_tables() {
    for store in stores() {
        let key_file = key_file();
        let (alice, alice_secret) = new_account(&store, &key_file, "alice");
        let (bob, bob_secret) = new_account(&store, &key_file, "bob");
        let server = sigv4_server(&store, &key_file);
        let alice_client = server.client_as(&alice, &alice_secret, "eu-west-1");
        let bob_client = server.client_as(&bob, &bob_secret, "ap-south-1");

        let table = create_hash_table(&alice_client, "mine", "pk").await;
        let item = [("pk".to_string(), AttributeValue::S("k".into()))];
        alice_client.put_item().table_name(&table).set_item(Some(item.clone().into())).send().await.unwrap();
        let description = alice_client.describe_table().table_name(&table).send().await.unwrap();
        let arn = description.table().and_then(|t| t.table_arn()).unwrap().to_string();
        assert!(arn.starts_with("arn:aws:dynamodb:eu-west-1:") && !arn.contains(":000000000000:"), "{arn}");

        assert!(!table_names(&bob_client).await.contains(&table), "{store:?}: bob lists alice's table");
        let read = bob_client.get_item().table_name(&table).set_key(Some(item.clone().into())).send().await;
        assert_eq!(error_code(read).await, "ResourceNotFoundException");
        assert_eq!(
            error_code(bob_client.delete_table().table_name(&table).send().await).await,
            "ResourceNotFoundException"
        );
        // The same name in another account is another table.
        bob_client
            .create_table()
            .table_name(&table)
            .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
            .key_schema(description.table().unwrap().key_schema()[0].clone())
            .set_attribute_definitions(Some(description.table().unwrap().attribute_definitions().to_vec()))
            .send()
            .await
            .expect("bob makes a table of the same name");
        let bobs = bob_client.get_item().table_name(&table).set_key(Some(item.clone().into())).send().await.unwrap();
        assert!(bobs.item().is_none(), "{store:?}: bob's table is empty");
        let alices = alice_client.get_item().table_name(&table).set_key(Some(item.into())).send().await.unwrap();
        assert!(alices.item().is_some(), "{store:?}: alice's item is still there");
    }
}

#[tokio::test]
async fn wrong_and_unknown_credentials_are_refused_and_change_nothing() {
    for store in stores() {
        let key_file = key_file();
        let (alice, alice_secret) = new_account(&store, &key_file, "alice");
        let server = sigv4_server(&store, &key_file);
        let forged = server.client_as(&alice, "not-alices-secret", "us-east-1");
        let attempt = forged.create_table().table_name("forged").send().await;
        assert_eq!(error_code(attempt).await, "InvalidSignatureException");
        let unknown = server.client_as(&unique("nobody"), &alice_secret, "us-east-1");
        assert_eq!(error_code(unknown.list_tables().send().await).await, "UnrecognizedClientException");
        let alice_client = server.client_as(&alice, &alice_secret, "us-east-1");
        assert!(!table_names(&alice_client).await.contains(&"forged".to_string()));
    }
}

#[tokio::test]
async fn a_rotated_secret_keeps_the_old_one_until_revoked() {
    for store in stores() {
        let key_file = key_file();
        let (name, old_secret) = new_account(&store, &key_file, "carol");
        let server = sigv4_server(&store, &key_file);
        let old_client = server.client_as(&name, &old_secret, "us-east-1");
        let table = create_hash_table(&old_client, "kept", "pk").await;

        let rotated = account(&store, &key_file, &["rotate", &name, "--json"]);
        let rotated: serde_json::Value = serde_json::from_str(&rotated).unwrap();
        let new_secret = rotated["SecretAccessKey"].as_str().unwrap();
        assert_ne!(new_secret, old_secret);
        let new_client = server.client_as(&name, new_secret, "us-east-1");
        assert!(table_names(&new_client).await.contains(&table));
        assert!(table_names(&old_client).await.contains(&table), "the old secret still works");

        account(&store, &key_file, &["revoke-old", &name]);
        let refused = eventually(|| async { old_client.list_tables().send().await.is_err() }).await;
        assert!(refused, "{store:?}: the revoked secret is refused within the server's account TTL");
        assert!(table_names(&new_client).await.contains(&table));

        let listed = account(&store, &key_file, &["list"]);
        assert!(listed.lines().any(|line| line.starts_with(&format!("{name} "))), "{listed}");
        // Its backups go with it: nothing of a deleted account stays in the store.
        new_client.create_backup().table_name(&table).backup_name("before-deletion").send().await.unwrap();
        let deleted = account(&store, &key_file, &["delete", &name]);
        assert!(deleted.contains("1 tables") && deleted.contains("1 backups"), "{deleted}");
        assert!(!account(&store, &key_file, &["list"]).lines().any(|line| line.starts_with(&format!("{name} "))));
        let gone = eventually(|| async {
            new_client.list_tables().send().await.err().and_then(|e| e.code().map(str::to_string))
                == Some("UnrecognizedClientException".into())
        })
        .await;
        assert!(gone, "{store:?}: a deleted account's key is unknown");
    }
}

/// Whether `check` turns true within 5 seconds (servers re-read accounts every 2).
async fn eventually<F: std::future::Future<Output = bool>>(check: impl Fn() -> F) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// How a hand-signed request differs from an honest one.
enum Forgery {
    None,
    /// The body sent is not the body signed.
    Body(&'static str),
    /// The signature is all zeros.
    ZeroSignature,
    /// Not a forgery: the body is sent gzip-compressed, and signed as sent.
    Gzipped,
}

/// Signs a ListTables request with body `{}` as the SDKs do, at `when`, and sends it, forged as
/// `forgery` says.
fn list_tables_signed(server: &Server, name: &str, secret: &str, when: SystemTime, forgery: Forgery) -> (u16, String) {
    let body = match forgery {
        Forgery::Gzipped => {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut gzip, b"{}").unwrap();
            gzip.finish().unwrap()
        }
        _ => b"{}".to_vec(),
    };
    let seconds = when.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let date_time = basic_iso8601(seconds);
    let date = &date_time[..8];
    let host = server.address.clone();
    let target = "DynamoDB_20120810.ListTables";
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{host}\nx-amz-date:{date_time}\nx-amz-target:{target}\n\n\
         content-type;host;x-amz-date;x-amz-target\n{}",
        hex(&Sha256::digest(&body))
    );
    let scope = format!("{date}/us-east-1/dynamodb/aws4_request");
    let string_to_sign =
        format!("AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let signature = match forgery {
        Forgery::ZeroSignature => "0".repeat(64),
        _ => support::sigv4_signature(secret, date, &string_to_sign),
    };
    let sent_body = match forgery {
        Forgery::Body(sent) => sent.as_bytes().to_vec(),
        _ => body,
    };
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={name}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
         Signature={signature}"
    );
    let mut headers = vec![
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-date", date_time.as_str()),
        ("x-amz-target", target),
        ("authorization", authorization.as_str()),
    ];
    if let Forgery::Gzipped = forgery {
        headers.push(("content-encoding", "gzip"));
    }
    let response = raw_request(&server.address, "POST", &headers, &sent_body);
    (response.status, response.body)
}

fn basic_iso8601(seconds: u64) -> String {
    let output = Command::new("date").args(["-u", "-d", &format!("@{seconds}"), "+%Y%m%dT%H%M%SZ"]).output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn signatures_are_checked_for_time_and_payload() {
    let store = Store::Embedded(temp_dir("sigv4-raw"));
    let key_file = key_file();
    let (name, secret) = new_account(&store, &key_file, "dave");
    let server = sigv4_server(&store, &key_file);
    let now = SystemTime::now();
    let (status, body) = list_tables_signed(&server, &name, &secret, now, Forgery::None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = list_tables_signed(&server, &name, &secret, now, Forgery::Gzipped);
    assert_eq!(status, 200, "a compressed body is verified as sent: {body}");

    let (status, body) = list_tables_signed(&server, &name, &secret, now, Forgery::Body(r#"{"Limit":1}"#));
    assert_eq!(status, 400);
    assert!(body.contains("InvalidSignatureException") && body.contains("does not match"), "{body}");

    let (_, body) = list_tables_signed(&server, &name, &secret, now, Forgery::ZeroSignature);
    assert!(body.contains("InvalidSignatureException") && body.contains("does not match"), "{body}");

    let long_ago = UNIX_EPOCH + Duration::from_secs(978_307_200); // 2001-01-01
    let (status, body) = list_tables_signed(&server, &name, &secret, long_ago, Forgery::None);
    assert_eq!(status, 400);
    assert!(
        body.contains("InvalidSignatureException") && body.contains("Signature expired: 20010101T000000Z"),
        "{body}"
    );

    let ahead = now + Duration::from_secs(20 * 60);
    let (_, body) = list_tables_signed(&server, &name, &secret, ahead, Forgery::None);
    assert!(body.contains("InvalidSignatureException") && body.contains("Signature not yet current"), "{body}");
}

#[test]
fn open_mode_is_refused_beyond_loopback_unless_allowed() {
    let output = Command::new(env!("CARGO_BIN_EXE_dynabox"))
        .args(["--listen", "0.0.0.0:0", "--in-memory"])
        .env_remove("DATABASE_URL")
        .output()
        .expect("dynabox runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-open-non-loopback"));
}
