//! HTTPS with openssl: the DSP listener's certificate and key (`[tls] cert_file`, `key_file`), the
//! extra trust roots every outbound request accepts (`[tls] ca_files`, read by [`crate::outbound`]), and the
//! self-signed pair `caap init --tls` makes for local use.
//!
//! Every error names the configuration key and the file, and says what to do.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslMethod};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};

use crate::config::Config;

/// How long a certificate made by `caap init --tls` is valid.
pub const SELF_SIGNED_DAYS: i64 = 825;

/// A TLS set-up problem, naming the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A configured file cannot be read.
    #[error(
        "{key} = {path}: cannot read it: {source}; fix the path (relative paths are under data_dir) or run `caap init --tls`"
    )]
    Read {
        /// The config key, e.g. `tls.cert_file`.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what the key needs.
    #[error("{key} = {path}: {message}")]
    Invalid {
        /// The config key.
        key: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Making a certificate failed.
    #[error("cannot make a TLS certificate: {0}")]
    Generate(String),
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })
}

fn invalid(key: &str, path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        key: key.to_owned(),
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Reads every certificate of a PEM file (at least one).
fn certificates(key: &str, path: &Path) -> Result<Vec<X509>, TlsError> {
    let pem = read(key, path)?;
    let certs = X509::stack_from_pem(&pem)
        .map_err(|e| invalid(key, path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            path,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The DSP listener's TLS acceptor, when `[tls] cert_file` and `key_file` are set.
pub fn acceptor(config: &Config) -> Result<Option<SslAcceptorBuilder>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&config.tls.cert_file, &config.tls.key_file) else {
        return Ok(None);
    };
    let cert_path = config.data_path(cert_file);
    let key_path = config.data_path(key_file);
    let mut chain = certificates("tls.cert_file", &cert_path)?.into_iter();
    let leaf = chain
        .next()
        .ok_or_else(|| invalid("tls.cert_file", &cert_path, "holds no certificate"))?;
    let key_pem = read("tls.key_file", &key_path)?;
    let key = PKey::private_key_from_pem(&key_pem).map_err(|e| {
        invalid(
            "tls.key_file",
            &key_path,
            format!("not a PEM private key ({e})"),
        )
    })?;
    let mismatch = leaf
        .public_key()
        .map(|public| !public.public_eq(&key))
        .unwrap_or(true);
    if mismatch {
        return Err(invalid(
            "tls.key_file",
            &key_path,
            format!(
                "does not belong to the certificate in tls.cert_file ({}); use the key the certificate was made for",
                cert_path.display()
            ),
        ));
    }
    let setup = |e: openssl::error::ErrorStack| invalid("tls.cert_file", &cert_path, e);
    let mut builder =
        SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(setup)?;
    builder.set_private_key(&key).map_err(setup)?;
    builder.set_certificate(&leaf).map_err(setup)?;
    for intermediate in chain {
        builder.add_extra_chain_cert(intermediate).map_err(setup)?;
    }
    builder.check_private_key().map_err(|e| {
        invalid(
            "tls.key_file",
            &key_path,
            format!("does not match tls.cert_file ({e})"),
        )
    })?;
    Ok(Some(builder))
}

/// The extra trust roots of `[tls] ca_files`, for the outbound HTTP client.
pub fn trust_roots(config: &Config) -> Result<Vec<native_tls::Certificate>, TlsError> {
    let mut roots = Vec::new();
    for (i, file) in config.tls.ca_files.iter().enumerate() {
        let key = format!("tls.ca_files[{i}]");
        let path = config.data_path(file);
        for cert in certificates(&key, &path)? {
            let der = cert.to_der().map_err(|e| invalid(&key, &path, e))?;
            roots.push(
                native_tls::Certificate::from_der(&der).map_err(|e| invalid(&key, &path, e))?,
            );
        }
    }
    Ok(roots)
}

/// A self-signed certificate and its key, both PEM.
#[derive(Clone)]
pub struct SelfSigned {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// Makes a self-signed P-256 certificate for `hosts` (DNS names or IP addresses), valid from `now`
/// for [`SELF_SIGNED_DAYS`] days. The first host is the subject's common name.
pub fn self_signed(hosts: &[String], now: DateTime<Utc>) -> Result<SelfSigned, TlsError> {
    let fail = |e: openssl::error::ErrorStack| TlsError::Generate(e.to_string());
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(fail)?;
    let ec = EcKey::generate(&group).map_err(fail)?;
    let key: PKey<Private> = PKey::from_ec_key(ec).map_err(fail)?;

    let mut name = X509NameBuilder::new().map_err(fail)?;
    let cn = hosts.first().map(String::as_str).unwrap_or("localhost");
    name.append_entry_by_nid(Nid::COMMONNAME, cn)
        .map_err(fail)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "caap (self-signed)")
        .map_err(fail)?;
    // A subject of its own: several self-signed certificates (one per connector) can then be trusted side
    // by side in `tls.ca_files` without openssl taking one for another.
    name.append_entry_by_nid(
        Nid::ORGANIZATIONALUNITNAME,
        &format!("connector {}", uuid::Uuid::new_v4().simple()),
    )
    .map_err(fail)?;
    let name = name.build();

    let mut builder = X509::builder().map_err(fail)?;
    builder.set_version(2).map_err(fail)?;
    let mut serial = BigNum::new().map_err(fail)?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(fail)?;
    let serial: Asn1Integer = serial.to_asn1_integer().map_err(fail)?;
    builder.set_serial_number(&serial).map_err(fail)?;
    builder.set_subject_name(&name).map_err(fail)?;
    builder.set_issuer_name(&name).map_err(fail)?;
    builder.set_pubkey(&key).map_err(fail)?;
    let not_before = Asn1Time::from_unix(now.timestamp() - 60).map_err(fail)?;
    let not_after =
        Asn1Time::from_unix(now.timestamp() + SELF_SIGNED_DAYS * 86_400).map_err(fail)?;
    builder.set_not_before(&not_before).map_err(fail)?;
    builder.set_not_after(&not_after).map_err(fail)?;
    builder
        .append_extension(BasicConstraints::new().critical().build().map_err(fail)?)
        .map_err(fail)?;
    builder
        .append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .build()
                .map_err(fail)?,
        )
        .map_err(fail)?;
    let mut san = SubjectAlternativeName::new();
    let mut seen = std::collections::BTreeSet::new();
    for host in hosts {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || !seen.insert(host.to_owned()) {
            continue;
        }
        if host.parse::<std::net::IpAddr>().is_ok() {
            san.ip(host);
        } else {
            san.dns(host);
        }
    }
    let ctx = builder.x509v3_context(None, None);
    let san = san.build(&ctx).map_err(fail)?;
    let ski = SubjectKeyIdentifier::new().build(&ctx).map_err(fail)?;
    builder.append_extension(san).map_err(fail)?;
    builder.append_extension(ski).map_err(fail)?;
    builder.sign(&key, MessageDigest::sha256()).map_err(fail)?;
    let cert = builder.build();

    let cert_pem = String::from_utf8(cert.to_pem().map_err(fail)?)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let key_pem = String::from_utf8(key.private_key_to_pem_pkcs8().map_err(fail)?)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(SelfSigned { cert_pem, key_pem })
}

/// The hosts a self-signed certificate is made for: `localhost`, `127.0.0.1` and the public URL's
/// host.
pub fn default_hosts(public_url: Option<&str>) -> Vec<String> {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Some(host) = public_url
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn config_in(dir: &Path, tls: &str) -> Config {
        let text = format!(
            "[participant]\nname = \"T\"\n[api]\nadmin_token = \"0123456789abcdef0123\"\n{tls}"
        );
        let mut c = Config::parse(&text, "t.toml", std::iter::empty()).unwrap();
        c.data_dir = dir.to_owned();
        c
    }

    fn write_pair(dir: &Path, name: &str) {
        let pair = self_signed(
            &default_hosts(Some("https://caap.lund.se")),
            crate::clock::SystemClock.now(),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), &pair.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), &pair.key_pem).unwrap();
    }

    #[test]
    fn self_signed_pair_has_the_hosts_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "a");
        let cert = X509::from_pem(&std::fs::read(dir.path().join("a.crt")).unwrap()).unwrap();
        let sans: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|n| {
                n.dnsname()
                    .map(str::to_owned)
                    .or_else(|| n.ipaddress().map(|ip| format!("{ip:?}")))
                    .unwrap()
            })
            .collect();
        assert!(sans.contains(&"localhost".to_owned()), "{sans:?}");
        assert!(sans.contains(&"caap.lund.se".to_owned()), "{sans:?}");
        assert!(sans.contains(&"[127, 0, 0, 1]".to_owned()), "{sans:?}");
        let c = config_in(
            dir.path(),
            "[tls]\ncert_file = \"a.crt\"\nkey_file = \"a.key\"\nca_files = [\"a.crt\"]\n",
        );
        assert!(acceptor(&c).unwrap().is_some());
        assert_eq!(trust_roots(&c).unwrap().len(), 1);
        assert!(acceptor(&config_in(dir.path(), "")).unwrap().is_none());
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "a");
        write_pair(dir.path(), "b");
        let err = |tls: &str| {
            acceptor(&config_in(dir.path(), tls))
                .map(|_| ())
                .and_then(|()| trust_roots(&config_in(dir.path(), tls)).map(|_| ()))
                .unwrap_err()
                .to_string()
        };
        let e = err("[tls]\ncert_file = \"missing.crt\"\nkey_file = \"a.key\"\n");
        assert!(
            e.contains("tls.cert_file") && e.contains("missing.crt"),
            "{e}"
        );
        let e = err("[tls]\ncert_file = \"a.crt\"\nkey_file = \"b.key\"\n");
        assert!(
            e.contains("tls.key_file") && e.contains("does not belong"),
            "{e}"
        );
        let e = err("[tls]\ncert_file = \"a.key\"\nkey_file = \"a.key\"\n");
        assert!(
            e.contains("tls.cert_file") && e.contains("no certificate"),
            "{e}"
        );
        let e = err("[tls]\ncert_file = \"a.crt\"\nkey_file = \"a.crt\"\n");
        assert!(
            e.contains("tls.key_file") && e.contains("private key"),
            "{e}"
        );
        let e = err("[tls]\nca_files = [\"a.crt\", \"nope.pem\"]\n");
        assert!(e.contains("tls.ca_files[1]"), "{e}");
    }
}
