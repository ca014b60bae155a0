//! User-created objects (`-object`, QMP `object-add`/`object-del`): the TLS
//! credentials and authorization lists socket chardevs use.
//!
//! - `tls-creds-x509`: QEMU's files in `dir` (`ca-cert.pem`, and
//!   `server-cert.pem`/`server-key.pem` for a server, optionally
//!   `client-cert.pem`/`client-key.pem` for a client, optionally
//!   `ca-crl.pem`), `endpoint`, `verify-peer` (default on). Built into
//!   rustls configurations once, when the object is created; a chardev keeps
//!   what it took, so deleting the object later does not affect it (as in QEMU).
//! - `authz-simple` (`identity`), `authz-list` (`policy`, `rules` of `match`,
//!   `policy` and `format` exact or glob; default deny), `authz-listfile`
//!   (the same in a JSON file, read again at each check when `refresh`): they
//!   check a TLS client certificate's distinguished name, looked up by id at
//!   each handshake (as in QEMU).
//! - `tls-creds-anon`, `tls-creds-psk` (rustls has neither anonymous nor PSK
//!   ciphers) and `authz-pam` are refused as a QEMU built without them
//!   refuses them: `invalid object type: ...`.
use crate::os_error::OsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Why an object could not be created or deleted (QEMU's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// A type this build does not have.
    #[error("invalid object type: {0}")]
    InvalidType(String),
    /// An id in use.
    #[error("attempt to add duplicate property '{0}' to object (type 'container')")]
    Duplicate(String),
    /// An id that is not an identifier.
    #[error("Parameter 'id' expects an identifier")]
    BadId,
    /// `object-del` of an unknown id.
    #[error("object '{0}' not found")]
    NotFound(String),
    /// A credentials file that cannot be read.
    #[error("Unable to access credentials {path}: {source}")]
    Access {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// `dir` missing.
    #[error("Missing 'dir' property value")]
    MissingDir,
    /// A CA file that holds no certificate.
    #[error("Unable to import CA certificate list {0}")]
    BadCa(String),
    /// A certificate and key that do not load.
    #[error("Cannot load certificate '{cert}' & key '{key}': {why}")]
    BadCert {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// The parser's or the OS's words.
        why: String,
    },
    /// A CRL that does not load.
    #[error("Cannot load CRL '{path}': {why}")]
    BadCrl {
        /// The file.
        path: String,
        /// The parser's or the OS's words.
        why: String,
    },
    /// `passwordid` names a secret (chardevd has no secret objects).
    #[error("No secret with id '{0}'")]
    NoSecret(String),
    /// An authz-listfile that cannot be read or parsed.
    #[error("Unable to read '{path}': {why}")]
    ListFile {
        /// The file.
        path: String,
        /// The parser's or the OS's words.
        why: String,
    },
    /// A property value of the wrong form (from the command line).
    #[error("{0}")]
    Property(String),
}

/// Which end of a TLS session credentials are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// A client (connects).
    #[default]
    Client,
    /// A server (accepts).
    Server,
}

/// Built TLS credentials.
#[derive(Debug)]
pub struct TlsCreds {
    /// Which end.
    pub endpoint: Endpoint,
    /// Whether the peer's certificate is checked (and `tls-authz` applies).
    pub verify_peer: bool,
    /// For a server.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// For a client.
    pub client: Option<Arc<rustls::ClientConfig>>,
}

/// How an authz-list rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The whole identity.
    #[default]
    Exact,
    /// `*` and `?` wildcards (GLib's `g_pattern_match_simple`).
    Glob,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Deny (the default).
    #[default]
    Deny,
    /// Allow the identity.
    Allow,
}

/// One authz-list rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    /// What to match.
    #[serde(rename = "match")]
    pub pattern: String,
    /// What a match decides.
    pub policy: Policy,
    /// How to match.
    #[serde(default)]
    pub format: Format,
}

/// An authz-list's content.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct List {
    /// When no rule matches.
    #[serde(default)]
    pub policy: Policy,
    /// Rules, first match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl List {
    /// Whether `identity` is allowed.
    pub fn allows(&self, identity: &str) -> bool {
        for r in &self.rules {
            let hit = match r.format {
                Format::Exact => r.pattern == identity,
                Format::Glob => glob(r.pattern.as_bytes(), identity.as_bytes()),
            };
            if hit {
                return r.policy == Policy::Allow;
            }
        }
        self.policy == Policy::Allow
    }
}

