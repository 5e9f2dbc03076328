#!/usr/bin/env python3
"""Times backups and point-in-time recovery on a running server: loads ITEMS items of about 200
bytes into a new table (BatchWriteItem, 8 threads), then CreateBackup, RestoreTableFromBackup
(until the restored table is ACTIVE), enabling point-in-time recovery (which starts the table's
history with its items) and RestoreTableToPointInTime to the latest time (until ACTIVE), and
prints each step's time, items per second and the server's resident memory (VmRSS, and its
peak VmHWM) after it. Cleans up after itself.

    python3 scripts/bench-backups.py http://127.0.0.1:8000 SERVER_PID [ITEMS]

Needs boto3. Any access key works against `--auth open`.
"""
import concurrent.futures
import sys
import time

import boto3
from botocore.config import Config

endpoint, pid = sys.argv[1], int(sys.argv[2])
items = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
client = boto3.client(
    "dynamodb",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="bench",
    aws_secret_access_key="bench",
    config=Config(max_pool_connections=16, retries={"max_attempts": 10}),
)


def memory():
    lines = [line.split() for line in open(f"/proc/{pid}/status") if line.startswith(("VmRSS", "VmHWM"))]
    return ", ".join(f"{name.rstrip(':')} {int(kb) / 1024:.1f} MiB" for name, kb, _ in lines)


def timed(label, step):
    started = time.time()
    step()
    took = time.time() - started
    print(f"{label}: {took:.2f} s, {items / took:,.0f} items/s; server {memory()}", flush=True)


table = f"bench-backups-{int(time.time())}"
restored = table + "-restored"
recovered = table + "-recovered"
client.create_table(
    TableName=table,
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
)
padding = "x" * 180


def load_range(start):
    for first in range(start, min(start + 2500, items), 25):
        writes = [
            {"PutRequest": {"Item": {"pk": {"S": f"item{i:08d}"}, "padding": {"S": padding}}}}
            for i in range(first, min(first + 25, items))
        ]
        while writes:
            answer = client.batch_write_item(RequestItems={table: writes})
            writes = answer.get("UnprocessedItems", {}).get(table, [])


def load():
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(load_range, range(0, items, 2500)))


arn = None


def back_up():
    global arn
    arn = client.create_backup(TableName=table, BackupName="bench")["BackupDetails"]["BackupArn"]


def restore():
    client.restore_table_from_backup(TargetTableName=restored, BackupArn=arn)
    while client.describe_table(TableName=restored)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.2)


def enable_recovery():
    client.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )


def recover():
    client.restore_table_to_point_in_time(
        SourceTableName=table, TargetTableName=recovered, UseLatestRestorableTime=True
    )
    while client.describe_table(TableName=recovered)["Table"]["TableStatus"] != "ACTIVE":
        time.sleep(0.2)


try:
    timed("load (BatchWriteItem)", load)
    timed("CreateBackup", back_up)
    timed("RestoreTableFromBackup until ACTIVE", restore)
    timed("UpdateContinuousBackups (enable)", enable_recovery)
    timed("RestoreTableToPointInTime until ACTIVE", recover)
    for name in (restored, recovered):
        count = client.describe_table(TableName=name)["Table"]["ItemCount"]
        assert count == items, f"{name} holds {count} items, not {items}"
finally:
    if arn:
        client.delete_backup(BackupArn=arn)
    # Disabled first, so that deleting the table keeps no system backup of it.
    try:
        client.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
        )
    except client.exceptions.TableNotFoundException:
        pass
    for name in (table, restored, recovered):
        try:
            client.delete_table(TableName=name)
        except client.exceptions.ResourceNotFoundException:
            pass
