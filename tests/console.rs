//! The web console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over the W3C WebDriver protocol, against the real binary on each
//! backend. Without chromedriver the tests are skipped, unless DYNABOX_REQUIRE_BROWSER=1
//! (scripts/test.sh, CI) makes that a failure. With DYNABOX_CONSOLE_SCREENSHOTS=DIR the
//! README's screenshots are written there.
//!
//! The WebDriver client is the dozen commands below, over plain HTTP: fantoccini, the
//! crate for it, brings ICU and changes `syn`'s features, which rebuilt every procedural macro and
//! everything after it (the whole dependency tree) for one test.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client as Dynamo;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{Value, json};
use support::{Server, Store, new_account, raw_request_to, stores, temp_dir, unique};

/// The W3C name of an element reference in WebDriver's JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session through chromedriver; both end when dropped.
struct Browser {
    driver: Child,
    address: String,
    session: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.command("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        if std::env::var("DYNABOX_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("DYNABOX_REQUIRE_BROWSER=1 but there is no chromedriver (apt-get install chromium chromium-driver)");
        }
        eprintln!("no chromedriver: skipping the browser tests");
    }
    found
}

/// A WebDriver command's answer (`value`), or its error as text. chromedriver says
/// `Connection: close` but keeps the connection open, so the body is read by its length.
fn webdriver(address: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).map_err(|e| e.to_string())?;
    let status: u16 = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or(status_line.clone())?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().map_err(|_| line.clone())?;
        }
    }
    let mut text = vec![0; length];
    reader.read_exact(&mut text).map_err(|e| e.to_string())?;
    let answer: Value =
        serde_json::from_slice(&text).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&text)))?;
    match status {
        200 => Ok(answer["value"].clone()),
        status => Err(format!("{status}: {}", answer["value"])),
    }
}

fn browser() -> Option<Browser> {
    let driver_path = chromedriver()?;
    // The port is free when picked, but another test's driver may take it before this one binds
    // it (and this one then exits): a session refused that way is tried again on a new port.
    let mut refusals = Vec::new();
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args =
            ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1360,900"];
        let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": args}}}});
        match webdriver(&address, "POST", "/session", Some(capabilities)) {
            Ok(started) => {
                let session = started["sessionId"].as_str().unwrap().to_string();
                return Some(Browser { driver, address, session });
            }
            Err(refused) => {
                let _ = driver.kill();
                let _ = driver.wait();
                refusals.push(refused);
            }
        }
    }
    panic!("no Chromium session starts: {refusals:?}")
}

impl Browser {
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        webdriver(&self.address, method, &format!("/session/{}{path}", self.session), body)
    }

    fn find_all(&self, using: &str, selector: &str) -> Vec<Element<'_>> {
        let found = self.command("POST", "/elements", Some(json!({"using": using, "value": selector}))).unwrap();
        let ids =
            found.as_array().unwrap_or_else(|| panic!("{selector}: {found}")).iter().map(|e| {
                e.get(ELEMENT).and_then(Value::as_str).unwrap_or_else(|| panic!("{selector}: {e}")).to_string()
            });
        ids.map(|id| Element { browser: self, id }).collect()
    }

    /// The first element `css` selects, waited for a while: a form's answer may still be loading.
    fn find(&self, css: &str) -> Element<'_> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(found) = self.find_all("css selector", css).into_iter().next() {
                return found;
            }
            assert!(Instant::now() < deadline, "no element {css}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn find_xpath(&self, xpath: &str) -> Element<'_> {
        self.find_all("xpath", xpath).into_iter().next().unwrap_or_else(|| panic!("no element {xpath}"))
    }
}

/// An element of the page shown.
struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Element<'_> {
    fn command(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        self.browser.command(method, &format!("/element/{}/{what}", self.id), body).unwrap()
    }

    fn click(&self) {
        self.command("POST", "click", Some(json!({})));
    }

    fn text(&self) -> String {
        self.command("GET", "text", None).as_str().unwrap_or_default().to_string()
    }

    fn attr(&self, name: &str) -> Option<String> {
        self.command("GET", &format!("attribute/{name}"), None).as_str().map(str::to_string)
    }

    fn value(&self) -> String {
        self.command("GET", "property/value", None).as_str().unwrap_or_default().to_string()
    }

    fn type_text(&self, text: &str) {
        self.command("POST", "clear", Some(json!({})));
        self.command("POST", "value", Some(json!({"text": text})));
    }
}