/// GLib's `g_pattern_match_simple`: `*` matches any run, `?` any one character.
pub fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// An authorization object.
#[derive(Debug)]
pub enum Authz {
    /// One identity allowed.
    Simple(String),
    /// Rules.
    List(List),
    /// Rules in a file.
    ListFile {
        /// The file.
        filename: String,
        /// Read again at each check.
        refresh: bool,
        /// The rules read at creation.
        loaded: List,
    },
}

fn read_list(path: &str) -> Result<List, ObjectError> {
    let text = std::fs::read_to_string(path).map_err(|e| ObjectError::ListFile {
        path: path.to_owned(),
        why: OsError::from(e).to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| ObjectError::ListFile {
        path: path.to_owned(),
        why: e.to_string(),
    })
}

impl Authz {
    /// Whether `identity` (a certificate's distinguished name) is allowed.
    pub fn allows(&self, identity: &str) -> bool {
        match self {
            Authz::Simple(id) => id == identity,
            Authz::List(l) => l.allows(identity),
            Authz::ListFile {
                filename,
                refresh,
                loaded,
            } => match refresh.then(|| read_list(filename)) {
                Some(Ok(fresh)) => fresh.allows(identity),
                Some(Err(e)) => {
                    tracing::warn!(cause = %e, "authz list file unreadable; denying");
                    false
                }
                None => loaded.allows(identity),
            },
        }
    }
}

/// An object.
#[derive(Debug, Clone)]
pub enum Object {
    /// TLS credentials.
    TlsCreds(Arc<TlsCreds>),
    /// An authorization check.
    Authz(Arc<Authz>),
}

/// The objects of one system. Cheap to share.
#[derive(Debug, Default)]
pub struct Objects {
    map: RwLock<HashMap<String, Object>>,
}

/// The properties of `tls-creds-x509`: QEMU's x509 credentials in a
/// directory (`ca-cert.pem`, `server-cert.pem`, `server-key.pem`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct X509Props {
    /// Check the peer's certificate (default on); `tls-authz` applies only then.
    #[serde(default)]
    pub verify_peer: Option<bool>,
    /// The directory of QEMU's files (`ca-cert.pem`, `server-cert.pem`, ...).
    #[serde(default)]
    pub dir: Option<String>,
    /// Which end (default client).
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// A secret for the key (chardevd has no secret objects: refused).
    #[serde(default)]
    pub passwordid: Option<String>,
}

/// What `object-add` creates: QEMU's `ObjectOptions`, the types chardevd has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectProps {
    /// `tls-creds-x509`: certificates and keys in a directory.
    TlsCredsX509(X509Props),
    /// `authz-simple`: one identity allowed.
    AuthzSimple {
        /// The identity (a certificate's distinguished name).
        identity: String,
    },
    /// `authz-list`: rules, first match wins.
    AuthzList(List),
    /// `authz-listfile`: the rules in a JSON file.
    AuthzListFile {
        /// The JSON file of the rules (`{"policy": ..., "rules": [...]}`).
        filename: String,
        /// Read it again at each check (default on).
        refresh: Option<bool>,
    },
    /// A QEMU type this build lacks (`tls-creds-anon`, `tls-creds-psk`,
    /// `authz-pam`): refused when created, as a QEMU built without it.
    Unsupported(String),
}

#[derive(Debug, Deserialize)]
struct SimpleProps {
    identity: String,
}

#[derive(Debug, Deserialize)]
struct ListFileProps {
    filename: String,
    #[serde(default)]
    refresh: Option<bool>,
}

fn props<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, ObjectError> {
    serde_json::from_value(v.clone()).map_err(|e| ObjectError::Property(e.to_string()))
}

impl ObjectProps {
    /// From `qom-type` and the other members (QMP's checked arguments, or
    /// `-object`'s properties).
    pub fn from_json(qom_type: &str, v: &serde_json::Value) -> Result<ObjectProps, ObjectError> {
        Ok(match qom_type {
            "tls-creds-x509" => ObjectProps::TlsCredsX509(props(v)?),
            "authz-simple" => ObjectProps::AuthzSimple {
                identity: props::<SimpleProps>(v)?.identity,
            },
            "authz-list" => ObjectProps::AuthzList(props(v)?),
            "authz-listfile" => {
                let p: ListFileProps = props(v)?;
                ObjectProps::AuthzListFile {
                    filename: p.filename,
                    refresh: p.refresh,
                }
            }
            other => ObjectProps::Unsupported(other.to_owned()),
        })
    }

    /// The `qom-type` QEMU names this object type with.
    pub fn qom_type(&self) -> &str {
        match self {
            ObjectProps::TlsCredsX509(_) => "tls-creds-x509",
            ObjectProps::AuthzSimple { .. } => "authz-simple",
            ObjectProps::AuthzList(_) => "authz-list",
            ObjectProps::AuthzListFile { .. } => "authz-listfile",
            ObjectProps::Unsupported(t) => t,
        }
    }
}

