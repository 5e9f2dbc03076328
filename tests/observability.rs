//! What an operator sees of a running server: `/metrics` moving as real clients make requests
//! (checked by promtool), JSON log lines carrying the request id the client saw and never a
//! secret, a signature or an item, readiness following the store, and `dynabox healthcheck`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};
use support::{Outage, Server, Store, create_hash_table, raw_request, raw_request_to, temp_dir, unique};

/// The server's `/metrics` (at `address`), which must answer.
fn metrics(address: &str) -> String {
    let response = raw_request_to(address, "GET", "/metrics", &[], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    response.body
}

/// The value of the sample `series` (name and labels, as exposed), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Lints `text` with promtool; skipped where promtool is missing, unless
/// DYNABOX_REQUIRE_PROMTOOL=1 (scripts/test.sh installs it) makes that a failure.
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        assert_ne!(std::env::var("DYNABOX_REQUIRE_PROMTOOL").as_deref(), Ok("1"), "promtool is required");
        return eprintln!("promtool is not installed: skipping its check");
    };
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
}

#[tokio::test]
async fn metrics_follow_requests_by_table_and_operation_and_pass_promtool() {
    let server = Server::start_with(&Store::InMemory, &["--metrics-max-tables", "2"]);
    let client = server.client();
    let music = create_hash_table(&client, "music", "pk").await;
    let item = |n: &str| AttributeValue::S(n.to_string());
    client.put_item().table_name(&music).item("pk", item("a")).item("v", item("x")).send().await.unwrap();
    let refused = client
        .put_item()
        .table_name(&music)
        .item("pk", item("a"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert_eq!(refused.err().unwrap().code(), Some("ConditionalCheckFailedException"));
    let query = client
        .query()
        .table_name(&music)
        .key_condition_expression("pk = :a")
        .expression_attribute_values(":a", item("a"));
    assert_eq!(query.send().await.unwrap().count(), 1);
    let missing = client.get_item().table_name("no-such-table").key("pk", item("a")).send().await;
    assert_eq!(missing.err().unwrap().code(), Some("ResourceNotFoundException"));
    // Two more tables: the second of them is past the cap of two names.
    let books = create_hash_table(&client, "books", "pk").await;
    let films = create_hash_table(&client, "films", "pk").await;
    client.put_item().table_name(&films).item("pk", item("a")).send().await.unwrap();

    let text = metrics(&server.address);
    let series = |name: &str, labels: &str| sample(&text, &format!("dynabox_{name}{{{labels}}}"));
    let table = |name: &str| format!(r#"table="{name}""#);
    assert_eq!(series("conditional_check_failed_requests_total", &table(&music)), Some(1.0), "{text}");
    assert_eq!(series("consumed_write_capacity_units_total", &table(&music)), Some(1.0), "{text}");
    assert_eq!(series("consumed_read_capacity_units_total", &table(&music)), Some(0.5), "{text}");
    let query = format!(r#"{},operation="Query""#, table(&music));
    assert_eq!(series("returned_items_total", &query), Some(1.0), "{text}");
    assert_eq!(series("successful_request_latency_seconds_count", &query), Some(1.0), "{text}");
    let put = format!(r#"{},operation="PutItem""#, table(&music));
    assert_eq!(series("successful_request_latency_seconds_count", &put), Some(1.0), "{text}");
    assert_eq!(series("user_errors_total", r#"operation="GetItem""#), Some(1.0), "{text}");
    // A table that does not exist takes no place under the cap; the third name counts as _other.
    assert!(text.contains(&table(&books)) && !text.contains("no-such-table"), "{text}");
    assert!(!text.contains(&table(&films)), "{text}");
    assert_eq!(series("consumed_write_capacity_units_total", &table("_other")), Some(1.0), "{text}");
    assert!(sample(&text, r#"dynabox_sandbox_instantiations_total{purpose="request"}"#).unwrap() >= 8.0);
    assert_eq!(sample(&text, "dynabox_ready"), Some(1.0));
    // Every request read its table's description, and the query ran one storage query.
    let storage =
        |operation: &str| sample(&text, &format!(r#"dynabox_storage_call_seconds_count{{operation="{operation}"}}"#));
    assert!(storage("DescribeTable").unwrap() >= 5.0, "{text}");
    assert!(storage("Query").unwrap() >= 1.0, "{text}");
    promtool_check(&text);

    // The operators' paths answer GET only, and are none of the API's.
    assert_eq!(raw_request_to(&server.address, "POST", "/metrics", &[], b"").status, 404);
    assert_eq!(raw_request_to(&server.address, "GET", "/metricsx", &[], b"").status, 404);
    assert_eq!(raw_request(&server.address, "GET", &[], b"").status, 200, "GET / stays the liveness answer");
}

/// Headers of a request to `target` with `body`, signed now with `name`'s `secret` as the SDKs
/// sign; and the signature.
fn signed(address: &str, name: &str, secret: &str, target: &str, body: &[u8]) -> (Vec<(&'static str, String)>, String) {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let output = Command::new("date").args(["-u", "-d", &format!("@{seconds}"), "+%Y%m%dT%H%M%SZ"]).output().unwrap();
    let date_time = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let date = &date_time[..8];
    let hex = support::hex;
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{address}\nx-amz-date:{date_time}\n\
         x-amz-target:DynamoDB_20120810.{target}\n\ncontent-type;host;x-amz-date;x-amz-target\n{}",
        hex(&Sha256::digest(body))
    );
    let scope = format!("{date}/us-east-1/dynamodb/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let signature = support::sigv4_signature(secret, date, &to_sign);
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={name}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
         Signature={signature}"
    );
    let headers = vec![
        ("content-type", "application/x-amz-json-1.0".to_string()),
        ("x-amz-date", date_time),
        ("x-amz-target", format!("DynamoDB_20120810.{target}")),
        ("authorization", authorization),
    ];
    (headers, signature)
}

/// Runs `dynabox ARGS`; its output.
fn dynabox(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dynabox")).args(args).env_remove("DATABASE_URL").output().expect("dynabox runs")
}

/// Creates an account on the embedded store in `data`; its name and secret.
fn new_account(data: &Path, key_file: &Path) -> (String, String) {
    let name = unique("logs");
    let (data, key_file) = (data.to_str().unwrap(), key_file.to_str().unwrap());
    let output = dynabox(&["account", "create", &name, "--data-dir", data, "--secret-key-file", key_file]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8(output.stdout).unwrap();
    let (_, secret) = line.trim().split_once(' ').expect("NAME SECRET");
    (name, secret.to_string())
}

#[test]
fn json_logs_carry_the_request_id_the_client_saw_and_never_a_secret_a_signature_or_an_item() {
    let data = temp_dir("logs");
    let key_file = temp_dir("logs-keys").join("secret.key");
    let (name, secret) = new_account(&data, &key_file);
    let store = Store::Embedded(data);
    let flags = ["--auth", "sigv4", "--secret-key-file", key_file.to_str().unwrap(), "--log-format", "json"];
    // Debug: everything dynabox would log at all.
    let server = Server::start_with(&store, &[&flags[..], &["--access-log", "--log-level", "debug"]].concat());
    let send = |target: &str, body: &str| {
        let (headers, signature) = signed(&server.address, &name, &secret, target, body.as_bytes());
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        (raw_request(&server.address, "POST", &headers, body.as_bytes()), signature)
    };
    let create = r#"{"TableName":"logged","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],
        "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}"#;
    assert_eq!(send("CreateTable", create).0.status, 200);
    let item = r#"{"TableName":"logged","Item":{"pk":{"S":"key-7f3a"},"v":{"S":"value-c0ffee"}}}"#;
    let (put, signature) = send("PutItem", item);
    assert_eq!(put.status, 200, "{}", put.body);
    let request_id = put.header("x-amzn-requestid").expect("a request id").to_string();
    let conditional =
        r#"{"TableName":"logged","Item":{"pk":{"S":"key-7f3a"}},"ConditionExpression":"attribute_not_exists(pk)"}"#;
    let (refused, _) = send("PutItem", conditional);
    assert_eq!(refused.status, 400);

    let started = Instant::now();
    let access_line = loop {
        let log = server.log.lock().unwrap().clone();
        let lines: Vec<serde_json::Value> = log
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect();
        let found = lines.into_iter().find(|line| {
            line["target"] == "dynabox::access" && line["span"]["request_id"].as_str() == Some(request_id.as_str())
        });
        if let Some(found) = found {
            break found;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no access line for {request_id}: {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(access_line["status"], 200, "{access_line}");
    assert_eq!(access_line["span"]["operation"], "PutItem", "{access_line}");
    assert_eq!(access_line["span"]["table"], "logged", "{access_line}");
    assert!(access_line["span"]["account"].as_str().is_some_and(|a| a.len() == 12), "{access_line}");
    let log = server.log_text();
    assert!(log.contains("ConditionalCheckFailedException"), "the failed condition is logged: {log}");
    for secret_thing in [secret.as_str(), signature.as_str(), "key-7f3a", "value-c0ffee", "AWS4-HMAC-SHA256"] {
        assert!(!log.contains(secret_thing), "{secret_thing} in the log: {log}");
    }
}

#[test]
fn under_sigv4_metrics_are_served_only_on_the_admin_address() {
    let data = temp_dir("admin");
    let key_file = temp_dir("admin-keys").join("secret.key");
    new_account(&data, &key_file);
    let flags = ["--auth", "sigv4", "--secret-key-file", key_file.to_str().unwrap()];
    let without = Server::start_with(&Store::Embedded(data.clone()), &flags);
    assert_eq!(raw_request_to(&without.address, "GET", "/metrics", &[], b"").status, 404, "table names are data");
    assert_eq!(raw_request_to(&without.address, "GET", "/ready", &[], b"").status, 200);
    drop(without);

    let with = Server::start_with(&Store::Embedded(data), &[&flags[..], &["--admin-listen", "127.0.0.1:0"]].concat());
    let started = Instant::now();
    let admin = loop {
        let log = with.log_text();
        if let Some((_, rest)) = log.split_once("dynabox admin paths on http://") {
            break rest.split([':', ' ']).take(2).collect::<Vec<_>>().join(":");
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no admin address in {log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    promtool_check(&metrics(&admin));
    assert_eq!(raw_request_to(&admin, "GET", "/ready", &[], b"").status, 200);
    assert_eq!(raw_request_to(&with.address, "GET", "/metrics", &[], b"").status, 404);
    let healthcheck = dynabox(&["healthcheck", "--admin-listen", &admin]);
    assert!(healthcheck.status.success(), "{}", String::from_utf8_lossy(&healthcheck.stderr));
}

#[test]
fn readiness_follows_the_database_and_healthcheck_exits_by_it() {
    let Some(Store::Postgres(url)) = support::stores().into_iter().find(|s| matches!(s, Store::Postgres(_))) else {
        return; // stores() already failed the run if PostgreSQL is required
    };
    let host_port = url.split('@').nth(1).and_then(|rest| rest.split('/').next()).expect("host:port in DATABASE_URL");
    let outage = Outage::start(host_port);
    let server = Server::start_with(&Store::Postgres(url.replacen(host_port, &outage.address, 1)), &[]);
    let ready = || raw_request_to(&server.address, "GET", "/ready", &[], b"").status;
    let healthcheck = || dynabox(&["healthcheck", "--listen", &server.address, "--timeout-ms", "1000"]).status.code();
    assert_eq!(ready(), 200);
    assert_eq!(healthcheck(), Some(0));
    // The pool is sampled with each readiness check: the connection it used is idle again.
    let started = Instant::now();
    let text = loop {
        let text = metrics(&server.address);
        if sample(&text, r#"dynabox_postgres_pool_connections{state="idle"}"#).is_some() {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the pool is sampled within seconds: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sample(&text, r#"dynabox_postgres_pool_connections{state="idle"}"#).unwrap() >= 1.0, "{text}");
    assert_eq!(sample(&text, "dynabox_postgres_pool_waiting"), Some(0.0), "{text}");

    outage.cut();
    let cut = Instant::now();
    while ready() != 503 {
        assert!(cut.elapsed() < Duration::from_secs(5), "an outage shows within seconds");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(healthcheck(), Some(1));
    let body = raw_request_to(&server.address, "GET", "/ready", &[], b"").body;
    assert!(!body.contains("127.0.0.1") && !body.to_lowercase().contains("postgres"), "{body}");

    outage.restore();
    let restored = Instant::now();
    while ready() != 200 {
        assert!(restored.elapsed() < Duration::from_secs(10), "ready again once the database is back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(healthcheck(), Some(0));
    let log = server.log_text();
    assert!(log.contains("not ready") && log.contains("ready: the store answers again"), "{log}");
}

#[test]
fn healthcheck_fails_where_no_server_answers() {
    let vacant = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let output = dynabox(&["healthcheck", "--listen", &vacant, "--timeout-ms", "500"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A real Prometheus (Debian's package) scraping a running server: the exposition is what
/// Prometheus ingests, not only what promtool reads. Skipped where Prometheus is missing, unless
/// DYNABOX_REQUIRE_PROMTOOL=1 (the same package).
#[tokio::test]
async fn prometheus_scrapes_a_running_server() {
    if Command::new("prometheus").arg("--version").output().is_err() {
        assert_ne!(std::env::var("DYNABOX_REQUIRE_PROMTOOL").as_deref(), Ok("1"), "prometheus is required");
        return eprintln!("prometheus is not installed: skipping the scrape");
    }
    let server = Server::start(&Store::InMemory);
    let client = server.client();
    let table = create_hash_table(&client, "scraped", "pk").await;
    let refused = client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("a".into()))
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    assert!(refused.is_err());

    let dir = temp_dir("prometheus");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let targets = format!("static_configs: [{{targets: [\"{}\"]}}]", server.address);
    let config = format!("global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: dynabox\n    {targets}\n");
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let address = format!("127.0.0.1:{port}");
    let query = "/api/v1/query?query=dynabox_conditional_check_failed_requests_total";
    let started = Instant::now();
    let found = loop {
        let answer = std::net::TcpStream::connect(&address)
            .ok()
            .map(|_| raw_request_to(&address, "GET", query, &[], b""))
            .filter(|answer| answer.status == 200)
            .and_then(|answer| serde_json::from_str::<serde_json::Value>(&answer.body).ok());
        let result = answer.as_ref().and_then(|a| a["data"]["result"].as_array().cloned()).unwrap_or_default();
        if let Some(series) = result.iter().find(|s| s["metric"]["table"] == table.as_str()) {
            break series.clone();
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = prometheus.kill();
            panic!("Prometheus did not scrape the series: {answer:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(found["metric"]["job"], "dynabox", "{found}");
    assert_eq!(found["value"][1], "1", "{found}");
}
