//! `caap init`: a new connector's directory with a config, a key pair and a data directory, and (with
//! `--tls`) a self-signed TLS certificate for the DSP listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use caap_identity::{ParticipantKey, Secret, did_web_from_url};

use crate::clock::{Clock, SystemClock};
use crate::config::{
    ApiConfig, Config, DatabaseConfig, DspConfig, IdentityConfig, LimitsConfig, LogConfig,
    ParticipantConfig, TlsConfig,
};

/// Where `--tls` puts the certificate, relative to the directory.
pub const TLS_CERT_FILE: &str = "keys/tls.crt";
/// Where `--tls` puts the certificate's private key (mode 0600), relative to the directory.
pub const TLS_KEY_FILE: &str = "keys/tls.key";

/// What to create.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The directory (created if missing).
    pub dir: PathBuf,
    /// Display name.
    pub name: String,
    /// Public root URL, if known.
    pub public_url: Option<String>,
    /// DSP listener address.
    pub dsp_bind: SocketAddr,
    /// Management listener address.
    pub api_bind: SocketAddr,
    /// Overwrite an existing config and key.
    pub force: bool,
    /// Make a self-signed certificate and serve the DSP listener over HTTPS.
    pub tls: bool,
    /// Where state is kept (database, keys, files), if not `dir`: an absolute path, e.g. `/var/lib/caap`
    /// when the configuration lives in `/etc/caap` (the Debian package's layout).
    pub data_dir: Option<PathBuf>,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The config file.
    pub config_path: PathBuf,
    /// The private key file.
    pub key_path: PathBuf,
    /// The participant id, if it could be derived now.
    pub participant_id: Option<String>,
    /// The self-signed TLS certificate, with `tls`.
    pub tls_cert_path: Option<PathBuf>,
}

/// Why init failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Refusing to overwrite.
    #[error("{0} exists already; pass --force to replace it (the old key is lost)")]
    Exists(PathBuf),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// File system or crypto failure.
    #[error("{0}")]
    Io(String),
}

/// Writes `content` to `path` with `mode`: into a temporary file created with that mode (a private key
/// is never readable by others, not even for a moment), then renamed over `path` (a reader sees the old
/// file or the new one, never half of one).
fn write_file(path: &Path, content: &str, mode: u32) -> Result<(), InitError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| InitError::Io(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode given at creation is filtered by the umask; set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    file.write_all(content.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes a private file (keys, the config with its admin token): mode 0600, atomically.
pub fn write_private(path: &Path, content: &str) -> Result<(), InitError> {
    write_file(path, content, 0o600)
}

/// Creates the directory, `caap.toml`, `keys/participant.jwk` and `files/`.
pub fn init(opts: &InitOptions) -> Result<Initialized, InitError> {
    let config_path = opts.dir.join("caap.toml");
    if config_path.exists() && !opts.force {
        return Err(InitError::Exists(config_path));
    }
    let participant_id = match &opts.public_url {
        Some(u) => Some(
            did_web_from_url(u).map_err(|e| InitError::Invalid(format!("--public-url: {e}")))?,
        ),
        None => None,
    };
    if opts.tls
        && let Some(u) = &opts.public_url
        && !u.starts_with("https://")
    {
        return Err(InitError::Invalid(format!(
            "--public-url {u}: with --tls the DSP listener serves HTTPS; give an https:// URL"
        )));
    }
    let tls = if opts.tls {
        TlsConfig {
            cert_file: Some(PathBuf::from(TLS_CERT_FILE)),
            key_file: Some(PathBuf::from(TLS_KEY_FILE)),
            ca_files: Vec::new(),
        }
    } else {
        TlsConfig::default()
    };
    let config = Config {
        participant: ParticipantConfig {
            name: opts.name.clone(),
            public_url: opts.public_url.clone(),
            id: None,
        },
        dsp: DspConfig {
            bind: opts.dsp_bind,
            ..DspConfig::default()
        },
        api: ApiConfig {
            bind: opts.api_bind,
            admin_token: Secret::random_token(),
            oidc: None,
            workers: 0,
        },
        database: DatabaseConfig::default(),
        identity: IdentityConfig::default(),
        limits: LimitsConfig::default(),
        negotiation: Default::default(),
        source_credentials: Vec::new(),
        tls,
        simulator: Default::default(),
        authority: Default::default(),
        consent: Default::default(),
        federation: Default::default(),
        portal: Default::default(),
        log: LogConfig::default(),
        open_data: Default::default(),
        data_dir: opts.data_dir.clone().unwrap_or_else(|| PathBuf::from(".")),
    };
    let mut config_with_paths = config.clone();
    if let Some(d) = &opts.data_dir
        && !d.is_absolute()
    {
        return Err(InitError::Invalid(format!(
            "--data-dir {}: give an absolute path",
            d.display()
        )));
    }
    let state = opts.data_dir.clone().unwrap_or_else(|| opts.dir.clone());
    config_with_paths.data_dir = state.clone();
    let key_path = config_with_paths.key_path();
    // Without a public URL the DID is known only once the listener is bound; `caap serve` puts
    // the key under `<did>#key-1` then.
    let kid = match participant_id.as_deref() {
        Some(did) => format!("{did}#key-1"),
        None => "key-1".to_owned(),
    };
    let key = ParticipantKey::generate(&kid).map_err(|e| InitError::Io(e.to_string()))?;
    std::fs::create_dir_all(&opts.dir)
        .map_err(|e| InitError::Io(format!("cannot create {}: {e}", opts.dir.display())))?;
    std::fs::create_dir_all(state.join("files"))
        .map_err(|e| InitError::Io(format!("cannot create {}: {e}", state.display())))?;
    write_private(&key_path, &key.to_private_jwk_json())?;
    let tls_cert_path = if opts.tls {
        let hosts = crate::tls::default_hosts(opts.public_url.as_deref());
        let pair = crate::tls::self_signed(&hosts, SystemClock.now())
            .map_err(|e| InitError::Io(e.to_string()))?;
        let cert_path = state.join(TLS_CERT_FILE);
        write_private(&state.join(TLS_KEY_FILE), &pair.key_pem)?;
        write_file(&cert_path, &pair.cert_pem, 0o644)?;
        Some(cert_path)
    } else {
        None
    };
    let text = config.to_toml().map_err(|e| InitError::Io(e.to_string()))?;
    let header = "# caap connector configuration, written by `caap init`.\n\
                  # Every key is documented in README.md; CAAP_* environment variables override them.\n\
                  # This file holds the admin token: keep it private.\n\n";
    write_private(&config_path, &format!("{header}{text}"))?;
    Ok(Initialized {
        config_path,
        key_path,
        participant_id,
        tls_cert_path,
    })
}
