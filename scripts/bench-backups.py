#!/usr/bin/env python3
"""Times backups and point-in-time recovery on a running server: loads ITEMS items of about 200
bytes into a new table (BatchWriteItem, 8 threads), then CreateBackup, RestoreTableFromBackup
(until the restored table is ACTIVE), enabling point-in-time recovery (which starts the table's
history with its items) and RestoreTableToPointInTime to the latest time (until ACTIVE), and
then ExportTableToPointInTime (DYNAMODB_JSON into bucket `bench`, until COMPLETED) and
ImportTable of that export into a new table (until COMPLETED), and prints each step's time,
items per second and the server's resident memory (VmRSS, and its peak VmHWM) after it. Cleans
up after itself but for the export's files, which stay in the server's bucket `bench` (below its
`--export-dir`); with --keep it also leaves the loaded table, with its point-in-time recovery,
for `dynabox export` to be timed on it.

    python3 scripts/bench-backups.py http://127.0.0.1:8000 SERVER_PID [ITEMS] [--keep]

Needs boto3. Any access key works against `--auth open`.
"""
import concurrent.futures
import sys
import time

import boto3
from botocore.config import Config

keep = "--keep" in sys.argv[1:]
arguments = [argument for argument in sys.argv[1:] if argument != "--keep"]
endpoint, pid = arguments[0], int(arguments[1])
items = int(arguments[2]) if len(arguments) > 2 else 1_000_000
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
imported = table + "-imported"
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


export_arn = None


def export():
    global export_arn
    table_arn = client.describe_table(TableName=table)["Table"]["TableArn"]
    export_arn = client.export_table_to_point_in_time(
        TableArn=table_arn, S3Bucket="bench", ExportFormat="DYNAMODB_JSON"
    )["ExportDescription"]["ExportArn"]
    while True:
        time.sleep(0.5)
        described = client.describe_export(ExportArn=export_arn)["ExportDescription"]
        if described["ExportStatus"] != "IN_PROGRESS":
            break
    assert described["ExportStatus"] == "COMPLETED", f"export ended {described}"
    assert described["ItemCount"] == items, f"the export holds {described['ItemCount']} items, not {items}"


def import_export():
    export_id = export_arn.rsplit("/", 1)[1]
    import_arn = client.import_table(
        S3BucketSource={"S3Bucket": "bench", "S3KeyPrefix": f"AWSDynamoDB/{export_id}/data"},
        InputFormat="DYNAMODB_JSON",
        InputCompressionType="GZIP",
        TableCreationParameters={
            "TableName": imported,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )["ImportTableDescription"]["ImportArn"]
    while True:
        time.sleep(0.5)
        described = client.describe_import(ImportArn=import_arn)["ImportTableDescription"]
        if described["ImportStatus"] != "IN_PROGRESS":
            break
    assert described["ImportStatus"] == "COMPLETED", f"import ended {described}"
    assert described["ImportedItemCount"] == items, f"imported {described['ImportedItemCount']} items, not {items}"
    assert described["ErrorCount"] == 0, f"the import counted {described['ErrorCount']} errors"


try:
    timed("load (BatchWriteItem)", load)
    timed("CreateBackup", back_up)
    timed("RestoreTableFromBackup until ACTIVE", restore)
    timed("UpdateContinuousBackups (enable)", enable_recovery)
    timed("RestoreTableToPointInTime until ACTIVE", recover)
    timed("ExportTableToPointInTime (DYNAMODB_JSON) until COMPLETED", export)
    timed("ImportTable (that export, gzip) until COMPLETED", import_export)
    for name in (restored, recovered, imported):
        count = client.describe_table(TableName=name)["Table"]["ItemCount"]
        assert count == items, f"{name} holds {count} items, not {items}"
finally:
    if arn:
        client.delete_backup(BackupArn=arn)
    if keep:
        print(f"kept {table}", flush=True)
    else:
        # Disabled first, so that deleting the table keeps no system backup of it.
        try:
            client.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
            )
        except client.exceptions.TableNotFoundException:
            pass
    for name in ([] if keep else [table]) + [restored, recovered, imported]:
        try:
            client.delete_table(TableName=name)
        except client.exceptions.ResourceNotFoundException:
            pass
