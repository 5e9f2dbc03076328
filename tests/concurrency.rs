//! Guarantees under concurrent clients, on every backend, through the real server and the AWS SDK
//! for Rust: transfers keep their total and are never seen half done, exactly one conditional
//! create of a key wins, and transactions that cross each other end (applied, or cancelled as
//! conflicting) without a hang or a server error.

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Get, TransactGetItem, TransactWriteItem, Update};
use support::{Server, create_hash_table, stores};

const ACCOUNTS: usize = 8;
const START_BALANCE: i64 = 100;

fn key(account: usize) -> AttributeValue {
    AttributeValue::S(format!("account-{account}"))
}

fn change(table: &str, account: usize, operator: &str, amount: i64, guarded: bool) -> TransactWriteItem {
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", key(account))
        .update_expression(format!("SET balance = balance {operator} :amount"))
        .expression_attribute_values(":amount", AttributeValue::N(amount.to_string()));
    if guarded {
        update = update.condition_expression("balance >= :amount");
    }
    TransactWriteItem::builder().update(update.build().unwrap()).build()
}

/// The balances of every account, read as one snapshot.
async fn balances(client: &Client, table: &str) -> Vec<i64> {
    snapshot(client, table).await.expect("a snapshot")
}

/// The balances of every account, read as one snapshot, or `None` when the read was cancelled
/// as conflicting with the transfers (as DynamoDB may cancel it).
async fn snapshot(client: &Client, table: &str) -> Option<Vec<i64>> {
    let gets = (0..ACCOUNTS).map(|account| {
        let get = Get::builder().table_name(table).key("pk", key(account)).build().unwrap();
        TransactGetItem::builder().get(get).build()
    });
    let answer = match client.transact_get_items().set_transact_items(Some(gets.collect())).send().await {
        Ok(answer) => answer,
        Err(e) if e.code() == Some("TransactionCanceledException") => return None,
        Err(e) => panic!("a snapshot failed otherwise: {e:?}"),
    };
    let balances = answer
        .responses()
        .iter()
        .map(|response| match response.item().and_then(|item| item.get("balance")) {
            Some(AttributeValue::N(n)) => n.parse().unwrap(),
            other => panic!("no balance: {other:?}"),
        })
        .collect();
    Some(balances)
}

/// A small deterministic generator, so each task's transfers differ without a dependency.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