/// The browser, at pages of one server.
struct Console<'a> {
    browser: &'a Browser,
    base: String,
}

impl Console<'_> {
    fn open(&self, path: &str) {
        self.browser.command("POST", "/url", Some(json!({"url": format!("{}{path}", self.base)}))).unwrap();
    }

    /// The path and query of the page shown.
    fn path(&self) -> String {
        let url = self.browser.command("GET", "/url", None).unwrap();
        url.as_str().unwrap().strip_prefix(&self.base).unwrap().to_string()
    }

    fn text(&self, css: &str) -> String {
        self.browser.find(css).text()
    }

    fn has(&self, css: &str) -> bool {
        !self.browser.find_all("css selector", css).is_empty()
    }

    /// Clicks a link or button and waits until the page it loads has replaced this one.
    fn click(&self, css: &str) {
        self.load_by(self.browser.find(css));
    }

    /// Clicks `element` and waits until the page it loads has replaced this one.
    fn load_by(&self, element: Element<'_>) {
        element.click();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.browser.command("GET", &format!("/element/{}/name", element.id), None).is_ok() {
            assert!(Instant::now() < deadline, "the click loaded no page");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn fill(&self, css: &str, text: &str) {
        self.browser.find(css).type_text(text);
    }

    fn choose(&self, css: &str, value: &str) {
        self.browser.find(&format!("{css} option[value={}]", json!(value))).click();
    }

    /// Sets a textarea's whole text at once (typing 40 lines of JSON key by key is slow).
    fn set_value(&self, css: &str, text: &str) {
        self.script(&format!("document.querySelector({}).value = arguments[0];", json!(css)), vec![json!(text)]);
    }

    fn script(&self, script: &str, args: Vec<Value>) {
        self.browser.command("POST", "/execute/sync", Some(json!({"script": script, "args": args}))).unwrap();
    }

    /// The keys (DynamoDB JSON) of the items on this page.
    fn keys_on_page(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.has("#items") {
            assert!(!self.has("#error"), "{}", self.text("#error"));
            assert!(Instant::now() < deadline, "no items on {}", self.path());
            std::thread::sleep(Duration::from_millis(50));
        }
        let boxes = self.browser.find_all("css selector", "#items input[name=key]");
        boxes.iter().map(|checkbox| checkbox.attr("value").unwrap()).collect()
    }

    /// Follows "Next page" to the end; every key met, in order, and the pages.
    fn page_through(&self) -> (Vec<String>, usize) {
        let (mut keys, mut pages) = (Vec::new(), 0);
        loop {
            keys.extend(self.keys_on_page());
            pages += 1;
            if !self.has("#next") {
                return (keys, pages);
            }
            self.click("#next");
        }
    }

    fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("DYNABOX_CONSOLE_SCREENSHOTS") else { return };
        let png = self.browser.command("GET", "/screenshot", None).unwrap();
        std::fs::write(Path::new(&dir).join(name), base64_decode(png.as_str().unwrap())).unwrap();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()).map(digit).collect();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let word = chunk.iter().enumerate().fold(0u32, |word, (i, d)| word | u32::from(*d) << (18 - 6 * i));
        bytes.extend(&word.to_be_bytes()[1..chunk.len()]);
    }
    bytes
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: impl ToString) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

async fn get(
    client: &Dynamo,
    table: &str,
    pk: &str,
    sk: u32,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    let found = client.get_item().table_name(table).key("pk", s(pk)).key("sk", n(sk)).consistent_read(true);
    found.send().await.unwrap().item().cloned()
}

/// Item `i` of the test table: the partition `p{i:03}`, sort key `i`, and the index's keys
/// `kind` (even or odd) and `score` (`i`).
fn test_item(i: u32) -> Value {
    let kind = if i.is_multiple_of(2) { "even" } else { "odd" };
    json!({"pk": {"S": format!("p{i:03}")}, "sk": {"N": i.to_string()}, "kind": {"S": kind}, "score": {"N": i.to_string()}})
}

