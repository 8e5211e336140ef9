//! LDAPS connections, and the pools that keep them open between requests.
//!
//! A TLS handshake with a domain controller costs far more than the search or bind that follows, so
//! connections are kept: one pool bound as the service account, and one for users' own binds (a
//! password check or change starts with a bind, which replaces whatever the connection was bound as
//! before; such connections are used for nothing else).
//!
//! A connection is dropped instead of reused when it has closed, when an operation on it failed, or
//! when it has been idle longer than `pool_idle_seconds` (AD closes idle connections after
//! MaxConnIdleTime, 15 minutes by default).

use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use rustls::{ClientConfig, RootCertStore};
use secrecy::{ExposeSecret, SecretString};

use super::{CertProblem, DirectoryError};
use crate::config::DirectorySettings;

/// How to reach the directory: address, TLS and time limits.
#[derive(Clone)]
pub(super) struct Link {
    pub url: String,
    starttls: bool,
    tls: Arc<ClientConfig>,
    connect_timeout: Duration,
    op_timeout: Duration,
}

impl Link {
    pub fn new(s: &DirectorySettings, url: &str) -> Result<Self, DirectoryError> {
        Ok(Self {
            url: url.to_string(),
            starttls: s.starttls,
            tls: Arc::new(tls_config(s)?),
            connect_timeout: Duration::from_secs(s.connect_timeout_seconds),
            op_timeout: Duration::from_secs(s.operation_timeout_seconds),
        })
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_config(self.tls.clone())
            .set_starttls(self.starttls);
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| self.classify(e, self.connect_timeout))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// Runs one LDAP operation under the operation timeout.
    pub async fn timed<T>(&self, op: impl Future<Output = ldap3::result::Result<T>>) -> Result<T, DirectoryError> {
        match tokio::time::timeout(self.op_timeout, op).await {
            Ok(result) => result.map_err(|e| self.classify(e, self.op_timeout)),
            Err(_) => Err(counted(
                &self.url,
                DirectoryError::Timeout { url: self.url.clone(), seconds: self.op_timeout.as_secs() },
            )),
        }
    }

