//! Where exports go and imports come from: a bucket as an [`ObjectStore`].
//!
//! - [`LocalDirectory`] (`--export-dir DIR`): bucket `b` is the directory `DIR/b/`. No symbolic link
//!   below `DIR` is followed: object_store's `LocalFileSystem` would follow one out of `DIR`, so
//!   every path is checked component by component first, and directories are made one at a time,
//!   each checked to be a directory and not a link.
//! - [`S3Endpoint`]: a bucket of an S3-compatible server, path-style addressing by default.
//!
//! Bucket names are held to S3's rules ([`check_bucket_name`]) and prefixes to relative paths
//! without `.` or `..` ([`parse_prefix`]), so neither can name anything outside its bucket.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Why a destination could not be had.
#[derive(Debug)]
pub enum DestinationError {
    InvalidBucketName(String),
    InvalidPrefix(String),
    /// The local directory or the bucket's directory is not a plain directory.
    Refused(String),
    Io(io::Error),
    Store(object_store::Error),
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationError::InvalidBucketName(reason) | DestinationError::InvalidPrefix(reason) => {
                f.write_str(reason)
            }
            DestinationError::Refused(reason) => write!(f, "refused: {reason}"),
            DestinationError::Io(e) => write!(f, "destination: {e}"),
            DestinationError::Store(e) => write!(f, "destination: {e}"),
        }
    }
}

impl std::error::Error for DestinationError {}

/// Checks S3's bucket naming rules: 3 to 63 lowercase letters, digits, dots and hyphens, starting
/// and ending with a letter or digit, no two dots together, not shaped like an IP address.
pub fn check_bucket_name(name: &str) -> Result<(), DestinationError> {
    let invalid = |why: &str| Err(DestinationError::InvalidBucketName(format!("bucket name {name:?} {why}")));
    if !(3..=63).contains(&name.len()) {
        return invalid("is not 3 to 63 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return invalid("has characters other than lowercase letters, digits, dots and hyphens");
    }
    let alphanumeric = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !alphanumeric(name.bytes().next()) || !alphanumeric(name.bytes().last()) {
        return invalid("does not start and end with a letter or digit");
    }
    if name.contains("..") {
        return invalid("has two dots together");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return invalid("is an IP address");
    }
    Ok(())
}

/// An S3 prefix as a path within the bucket: relative, no empty, `.` or `..` segments, no control
/// characters or backslashes. One trailing `/` is allowed (`2020-Nov/`) and dropped.
pub fn parse_prefix(prefix: &str) -> Result<Path, DestinationError> {
    let invalid = |why: &str| Err(DestinationError::InvalidPrefix(format!("prefix {prefix:?} {why}")));
    if prefix.starts_with('/') {
        return invalid("is absolute");
    }
    if prefix.contains('\\') {
        return invalid("has a backslash");
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() {
        return invalid("is empty");
    }
    if trimmed.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return invalid("has an empty, \".\" or \"..\" segment");
    }
    Path::parse(trimmed).or_else(|e| invalid(&format!("is not a valid key ({e})")))
}

/// Where exports go and imports come from.
#[derive(Clone, Debug)]
pub enum Destination {
    Local(LocalDirectory),
    S3(S3Endpoint),
}

impl Destination {
    /// The bucket `name`, checked against S3's naming rules.
    pub fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, DestinationError> {
        match self {
            Destination::Local(directory) => directory.bucket(name),
            Destination::S3(endpoint) => endpoint.bucket(name),
        }
    }
}

/// A directory whose subdirectories are buckets.
#[derive(Clone, Debug)]
pub struct LocalDirectory {
    root: PathBuf,
}

impl LocalDirectory {
    /// `dir`, which must exist; it may itself be reached through links, nothing below it may.
    pub fn new(dir: impl Into<PathBuf>) -> Result<LocalDirectory, DestinationError> {
        let dir = dir.into();
        let root = fs::canonicalize(&dir).map_err(DestinationError::Io)?;
        if !root.is_dir() {
            return Err(DestinationError::Refused(format!("{} is not a directory", dir.display())));
        }
        Ok(LocalDirectory { root })
    }

    /// The bucket `name` as `DIR/name/`, made if missing.
    pub fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, DestinationError> {
        check_bucket_name(name)?;
        let dir = self.root.join(name);
        let refused = |e: io::Error| DestinationError::Refused(format!("bucket directory {}: {e}", dir.display()));
        ensure_directory(&dir).map_err(refused)?;
        guarded(dir)
    }

    /// The subdirectory `name` (one path segment of letters, digits, `-` and `_`), made if missing,
    /// as a directory of buckets of its own: an account's, so that accounts do not share buckets.
    pub fn within(&self, name: &str) -> Result<LocalDirectory, DestinationError> {
        let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !plain {
            return Err(DestinationError::Refused(format!("{name:?} is not a plain directory name")));
        }
        let root = self.root.join(name);
        ensure_directory(&root).map_err(|e| DestinationError::Refused(format!("{}: {e}", root.display())))?;
        Ok(LocalDirectory { root })
    }

    /// The directory itself as one bucket (`dynabox export TABLE DIR`), kept as safe as a bucket.
    pub fn whole(&self) -> Result<Arc<dyn ObjectStore>, DestinationError> {
        guarded(self.root.clone())
    }
}

/// The directory `dir` as a bucket that follows no symbolic link below it.
fn guarded(dir: PathBuf) -> Result<Arc<dyn ObjectStore>, DestinationError> {
    let store = LocalFileSystem::new_with_prefix(&dir).map_err(DestinationError::Store)?;
    Ok(Arc::new(LocalBucket { guard: Guard { store: Arc::new(store), root: dir } }))
}

/// Makes `dir` if it is missing; fails if it is (or has become) anything but a directory,
/// a link to one included.
fn ensure_directory(dir: &std::path::Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let kind = fs::symlink_metadata(dir)?.file_type();
    if kind.is_symlink() {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "is a symbolic link"));
    }
    if !kind.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotADirectory, "is not a directory"));
    }
    Ok(())
}