impl Objects {
    /// A new, empty set.
    pub fn new() -> Arc<Objects> {
        Arc::new(Objects::default())
    }

    /// `object-add`, checked in QEMU's order (the id, then the type, then
    /// what the type reads).
    pub fn add(&self, id: &str, object: ObjectProps) -> Result<(), ObjectError> {
        if !crate::options::id_wellformed(id) {
            return Err(ObjectError::BadId);
        }
        if self.get(id).is_some() {
            return Err(ObjectError::Duplicate(id.to_owned()));
        }
        let qom_type = object.qom_type().to_owned();
        let obj = match object {
            ObjectProps::TlsCredsX509(p) => Object::TlsCreds(Arc::new(x509(p)?)),
            ObjectProps::AuthzSimple { identity } => Object::Authz(Arc::new(Authz::Simple(identity))),
            ObjectProps::AuthzList(l) => Object::Authz(Arc::new(Authz::List(l))),
            ObjectProps::AuthzListFile { filename, refresh } => {
                let loaded = read_list(&filename)?;
                Object::Authz(Arc::new(Authz::ListFile {
                    filename,
                    refresh: refresh.unwrap_or(true),
                    loaded,
                }))
            }
            ObjectProps::Unsupported(other) => return Err(ObjectError::InvalidType(other)),
        };
        let mut map = match self.map.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.contains_key(id) {
            return Err(ObjectError::Duplicate(id.to_owned()));
        }
        map.insert(id.to_owned(), obj);
        tracing::info!(object = id, qom_type = %qom_type, "object added");
        Ok(())
    }

    /// `object-del`.
    pub fn del(&self, id: &str) -> Result<(), ObjectError> {
        let mut map = match self.map.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(id)
            .map(|_| ())
            .ok_or_else(|| ObjectError::NotFound(id.to_owned()))
    }

    /// An object.
    pub fn get(&self, id: &str) -> Option<Object> {
        let map = match self.map.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.get(id).cloned()
    }
}

/// The rustls provider every credential is built with: *ring* (no C build).
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange; the
/// peers of a console socket (QEMU's GnuTLS, openssl, browsers) all speak
/// the classic groups it has, and the alternative (aws-lc-rs) needs a C and
/// CMake build in every embedder. Allowed here, once, so no embedder's build
/// warns.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A file QEMU requires, in its order of checks.
fn require(dir: &str, name: &str) -> Result<String, ObjectError> {
    let path = format!("{dir}/{name}");
    std::fs::metadata(&path)
        .and_then(|_| std::fs::File::open(&path).map(|_| ()))
        .map_err(|e| ObjectError::Access {
            path: path.clone(),
            source: e.into(),
        })?;
    Ok(path)
}

fn optional(dir: &str, name: &str) -> Option<String> {
    let path = format!("{dir}/{name}");
    std::path::Path::new(&path).exists().then_some(path)
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect();
    let v = v.map_err(|e| e.to_string())?;
    if v.is_empty() {
        return Err("no certificate found".into());
    }
    Ok(v)
}

fn load_pair(cert: &str, key: &str) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ObjectError> {
    let bad = |why: String| ObjectError::BadCert {
        cert: cert.to_owned(),
        key: key.to_owned(),
        why,
    };
    let chain = certs(cert).map_err(bad)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(e.to_string()))?;
    Ok((chain, key))
}

fn roots(path: &str) -> Result<rustls::RootCertStore, ObjectError> {
    let mut store = rustls::RootCertStore::empty();
    let list = certs(path).map_err(|_| ObjectError::BadCa(path.to_owned()))?;
    for c in list {
        store.add(c).map_err(|_| ObjectError::BadCa(path.to_owned()))?;
    }
    Ok(store)
}