#[tokio::test]
async fn the_console_manages_tables_and_items_in_a_browser() {
    let Some(browser) = browser() else { return };
    for store in stores() {
        let server = Server::start(&store);
        tables_and_items(&browser, &server, &store).await;
    }
}

async fn tables_and_items(browser: &Browser, server: &Server, store: &Store) {
    let console = Console { browser, base: server.endpoint() };
    let api = server.client();
    let table = unique("console");

    // Under --auth open no sign-in: the console opens on the tables.
    console.open("/console");
    assert_eq!(console.path(), "/console/tables", "{store:?}");

    // A refused form shows DynamoDB's message next to it, keeps what was typed, changes nothing.
    console.click("#create-table");
    console.fill("#name", "x");
    console.fill("#hash", "pk");
    console.click("#create-submit");
    let error = console.text("#error");
    assert!(error.contains("ValidationException") && error.contains("tableName"), "{error}");
    assert_eq!(console.browser.find("#hash").value(), "pk");
    let tables = api.list_tables().send().await.unwrap();
    assert!(!tables.table_names().contains(&"x".to_string()));

    // A table with a global index, time to live and a stream.
    console.fill("#name", &table);
    console.fill("#range", "sk");
    console.choose("#range_type", "N");
    console.fill("#gsi0_name", "byScore");
    console.fill("#gsi0_hash", "kind");
    console.fill("#gsi0_range", "score");
    console.choose("#gsi0_range_type", "N");
    console.fill("#ttl", "expires");
    console.choose("#stream", "NEW_IMAGE");
    console.click("#create-submit");
    assert_eq!(console.text("#table-name"), table);
    assert!(console.text("#indexes").contains("byScore"));
    let described = api.describe_table().table_name(&table).send().await.unwrap();
    let gsi = &described.table().unwrap().global_secondary_indexes()[0];
    assert_eq!(gsi.index_name(), Some("byScore"));
    let ttl = api.describe_time_to_live().table_name(&table).send().await.unwrap();
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.attribute_name()), Some("expires"));

    // Items added with the console's form, the rest with the API.
    for i in 0..2 {
        console.click("#new-item");
        console.set_value("#item", &test_item(i).to_string());
        console.click("#save");
        assert!(console.text("#notice").contains("saved"), "{store:?}");
        console.click("h1 a");
    }
    // Adding an item that exists is refused with DynamoDB's conditional failure.
    console.click("#new-item");
    console.set_value("#item", &test_item(0).to_string());
    console.click("#save");
    assert!(console.text("#error").contains("ConditionalCheckFailedException"));
    for chunk in (2..250).collect::<Vec<u32>>().chunks(25) {
        let writes = chunk.iter().map(|&i| {
            let item = serde_json::from_value::<std::collections::HashMap<String, Value>>(test_item(i)).unwrap();
            let item = item.into_iter().map(|(name, v)| {
                let value = match (v.get("S"), v.get("N")) {
                    (Some(text), _) => s(text.as_str().unwrap()),
                    (_, Some(number)) => n(number.as_str().unwrap()),
                    _ => unreachable!(),
                };
                (name, value)
            });
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item.collect())).build().unwrap())
                .build()
        });
        api.batch_write_item().request_items(&table, writes.collect()).send().await.unwrap();
    }

    // 250 items, 60 to a page: each met once, in key order of the table, then of the index.
    console.open(&format!("/console/tables/{table}?limit=60"));
    if matches!(store, Store::Embedded(_)) {
        console.screenshot("console-items.png");
    }
    let (keys, pages) = console.page_through();
    assert_eq!((keys.len(), pages), (250, 5), "{store:?}");
    let distinct: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), 250);
    console.open(&format!("/console/tables/{table}"));
    console.choose("#index", "byScore");
    console.fill("#limit", "40");
    console.click("#browse-submit");
    let (index_keys, pages) = console.page_through();
    assert_eq!((index_keys.len(), pages), (250, 7), "{store:?}: every item once through the index");
    let distinct: std::collections::HashSet<&String> = index_keys.iter().collect();
    assert_eq!(distinct.len(), 250);

    // Query the index: kind = even AND score BETWEEN 10 AND 20.
    console.open(&format!("/console/tables/{table}/search"));
    console.choose("#index", "byScore");
    console.fill("#pk", "even");
    console.choose("#op", "between");
    console.fill("#sk", "10");
    console.fill("#sk2", "20");
    console.click("#run");
    let found: Vec<String> = console.keys_on_page();
    let expected: Vec<String> = (10..=20)
        .step_by(2)
        .map(|i| json!({"pk": {"S": format!("p{i:03}")}, "sk": {"N": i.to_string()}}).to_string())
        .collect();
    assert_eq!(found, expected, "{store:?}");
    // begins_with on the table's key cannot apply to a number: DynamoDB says so next to the form.
    console.choose("#index", "");
    console.fill("#pk", "p001");
    console.choose("#op", "begins_with");
    console.click("#run");
    assert!(console.text("#error").contains("ValidationException"));
    // Scan with a filter row.
    console.open(&format!("/console/tables/{table}/search?mode=scan&limit=1000"));
    console.fill("#f0_name", "score");
    console.choose("#f0_op", ">=");
    console.choose("#f0_type", "N");
    console.fill("#f0_value", "245");
    console.click("#run");
    assert_eq!(console.keys_on_page().len(), 5);

    // Edit an item: a number of 38 digits, a string set and binary, kept exactly.
    let key = json!({"pk": {"S": "p007"}, "sk": {"N": "7"}}).to_string();
    console.open(&format!("/console/tables/{table}/item?{}", serde_urlencoded::to_string([("key", &key)]).unwrap()));
    let mut item = test_item(7);
    item["big"] = json!({"N": "12345678901234567890123456789012345678"});
    item["tags"] = json!({"SS": ["red", "green"]});
    item["blob"] = json!({"B": "AAEC/w=="});
    console.set_value("#item", &item.to_string());
    console.click("#save");
    assert!(console.text("#notice").contains("saved"));
    item["big"] = json!({"N": "-98765432109876543210987654321098765432"});
    item["tags"] = json!({"SS": ["red", "green", "blue"]});
    console.set_value("#item", &item.to_string());
    console.click("#save");
    let shown = console.browser.find("#item").value();
    assert!(shown.contains("-98765432109876543210987654321098765432"), "{shown}");
    let stored = get(&api, &table, "p007", 7).await.expect("the item is there");
    assert_eq!(stored["big"], n("-98765432109876543210987654321098765432"));
    let mut tags = stored["tags"].as_ss().unwrap().clone();
    tags.sort();
    assert_eq!(tags, ["blue", "green", "red"]);
    assert_eq!(stored["blob"].as_b().unwrap().clone().into_inner(), vec![0, 1, 2, 255]);
    // A number DynamoDB refuses: its message, and the item unchanged.
    item["big"] = json!({"N": "1e126"});
    console.set_value("#item", &item.to_string());
    console.click("#save");
    assert!(console.text("#error").contains("ValidationException"));
    assert_eq!(get(&api, &table, "p007", 7).await.unwrap()["big"], n("-98765432109876543210987654321098765432"));

    // A form posted without its CSRF token is refused and changes nothing.
    console.script("document.querySelector('#delete-item input[name=csrf]').remove();", vec![]);
    console.click("#delete");
    assert_eq!(console.text("#title"), "Refused");
    assert!(get(&api, &table, "p007", 7).await.is_some());

    // Delete the item, then a selection of two.
    console.open(&format!("/console/tables/{table}/item?{}", serde_urlencoded::to_string([("key", &key)]).unwrap()));
    console.click("#delete");
    assert!(console.text("#notice").contains("deleted"));
    assert!(get(&api, &table, "p007", 7).await.is_none(), "{store:?}");
    let boxes = console.browser.find_all("css selector", "#items input[name=key]");
    let selected = [boxes[0].attr("value").unwrap(), boxes[1].attr("value").unwrap()];
    boxes[0].click();
    boxes[1].click();
    console.click("#delete-selected");
    assert!(console.text("#notice").contains("2 items were deleted"));
    let count = api.scan().table_name(&table).select(aws_sdk_dynamodb::types::Select::Count).send().await.unwrap();
    assert_eq!(count.count(), 247);
    assert!(!console.keys_on_page().iter().any(|k| selected.contains(k)));

    // The list of tables, with the table's counts and settings (from the test's own names on:
    // other tests' tables may share the PostgreSQL store).
    support::create_hash_table(&api, "console-events", "id").await;
    console.open("/console/tables?start=console-");
    if matches!(store, Store::Embedded(_)) {
        console.screenshot("console-tables.png");
    }
    let row = console.text("#tables");
    assert!(
        row.contains(&table) && row.contains("byScore") && row.contains("NEW_IMAGE") && row.contains("expires"),
        "{row}"
    );

    // The metrics page charts the table's API requests from the server's /metrics numbers (the
    // console's own are not counted): the batches above and a failed condition.
    let refused = api.put_item().table_name(&table).set_item(Some(get(&api, &table, "p008", 8).await.unwrap()));
    let refused = refused.condition_expression("attribute_not_exists(pk)").send().await.unwrap_err();
    assert_eq!(refused.code(), Some("ConditionalCheckFailedException"));
    let invalid = api.get_item().table_name(&table).key("pk", s("p008")).send().await.unwrap_err();
    assert_eq!(invalid.code(), Some("ValidationException"));
    console.click("#nav-metrics");
    assert_eq!(console.path(), "/console/metrics");
    if matches!(store, Store::Embedded(_)) {
        console.screenshot("console-metrics.png");
    }
    let row = |class: &str| console.text(&format!("tr[data-table='{table}'] .{class}"));
    let successful: u64 = row("requests").parse().unwrap();
    assert!(successful >= 10, "{successful} successful requests on {table}");
    assert!(row("conditional-check-failed").starts_with("1 "), "{}", row("conditional-check-failed"));
    assert!(row("p99").parse::<f64>().unwrap() > 0.0, "{}", row("p99"));
    let drawn = console.browser.find(&format!("tr[data-table='{table}'] svg polyline.successful"));
    assert!(drawn.attr("points").is_some_and(|points| points.contains(',')), "a line is drawn");
    let all: u64 = console.text("tr[data-table='All tables'] .requests").parse().unwrap();
    assert!(all >= successful);
    let user_errors: u64 = console.text("#user-errors b").parse().unwrap();
    assert!(user_errors >= 1, "the GetItem without its sort key: {user_errors}");

    // Deleting a table takes its name typed again.
    console.open(&format!("/console/tables/{table}"));
    console.fill("#confirm", "not-it");
    console.click("#delete-table-submit");
    assert!(console.text("#error").contains("Type the table's name"));
    console.fill("#confirm", &table);
    console.click("#delete-table-submit");
    assert_eq!(console.path(), "/console/tables");
    let gone = api.describe_table().table_name(&table).send().await;
    assert_eq!(gone.err().unwrap().code(), Some("ResourceNotFoundException"));

    // The console's paths are its own; the API's answers are unchanged.
    assert_eq!(raw_request_to(&server.address, "GET", "/console/no-such-page", &[], b"").status, 404);
    assert_eq!(raw_request_to(&server.address, "GET", "/consoles", &[], b"").status, 404);
    assert_eq!(raw_request_to(&server.address, "GET", "/", &[], b"").status, 200);
}