/// A transaction's outcome that the guarantees allow: applied, or cancelled (a failed condition
/// or a conflict with another transaction). Anything else (a server error) fails the test.
fn allowed<T, E: ProvideErrorMetadata + std::fmt::Debug>(result: Result<T, E>) -> bool {
    match result {
        Ok(_) => true,
        Err(e) if e.code() == Some("TransactionCanceledException") => false,
        Err(e) => panic!("a transaction failed otherwise: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_keep_the_total_and_are_never_seen_half_done() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "bank", "pk").await;
        for account in 0..ACCOUNTS {
            let item =
                [("pk".to_string(), key(account)), ("balance".into(), AttributeValue::N(START_BALANCE.to_string()))];
            client.put_item().table_name(&table).set_item(Some(item.into())).send().await.unwrap();
        }
        let total = START_BALANCE * ACCOUNTS as i64;

        let writers: Vec<_> = (0..6u64)
            .map(|task| {
                let (client, table) = (client.clone(), table.clone());
                tokio::spawn(async move {
                    let mut seed = task + 1;
                    let mut applied = 0;
                    for _ in 0..30 {
                        let from = next(&mut seed) as usize % ACCOUNTS;
                        let to = (from + 1 + next(&mut seed) as usize % (ACCOUNTS - 1)) % ACCOUNTS;
                        let amount = 1 + next(&mut seed) as i64 % 20;
                        let result = client
                            .transact_write_items()
                            .transact_items(change(&table, from, "-", amount, true))
                            .transact_items(change(&table, to, "+", amount, false))
                            .send()
                            .await;
                        applied += usize::from(allowed(result));
                    }
                    applied
                })
            })
            .collect();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (client, table) = (client.clone(), table.clone());
                tokio::spawn(async move {
                    let mut snapshots = 0;
                    for _ in 0..40 {
                        let Some(seen) = snapshot(&client, &table).await else { continue };
                        assert_eq!(seen.iter().sum::<i64>(), total, "a snapshot saw a transfer half done: {seen:?}");
                        assert!(seen.iter().all(|&b| b >= 0), "a guarded debit overdrew: {seen:?}");
                        snapshots += 1;
                    }
                    snapshots
                })
            })
            .collect();
        let mut applied = 0;
        for writer in writers {
            applied += writer.await.unwrap();
        }
        let mut snapshots = 0;
        for reader in readers {
            snapshots += reader.await.unwrap();
        }
        assert!(snapshots > 0, "no snapshot was read");
        let end = balances(&client, &table).await;
        assert_eq!(end.iter().sum::<i64>(), total);
        assert!(applied > 0, "no transfer was applied");
        eprintln!("{}: {applied} of 180 transfers applied, {snapshots} of 120 snapshots read", server.address);
        client.delete_table().table_name(&table).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_many_conditional_creates_wins() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "creates", "pk").await;
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let (client, table) = (client.clone(), table.clone());
                tokio::spawn(async move {
                    let result = client
                        .put_item()
                        .table_name(&table)
                        .item("pk", AttributeValue::S("the-key".into()))
                        .item("by", AttributeValue::N(task.to_string()))
                        .condition_expression("attribute_not_exists(pk)")
                        .send()
                        .await;
                    match result {
                        Ok(_) => Some(task),
                        Err(e) if e.code() == Some("ConditionalCheckFailedException") => None,
                        Err(e) => panic!("a create failed otherwise: {e:?}"),
                    }
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "winners: {winners:?}");
        let item = client.get_item().table_name(&table).key("pk", AttributeValue::S("the-key".into())).send().await;
        assert_eq!(item.unwrap().item().unwrap().get("by"), Some(&AttributeValue::N(winners[0].to_string())));
        client.delete_table().table_name(&table).send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossing_transactions_end_without_a_hang_or_a_server_error() {
    for store in stores() {
        let server = Server::start(&store);
        let client = server.client();
        let table = create_hash_table(&client, "crossing", "pk").await;
        for account in 0..3 {
            let item = [("pk".to_string(), key(account)), ("balance".into(), AttributeValue::N("0".into()))];
            client.put_item().table_name(&table).set_item(Some(item.into())).send().await.unwrap();
        }
        // Half the tasks touch 0 then 1, half 1 then 0, all checking 2: every order of locking
        // that could deadlock.
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let (client, table) = (client.clone(), table.clone());
                tokio::spawn(async move {
                    let (first, second) = if task % 2 == 0 { (0, 1) } else { (1, 0) };
                    let check = ConditionCheck::builder()
                        .table_name(&table)
                        .key("pk", key(2))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .unwrap();
                    let mut applied = 0;
                    for _ in 0..15 {
                        let result = client
                            .transact_write_items()
                            .transact_items(change(&table, first, "+", 1, false))
                            .transact_items(change(&table, second, "+", 1, false))
                            .transact_items(TransactWriteItem::builder().condition_check(check.clone()).build())
                            .send()
                            .await;
                        applied += i64::from(allowed(result));
                    }
                    applied
                })
            })
            .collect();
        let all = async {
            let mut applied = 0;
            for task in tasks {
                applied += task.await.unwrap();
            }
            applied
        };
        let applied = tokio::time::timeout(Duration::from_secs(120), all).await.expect("transactions hung");
        let end = balances_of(&client, &table, 2).await;
        assert_eq!(end, vec![applied, applied], "each applied transaction added one to both");
        client.delete_table().table_name(&table).send().await.unwrap();
    }
}

async fn balances_of(client: &Client, table: &str, accounts: usize) -> Vec<i64> {
    let mut balances = Vec::new();
    for account in 0..accounts {
        let item = client.get_item().table_name(table).key("pk", key(account)).consistent_read(true).send().await;
        match item.unwrap().item().and_then(|item| item.get("balance")) {
            Some(AttributeValue::N(n)) => balances.push(n.parse().unwrap()),
            other => panic!("no balance: {other:?}"),
        }
    }
    balances
}