/// A bucket's directory, with every path checked before `LocalFileSystem` touches it.
#[derive(Debug)]
struct LocalBucket {
    guard: Guard,
}

#[derive(Clone, Debug)]
struct Guard {
    store: Arc<LocalFileSystem>,
    root: PathBuf,
}

impl Guard {
    /// Refuses `location` if it leads through (or is) a symbolic link, or out of the bucket's
    /// directory; with `make_parents`, makes its missing directories, safely.
    fn check(&self, location: &Path, make_parents: bool) -> object_store::Result<()> {
        let refused =
            |why: String| object_store::Error::PermissionDenied { path: location.to_string(), source: why.into() };
        let full = self.store.path_to_filesystem(location)?;
        let relative = full.strip_prefix(&self.root).map_err(|_| refused("outside the bucket's directory".into()))?;
        let parts: Vec<_> = relative.components().collect();
        let mut at = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            let Component::Normal(part) = part else {
                return Err(refused(format!("{part:?} in a path")));
            };
            at.push(part);
            let parent = i + 1 < parts.len();
            match fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(refused(format!("{} is a symbolic link", at.display())));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && make_parents && parent => {
                    ensure_directory(&at).map_err(|e| refused(format!("{}: {e}", at.display())))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(refused(format!("{}: {e}", at.display()))),
            }
        }
        Ok(())
    }

    /// A listed object, if its path is safe to hand on.
    fn listed(&self, meta: object_store::Result<ObjectMeta>) -> object_store::Result<ObjectMeta> {
        meta.and_then(|meta| self.check(&meta.location, false).map(|()| meta))
    }
}

impl fmt::Display for LocalBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalBucket({})", self.guard.root.display())
    }
}

#[async_trait]
impl ObjectStore for LocalBucket {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.guard.check(location, true)?;
        self.guard.store.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.guard.check(location, true)?;
        self.guard.store.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.guard.check(location, false)?;
        self.guard.store.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let guard = self.guard.clone();
        let checked = locations.map(move |location| location.and_then(|l| guard.check(&l, false).map(|()| l)));
        self.guard.store.delete_stream(checked.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let guard = self.guard.clone();
        self.guard.store.list(prefix).map(move |meta| guard.listed(meta)).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        if let Some(prefix) = prefix {
            self.guard.check(prefix, false)?;
        }
        let listed = self.guard.store.list_with_delimiter(prefix).await?;
        for location in listed.common_prefixes.iter().chain(listed.objects.iter().map(|meta| &meta.location)) {
            self.guard.check(location, false)?;
        }
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.guard.check(from, false)?;
        self.guard.check(to, true)?;
        self.guard.store.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.guard.check(from, false)?;
        self.guard.check(to, true)?;
        self.guard.store.rename_opts(from, to, options).await
    }
}

/// An S3-compatible server and the credentials for it.
#[derive(Clone, Debug)]
pub struct S3Endpoint {
    /// `https://s3.us-east-1.amazonaws.com`, or `http://127.0.0.1:9000` for a local server.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `bucket.host/key` rather than `host/bucket/key`; local servers mostly want path style.
    pub virtual_hosted_style: bool,
}

impl S3Endpoint {
    /// The bucket `name` on this server (nothing is asked of it until the store is used).
    pub fn bucket(&self, name: &str) -> Result<Arc<dyn ObjectStore>, DestinationError> {
        check_bucket_name(name)?;
        let store = AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(self.endpoint.starts_with("http://"))
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_virtual_hosted_style_request(self.virtual_hosted_style)
            .with_bucket_name(name)
            .build()
            .map_err(DestinationError::Store)?;
        Ok(Arc::new(store))
    }
}

/// An object's bytes as a blocking [`Read`], streamed as they are read (never held whole), to hand
/// to [`ItemReader`](crate::import::ItemReader). Read it from a blocking thread
/// (`tokio::task::spawn_blocking`), not from the runtime's own.
pub async fn open(store: &dyn ObjectStore, location: &Path) -> Result<impl Read + Send + 'static, DestinationError> {
    let object = store.get(location).await.map_err(DestinationError::Store)?;
    let bytes: BoxStream<'static, io::Result<Bytes>> = object.into_stream().map_err(io::Error::other).boxed();
    Ok(SyncIoBridge::new(StreamReader::new(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_within_is_a_plain_directory_below() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalDirectory::new(dir.path()).unwrap();
        let within = local.within("123456789012").unwrap();
        within.bucket("exports").unwrap();
        assert!(dir.path().join("123456789012/exports").is_dir());
        for bad in ["", "..", "a/b", ".", "a b"] {
            assert!(local.within(bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        assert!(local.within("link").is_err(), "a symbolic link is not followed");
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.2024", &"a".repeat(63), "1bucket"] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "a_b",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "192.168.5.4",
            "a/b",
            "..",
            "a b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_stay_inside_the_bucket() {
        for (good, path) in [("exports", "exports"), ("2020-Nov/", "2020-Nov"), ("a/b/c", "a/b/c"), ("é ü", "é ü")]
        {
            assert_eq!(parse_prefix(good).map(|p| p.to_string()).ok().as_deref(), Some(path), "{good}");
        }
        for bad in ["", "/", "/abs", "a/../b", "..", "a/./b", ".", "a//b", "a\\b", "a/\u{0}", "../x"] {
            assert!(parse_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