#[tokio::test]
async fn under_sigv4_the_console_signs_in_and_manages_accounts() {
    let Some(browser) = browser() else { return };
    for store in stores() {
        let key_file = temp_dir("console-keys").join("secret.key");
        let (admin, admin_secret) = new_account(&store, &key_file, "admin");
        let (alice, alice_secret) = new_account(&store, &key_file, "alice");
        let key_file_flag = key_file.to_str().unwrap();
        let server = Server::start_with(
            &store,
            &["--auth", "sigv4", "--secret-key-file", key_file_flag, "--console-admin", admin.as_str()],
        );
        accounts_and_sign_in(&browser, &server, [(&admin, &admin_secret), (&alice, &alice_secret)]).await;
    }
}

fn sign_in(console: &Console<'_>, name: &str, secret: &str) {
    console.open("/console/sign-in");
    console.fill("#name", name);
    console.fill("#secret", secret);
    console.click("#sign-in");
}

async fn accounts_and_sign_in(browser: &Browser, server: &Server, [admin, alice]: [(&String, &String); 2]) {
    let console = Console { browser, base: server.endpoint() };
    let alice_api = server.client_as(alice.0, alice.1, "us-east-1");
    let admin_api = server.client_as(admin.0, admin.1, "us-east-1");
    let alices_table = support::create_hash_table(&alice_api, "alices", "pk").await;
    let admins_table = support::create_hash_table(&admin_api, "admins", "pk").await;

    // Signed out, every page leads to the sign-in; a wrong secret is refused.
    console.open("/console/tables");
    assert_eq!(console.path(), "/console/sign-in");
    sign_in(&console, alice.0, "not-the-secret");
    assert!(console.text("#error").contains("No account has this name and secret"));

    // Alice sees her own tables and account only.
    sign_in(&console, alice.0, alice.1);
    assert_eq!(console.path(), "/console/tables");
    assert_eq!(&console.text("#account"), alice.0);
    let tables = console.text("#tables");
    assert!(tables.contains(&alices_table) && !tables.contains(&admins_table), "{tables}");
    console.open("/console/accounts");
    let names: Vec<String> =
        console.browser.find_all("css selector", ".account-name").iter().map(|c| c.text()).collect();
    assert_eq!(names, [alice.0.as_str()]);
    assert!(!console.has("#create-account"));
    // The server's metrics are every account's: not hers to see.
    assert!(!console.has("#nav-metrics"));
    console.open("/console/metrics");
    assert_eq!(console.text("#title"), "Not found");
    console.open("/console/tables");

    // Signed out, the session is gone.
    console.click("#sign-out");
    assert_eq!(console.path(), "/console/sign-in");
    console.open("/console/tables");
    assert_eq!(console.path(), "/console/sign-in");

    // The admin creates an account, whose secret is shown once and works, rotates it, revokes
    // the old one, and deletes it.
    sign_in(&console, admin.0, admin.1);
    console.click("#nav-metrics");
    assert!(console.text("#metrics").contains(&admins_table));
    console.open("/console/accounts");
    let bob = unique("bob");
    console.fill("#new-account", &bob);
    console.click("#create-account-submit");
    let secret = console.text("#secret");
    assert_eq!(secret.len(), 40);
    let bob_api = server.client_as(&bob, &secret, "us-east-1");
    bob_api.list_tables().send().await.expect("the new secret works");
    console.open("/console/accounts");
    assert!(!console.has("#secret"), "a secret is shown once");
    let row = format!("//tr[td[@class='account-name' and text()='{bob}']]");
    console.load_by(console.browser.find_xpath(&format!("{row}//form[contains(@action, 'rotate')]//button")));
    let rotated = console.text("#secret");
    assert_ne!(rotated, secret);
    console.load_by(console.browser.find_xpath(&format!("{row}//form[contains(@action, 'revoke-old')]//button")));
    // The authenticator remembers accounts for up to 2 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let old = bob_api.list_tables().send().await;
    assert_eq!(old.err().unwrap().code(), Some("InvalidSignatureException"));
    server.client_as(&bob, &rotated, "us-east-1").list_tables().send().await.expect("the rotated secret works");
    console.browser.find_xpath(&format!("{row}//input[@name='confirm']")).type_text(&bob);
    console.load_by(console.browser.find_xpath(&format!("{row}//form[contains(@action, 'delete')]//button")));
    assert!(!console.text("#accounts").contains(&bob));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let deleted = server.client_as(&bob, &rotated, "us-east-1").list_tables().send().await;
    assert_eq!(deleted.err().unwrap().code(), Some("UnrecognizedClientException"));
    console.click("#sign-out");
}

#[tokio::test]
async fn console_off_leaves_only_the_api() {
    let server = Server::start_with(&Store::InMemory, &["--console", "off"]);
    assert_eq!(raw_request_to(&server.address, "GET", "/console", &[], b"").status, 404);
    assert_eq!(raw_request_to(&server.address, "GET", "/console/tables", &[], b"").status, 404);
    assert_eq!(raw_request_to(&server.address, "GET", "/", &[], b"").status, 200);
}