fn crls(dir: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, ObjectError> {
    let Some(path) = optional(dir, "ca-crl.pem") else {
        return Ok(Vec::new());
    };
    let bad = |why: String| ObjectError::BadCrl {
        path: path.clone(),
        why,
    };
    let v: Result<Vec<_>, _> = CertificateRevocationListDer::pem_file_iter(&path)
        .map_err(|e| bad(e.to_string()))?
        .collect();
    v.map_err(|e| bad(e.to_string()))
}

fn x509(p: X509Props) -> Result<TlsCreds, ObjectError> {
    if let Some(secret) = p.passwordid {
        return Err(ObjectError::NoSecret(secret));
    }
    let dir = p.dir.ok_or(ObjectError::MissingDir)?;
    let endpoint = p.endpoint.unwrap_or_default();
    let verify_peer = p.verify_peer.unwrap_or(true);
    let ca = require(&dir, "ca-cert.pem")?;
    let tls_err = |e: rustls::Error| ObjectError::Property(e.to_string());
    match endpoint {
        Endpoint::Server => {
            let cert = require(&dir, "server-cert.pem")?;
            let key = require(&dir, "server-key.pem")?;
            let roots = Arc::new(roots(&ca)?);
            let crls = crls(&dir)?;
            let (chain, key) = load_pair(&cert, &key)?;
            let builder = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err)?;
            let builder = if verify_peer {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .with_crls(crls)
                    .build()
                    .map_err(|e| ObjectError::Property(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_no_client_auth()
            };
            let config = builder.with_single_cert(chain, key).map_err(|e| ObjectError::BadCert {
                cert: cert.clone(),
                key: format!("{dir}/server-key.pem"),
                why: e.to_string(),
            })?;
            Ok(TlsCreds {
                endpoint,
                verify_peer,
                server: Some(Arc::new(config)),
                client: None,
            })
        }
        Endpoint::Client => {
            let roots = Arc::new(roots(&ca)?);
            let crls = crls(&dir)?;
            let builder = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(tls_err)?;
            let builder = if verify_peer {
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .with_crls(crls)
                    .build()
                    .map_err(|e| ObjectError::Property(e.to_string()))?;
                builder.with_webpki_verifier(verifier)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
            };
            let config = match (optional(&dir, "client-cert.pem"), optional(&dir, "client-key.pem")) {
                (Some(cert), Some(key)) => {
                    let (chain, k) = load_pair(&cert, &key)?;
                    builder
                        .with_client_auth_cert(chain, k)
                        .map_err(|e| ObjectError::BadCert {
                            cert,
                            key,
                            why: e.to_string(),
                        })?
                }
                _ => builder.with_no_client_auth(),
            };
            Ok(TlsCreds {
                endpoint,
                verify_peer,
                server: None,
                client: Some(Arc::new(config)),
            })
        }
    }
}

/// `verify-peer=off` on a client: any server certificate is taken (as QEMU
/// does then); signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_glib_does() {
        assert!(glob(b"*CN=client", b"C=GB,CN=client"));
        assert!(glob(b"C=?B*", b"C=GB,O=x"));
        assert!(!glob(b"CN=client,*", b"C=GB,CN=client"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b""));
        assert!(glob(b"a*b*c", b"axxbyyc"));
    }

    #[test]
    fn lists_take_the_first_match_and_deny_by_default() {
        let l: List = serde_json::from_str(
            r#"{"policy":"deny","rules":[{"match":"*CN=good","policy":"allow","format":"glob"},{"match":"x","policy":"deny"}]}"#,
        )
        .unwrap();
        assert!(l.allows("C=GB,CN=good"));
        assert!(!l.allows("C=FR,CN=bad"));
        assert!(!List::default().allows("anyone"));
    }

    #[test]
    fn objects_are_refused_as_qemu_refuses_them() {
        let o = Objects::new();
        let add = |t: &str, id: &str, v: serde_json::Value| ObjectProps::from_json(t, &v).and_then(|p| o.add(id, p));
        let missing = serde_json::json!({"dir": "/nonexistent-pki", "endpoint": "server"});
        assert_eq!(
            add("tls-creds-x509", "t", missing).unwrap_err().to_string(),
            "Unable to access credentials /nonexistent-pki/ca-cert.pem: No such file or directory"
        );
        assert_eq!(
            add("tls-creds-x509", "t", serde_json::json!({}))
                .unwrap_err()
                .to_string(),
            "Missing 'dir' property value"
        );
        assert_eq!(
            add("tls-creds-psk", "p", serde_json::json!({}))
                .unwrap_err()
                .to_string(),
            "invalid object type: tls-creds-psk"
        );
        add("authz-simple", "a", serde_json::json!({"identity": "CN=x"})).unwrap();
        assert_eq!(
            add("authz-simple", "a", serde_json::json!({"identity": "CN=x"}))
                .unwrap_err()
                .to_string(),
            "attempt to add duplicate property 'a' to object (type 'container')"
        );
        assert_eq!(
            add("tls-creds-anon", "1x", serde_json::json!({}))
                .unwrap_err()
                .to_string(),
            "Parameter 'id' expects an identifier",
            "the id is checked before the type"
        );
        assert_eq!(o.del("nope").unwrap_err().to_string(), "object 'nope' not found");
        o.del("a").unwrap();
    }
}
