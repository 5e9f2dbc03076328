//! TLS for the server, on rustls (aws-lc-rs): the certificate chain and key come from PEM files and are
//! read again when the files change (looked at every few seconds) or on SIGHUP, so a renewed
//! certificate is served without a restart; a pair that does not load leaves the served one in
//! place. For local use, a self-signed certificate is made once and kept.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are compared with what was last read from them.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The PEM files of a certificate chain (the server's certificate first) and its private key.
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The files' contents, or why they could not be read.
type Reading = Result<(Vec<u8>, Vec<u8>), String>;

/// The certificate served at each handshake, and the files it came from.
#[derive(Debug)]
pub struct Certificates {
    files: CertificateFiles,
    provider: Arc<CryptoProvider>,
    serving: RwLock<Arc<CertifiedKey>>,
    /// The last reading of the files, good or bad: a pair is loaded, or its fault reported, once
    /// per change, not at every look.
    last_read: Mutex<Reading>,
}

impl Certificates {
    /// Loads the files; at start a pair that does not load is an error.
    pub fn load(files: CertificateFiles) -> anyhow::Result<Arc<Certificates>> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (cert, key) = read(&files).map_err(anyhow::Error::msg)?;
        let certified = certified_key(&cert, &key, &provider)
            .with_context(|| format!("loading {} and {}", files.cert.display(), files.key.display()))?;
        Ok(Arc::new(Certificates {
            files,
            provider,
            serving: RwLock::new(Arc::new(certified)),
            last_read: Mutex::new(Ok((cert, key))),
        }))
    }

    /// A server configuration that presents whichever certificate is current at each handshake,
    /// and offers HTTP/2 to clients that ask for it (ALPN).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reads the files and serves the pair they hold, when it differs from the last reading (or
    /// always, when `forced`). A pair that does not load keeps the served one, and says why.
    pub fn reload(&self, forced: bool) {
        let reading = read(&self.files);
        let mut last_read = self.last_read.lock().expect("never poisoned");
        if !forced && *last_read == reading {
            return;
        }
        let loaded = match &reading {
            Ok((cert, key)) => certified_key(cert, key, &self.provider).map_err(|e| format!("{e:#}")),
            Err(why) => Err(why.clone()),
        };
        *last_read = reading;
        match loaded {
            Ok(certified) => {
                *self.serving.write().expect("never poisoned") = Arc::new(certified);
                tracing::info!("TLS certificate loaded again from {}", self.files.cert.display());
            }
            Err(why) => tracing::warn!("TLS certificate not reloaded, the previous one is still served: {why}"),
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.serving.read().expect("never poisoned").clone())
    }
}

/// Looks at the files every few seconds and on SIGHUP, until dropped.
pub async fn watch(certificates: Arc<Certificates>) {
    let mut hangup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("SIGHUP handler installs");
    let mut looks = tokio::time::interval_at(tokio::time::Instant::now() + CHECK_EVERY, CHECK_EVERY);
    looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = looks.tick() => false,
            _ = hangup.recv() => true,
        };
        let certificates = certificates.clone();
        // File reads block; a stalled network file system must not hold a request thread.
        let _ = tokio::task::spawn_blocking(move || certificates.reload(forced)).await;
    }
}

fn read(files: &CertificateFiles) -> Reading {
    let read_one = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()));
    Ok((read_one(&files.cert)?, read_one(&files.key)?))
}

fn certified_key(cert: &[u8], key: &[u8], provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .context("the certificate file is not PEM")?;
    ensure!(!chain.is_empty(), "the certificate file holds no certificate");
    let key = PrivateKeyDer::from_pem_slice(key).context("the key file holds no private key (PEM)")?;
    CertifiedKey::from_der(chain, key, provider).context("the key does not go with the certificate")
}

/// Where `--tls-self-signed` keeps its pair when no paths are given: `tls/` beside the default key
/// file (`~/.config/dynabox/`), so one certificate serves every store and stays trusted.
pub fn default_self_signed_files() -> Option<CertificateFiles> {
    let dir = crate::accounts::default_key_file()?.parent()?.join("tls");
    Some(CertificateFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") })
}

/// Makes a self-signed certificate for `names` (host names and IP addresses) at `files`, unless
/// both files exist already; whether it made one.
pub fn make_self_signed(files: &CertificateFiles, names: Vec<String>) -> anyhow::Result<bool> {
    match (files.cert.exists(), files.key.exists()) {
        (true, true) => return Ok(false),
        (false, false) => {}
        _ => bail!(
            "only one of {} and {} exists: remove it to have a new pair made",
            files.cert.display(),
            files.key.display()
        ),
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "dynabox local");
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    crate::accounts::write_private(&files.key, &key.serialize_pem())
        .with_context(|| format!("writing {}", files.key.display()))?;
    std::fs::write(&files.cert, cert.pem()).with_context(|| format!("writing {}", files.cert.display()))?;
    Ok(true)
}