    /// One search under the operation timeout. With `sizelimit`, the server stops there (or at
    /// its own limit, 1,000 in AD) and what came so far is the answer (sizeLimitExceeded, 4). A
    /// base that does not exist (noSuchObject, 32) is an error: a user's DN gone stale (moved,
    /// renamed) must not read as "not privileged, no such attribute" (see [`Self::exists`]).
    pub async fn search(
        &self,
        ldap: &mut Ldap,
        (base, scope, filter): (&str, Scope, &str),
        attrs: &[&str],
        sizelimit: Option<i32>,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        if let Some(limit) = sizelimit {
            ldap.with_search_options(SearchOptions::new().sizelimit(limit));
        }
        let answer = self.timed(ldap.search(base, scope, filter, attrs.to_vec())).await?;
        let entries = match answer.1.rc {
            4 if sizelimit.is_some() => answer.0,
            _ => answer.non_error().map_err(|e| self.classify(e, self.op_timeout))?.0,
        };
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// One search whose base may be out of sight (noSuchObject, 32: AD's answer for an object the
    /// service account may not read, too): nothing found, for the caller to handle.
    pub async fn search_visible(
        &self,
        ldap: &mut Ldap,
        (base, scope, filter): (&str, Scope, &str),
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let answer = self.timed(ldap.search(base, scope, filter, attrs.to_vec())).await?;
        let entries = match answer.1.rc {
            32 => Vec::new(),
            _ => answer.non_error().map_err(|e| self.classify(e, self.op_timeout))?.0,
        };
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// Whether `dn` names an entry (noSuchObject, 32: no).
    pub async fn exists(&self, ldap: &mut Ldap, dn: &str) -> Result<bool, DirectoryError> {
        Ok(!self.search_visible(ldap, (dn, Scope::Base, "(objectClass=*)"), &["1.1"]).await?.is_empty())
    }

    pub fn classify(&self, e: LdapError, timeout: Duration) -> DirectoryError {
        counted(&self.url, self.classify_uncounted(e, timeout))
    }

    fn classify_uncounted(&self, e: LdapError, timeout: Duration) -> DirectoryError {
        classify_ldap(self.url.clone(), e, timeout)
    }
}

/// What an ldap3 error says about the directory at `url`.
fn classify_ldap(url: String, e: LdapError, timeout: Duration) -> DirectoryError {
    match e {
        LdapError::Timeout { .. } => DirectoryError::Timeout { url, seconds: timeout.as_secs() },
        LdapError::Io { source } => classify_io(url, &source),
        LdapError::Rustls { source } => {
            DirectoryError::UntrustedCertificate { url, reason: source.to_string(), problem: CertProblem::of(&source) }
        }
        LdapError::LdapResult { result } => DirectoryError::Protocol(format!("result {} {}", result.rc, result.text)),
        // The operation went to the connection's task, which ended (the connection closed)
        // before handing back an answer: the request may have reached the DC.
        LdapError::ResultRecv { .. } => DirectoryError::Dropped { url },
        // The connection's task had already ended: nothing was sent.
        LdapError::OpSend { .. } => DirectoryError::Unreachable { url, reason: "the connection had closed".into() },
        other => DirectoryError::Protocol(other.to_string()),
    }
}

/// Counts the error for monitoring, by domain controller and kind.
fn counted(dc: &str, e: DirectoryError) -> DirectoryError {
    crate::monitoring::directory_error(dc, e.kind());
    e
}

fn classify_io(url: String, e: &io::Error) -> DirectoryError {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return DirectoryError::UntrustedCertificate { url, reason: tls.to_string(), problem: CertProblem::of(tls) };
    }
    if e.kind() == io::ErrorKind::TimedOut {
        return DirectoryError::Timeout { url, seconds: 0 };
    }
    DirectoryError::Unreachable { url, reason: e.to_string() }
}

/// rustls settings: the configured CA file, or the system's roots. Verification is never off.
fn tls_config(s: &DirectorySettings) -> Result<ClientConfig, DirectoryError> {
    let mut roots = RootCertStore::empty();
    match &s.ca_file {
        Some(path) => {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let ca_error = |reason: String| DirectoryError::CaFile { path: path.display().to_string(), reason };
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("it holds no PEM certificate".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// Makes connections for one pool: bound as the service account, or left for a user's bind.
pub(super) struct Connector {
    link: Link,
    service: Option<(String, SecretString)>,
    max_idle: Duration,
}

impl managed::Manager for Connector {
    type Type = Ldap;
    type Error = DirectoryError;

    async fn create(&self) -> Result<Ldap, DirectoryError> {
        let mut ldap = self.link.connect().await?;
        if let Some((bind_dn, password)) = &self.service {
            let result = self.link.timed(ldap.simple_bind(bind_dn, password.expose_secret())).await?;
            if result.rc != 0 {
                return Err(DirectoryError::ServiceAccountRefused {
                    bind_dn: bind_dn.clone(),
                    reason: format!("result {} {}", result.rc, result.text),
                });
            }
        }
        Ok(ldap)
    }

    async fn recycle(&self, ldap: &mut Ldap, metrics: &Metrics) -> RecycleResult<DirectoryError> {
        if ldap.is_closed() {
            return Err(RecycleError::message("the directory closed the connection"));
        }
        if metrics.last_used() > self.max_idle {
            return Err(RecycleError::message("idle too long"));
        }
        Ok(())
    }
}

/// A connection borrowed from a pool; it goes back when dropped, unless [`Conn::discard`]ed.
pub(super) struct Conn(Object<Connector>);

impl Conn {
    /// Closes the connection instead of returning it, e.g. after a failed operation.
    pub fn discard(self) {
        drop(Object::take(self.0));
    }

    /// Returns the connection when `result` is a success; closes it otherwise.
    pub fn settle<T, E>(self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.discard();
        }
        result
    }
}

impl Deref for Conn {
    type Target = Ldap;
    fn deref(&self) -> &Ldap {
        &self.0
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Ldap {
        &mut self.0
    }
}

type Pool = managed::Pool<Connector>;

/// The two pools.
pub(super) struct Pools {
    service: Pool,
    users: Pool,
    url: String,
    wait: Duration,
}

/// How many connections each pool holds now (open, and idle among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub service_open: usize,
    pub service_idle: usize,
    pub user_open: usize,
    pub user_idle: usize,
}

impl Pools {
    pub fn new(link: &Link, s: &DirectorySettings, bind_password: SecretString) -> Self {
        let max_idle = Duration::from_secs(s.pool_idle_seconds);
        // Waiting for a free connection counts like connecting: a stuck directory fails the request.
        let wait = link.connect_timeout + link.op_timeout;
        let build = |service: Option<(String, SecretString)>| {
            Pool::builder(Connector { link: link.clone(), service, max_idle })
                .max_size(s.pool_size.max(1))
                .wait_timeout(Some(wait))
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .expect("a pool with a runtime and a non-zero size builds")
        };
        Self {
            service: build(Some((s.bind_dn.clone(), bind_password))),
            users: build(None),
            url: link.url.clone(),
            wait,
        }
    }

    /// A connection bound as the service account.
    pub async fn service(&self) -> Result<Conn, DirectoryError> {
        self.service.get().await.map(Conn).map_err(|e| self.pool_error(e))
    }

    /// A connection for a user's bind: the caller's first operation must be that bind.
    pub async fn for_user_bind(&self) -> Result<Conn, DirectoryError> {
        self.users.get().await.map(Conn).map_err(|e| self.pool_error(e))
    }

    pub fn status(&self) -> PoolStatus {
        let (service, users) = (self.service.status(), self.users.status());
        PoolStatus {
            service_open: service.size,
            service_idle: service.available,
            user_open: users.size,
            user_idle: users.available,
        }
    }

    fn pool_error(&self, e: PoolError<DirectoryError>) -> DirectoryError {
        match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => {
                counted(&self.url, DirectoryError::Busy { url: self.url.clone(), seconds: self.wait.as_secs() })
            }
            other => DirectoryError::Protocol(format!("connection pool: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ldap3::LdapError;

    use super::{DirectoryError, classify_ldap};

    #[tokio::test]
    async fn a_connection_that_closes_under_a_write_leaves_it_unconfirmed() {
        // What ldap3 answers when its connection task ends with the request in flight.
        let (answer, waiting) = tokio::sync::oneshot::channel::<()>();
        drop(answer);
        let closed = LdapError::from(waiting.await.unwrap_err());
        let e = classify_ldap("ldaps://dc1".into(), closed, Duration::from_secs(10));
        assert!(matches!(e, DirectoryError::Dropped { .. }), "{e:?}");
        assert!(matches!(e.after_sending_write(), DirectoryError::Unconfirmed { .. }));
    }
}
