//! Against a real S3-compatible server: moto's (`dynabox_testkit::moto`), its virtualenv under
//! Cargo's target directory.

use std::path::PathBuf;

use dynabox_transfer::destination::{Destination, S3Endpoint};
use dynabox_transfer::export::{ExportFormat, ExportWriter};
use dynabox_transfer::import::InputFormat;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_s3_and_read_it_back() {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let moto = tokio::task::spawn_blocking(move || dynabox_testkit::moto::start(&home)).await.unwrap();
    moto.create_bucket("ddb-exports");
    let destination = Destination::S3(S3Endpoint {
        endpoint: moto.endpoint(),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        virtual_hosted_style: false,
    });
    let store = destination.bucket("ddb-exports").unwrap();

    // Small items, then incompressible ones: the first data file passes an upload part (8 MiB)
    // and goes up in parts, the second is one PUT.
    let mut items = items(9, 1000);
    let mut rng = Rng::new(21);
    items.extend((0..40).map(|id| big_item(&mut rng, id, 300 << 10)));
    let mut spec = spec("ddb-exports", Some("tables/things"), ExportFormat::DynamoDbJson, full(1_700_000_000));
    spec.max_data_file_bytes = 14 << 20;
    let mut writer = ExportWriter::start(store.clone(), spec).await.unwrap_or_else(|e| panic!("{e}\n{}", moto.log()));
    for item in &items {
        writer.write_item(item).await.unwrap();
    }
    let summary = writer.finish().await.unwrap();
    assert_eq!(summary.data_files, 2);

    let checked = check_export(store.as_ref(), &summary, FULL_MEMBERS).await;
    assert_eq!(checked.summary["s3Bucket"], "ddb-exports");
    // S3's ETags: a multipart object's ends in its part count, a single PUT's is its MD5 in hex.
    assert!(checked.files[0].etag.ends_with("-2"), "{}", checked.files[0].etag);
    assert_eq!(checked.files[1].etag.len(), 32, "{}", checked.files[1].etag);

    let back = read_items(&store, &checked.files, InputFormat::DynamoDbJson).await;
    assert_eq!(back.len(), items.len());
    assert!(back == items, "the items read back differ from those written");
}
