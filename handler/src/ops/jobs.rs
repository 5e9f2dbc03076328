//! What exports and imports share: their records in the account's jobs table
//! (`catalog::jobs`), read, listed and written here, and the digest that tells a request sent
//! again under its ClientToken from another one that reuses the token.

use serde_json::Value;

use super::Context;
use crate::catalog::{JOBS_TABLE, Job, job_key, jobs_keyspace, jobs_scan};
use crate::error::{ApiError, ApiResult};
use crate::input::{Input, Violations};
use crate::storage::{Expect, Failure, Request, Storage, StorageError, Write};

/// A digest of the request's members but its idempotency token (JSON of sorted members), so the
/// same request sent again matches whatever its formatting.
pub(super) fn digest(input: Input<'_>, token_member: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut members = input.members().clone();
    members.remove(token_member);
    let digest = Sha256::digest(Value::Object(members).to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a bucket's name and owner as DynamoDB does; `path` is where the members are (`""` or
/// `"s3BucketSource."`).
pub(super) fn check_bucket(violations: &mut Violations, bucket: Option<&str>, owner: Option<&str>, path: &str) {
    let bucket_path = format!("{path}s3Bucket");
    if let Some(bucket) = violations.not_null(bucket, &bucket_path) {
        violations.length(bucket, &bucket_path, 0, 255);
        if !bucket_pattern(bucket) {
            let pattern = "satisfy regular expression pattern: ^[a-z0-9A-Z]+[\\.\\-\\w]*[a-z0-9A-Z]+$";
            violations.add(Some(bucket), &bucket_path, pattern);
        }
    }
    if let Some(owner) = owner
        && !(owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()))
    {
        violations.add(Some(owner), &format!("{path}s3BucketOwner"), "satisfy regular expression pattern: [0-9]{12}");
    }
}

/// S3Bucket's pattern: `^[a-z0-9A-Z]+[\.\-\w]*[a-z0-9A-Z]+$`.
fn bucket_pattern(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The job named `arn`, if the account has it.
pub(super) fn load_job<S: Storage>(cx: &mut Context<'_, S>, arn: &str) -> ApiResult<Option<Job>> {
    let key = job_key(arn);
    match cx.storage.ask(&cx.principal.account_id, Request::get(&jobs_keyspace(), &key)) {
        Ok(Some(stored)) => Job::read(&stored).map(Some).map_err(ApiError::internal),
        Ok(None) | Err(StorageError::NoSuchKeyspace) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every job of the account, in ARN order.
pub(super) fn jobs<S: Storage>(cx: &mut Context<'_, S>) -> ApiResult<Vec<Job>> {
    let mut jobs = Vec::new();
    let mut after = None;
    loop {
        let page = match cx.storage.ask(&cx.principal.account_id, Request::scan(&jobs_scan(after))) {
            Err(StorageError::NoSuchKeyspace) => return Ok(jobs),
            page => page?,
        };
        after = page.items.last().map(|stored| stored.key.clone());
        for stored in &page.items {
            jobs.push(Job::read(stored).map_err(ApiError::internal)?);
        }
        if !page.more {
            return Ok(jobs);
        }
    }
}

/// ListExports' and ListImports' members, checked: TableArn, the page size (its member and path;
/// 1 to 25, 25 when not given) and NextToken, which `check_next` may hold to more rules.
pub(super) fn list_members<'a>(
    input: Input<'a>,
    (size_member, size_path): (&str, &str),
    check_next: impl FnOnce((&mut Violations, &str)),
) -> ApiResult<(Option<&'a str>, i64, Option<&'a str>)> {
    let table_arn = input.string("TableArn")?;
    let size = input.integer(size_member)?;
    let next = input.string("NextToken")?;
    let mut violations = Violations::default();
    if let Some(arn) = table_arn {
        violations.length(arn, "tableArn", 1, 1024);
    }
    if let Some(size) = size {
        violations.range(size, size_path, 1, 25);
    }
    if let Some(next) = next {
        check_next((&mut violations, next));
    }
    violations.finish()?;
    Ok((table_arn, size.unwrap_or(25), next))
}

/// The jobs after the ARN `after` (in ARN order, as [`jobs`] lists them), at most `size`, and
/// whether more follow: a page of ListExports or ListImports.
pub(super) fn page<T>(
    jobs: impl Iterator<Item = T>,
    arn: impl Fn(&T) -> &String,
    after: &str,
    size: i64,
) -> (Vec<T>, bool) {
    let mut page: Vec<T> = jobs.filter(|job| arn(job).as_str() > after).collect();
    let more = page.len() > size as usize;
    page.truncate(size as usize);
    (page, more)
}

/// The job a ClientToken was used for, if any.
pub(super) fn find_by_token<S: Storage>(cx: &mut Context<'_, S>, token: &str) -> ApiResult<Option<Job>> {
    Ok(jobs(cx)?.into_iter().find(|job| {
        let used = match job {
            Job::Export(job) => job.client_token.as_deref(),
            Job::Import(job) => job.client_token.as_deref(),
        };
        used == Some(token)
    }))
}

/// Records a new job for the worker; the account's jobs table is made with its first job.
pub(super) fn record_job<S: Storage>(cx: &mut Context<'_, S>, job: &Job) -> ApiResult<()> {
    let account = cx.principal.account_id.clone();
    let writes = [Write::Put {
        keyspace: jobs_keyspace(),
        key: job.key(),
        document: job.document(),
        expect: Expect::Absent,
        expires_at: job.due(),
    }];
    for _ in 0..2 {
        match cx.storage.ask(&account, Request::write(&writes)) {
            Ok(_) => return Ok(()),
            Err(Failure::Storage(StorageError::NoSuchKeyspace)) => {
                cx.storage.ask(&account, Request::create_table(JOBS_TABLE, b"{}", &[]))?;
            }
            Err(Failure::GuardFailed(_)) => return Err(ApiError::internal("a job of that ARN exists already")),
            Err(Failure::Storage(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("the jobs table could not be made"))
}

/// Forgets a job the request could not go on with (its table could not be made).
pub(super) fn forget_job<S: Storage>(cx: &mut Context<'_, S>, job: &Job) -> ApiResult<()> {
    let writes = [Write::Delete { keyspace: jobs_keyspace(), key: job.key(), expect: Expect::Anything }];
    match cx.storage.ask(&cx.principal.account_id, Request::write(&writes)) {
        Ok(_) => Ok(()),
        Err(Failure::GuardFailed(_)) => Ok(()),
        Err(Failure::Storage(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_api_pattern() {
        for good in ["ab", "my-bucket", "a.b_c-d", "B1"] {
            assert!(bucket_pattern(good), "{good}");
        }
        for bad in ["a", "-ab", "ab-", "a/b", "a b", ""] {
            assert!(!bucket_pattern(bad), "{bad}");
        }
    }
}
