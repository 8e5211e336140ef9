//! A throwaway CA and certificates for simulators: a server certificate for loopback, and client
//! certificates (PEM and PKCS#12) for mutual TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The files a simulator writes for its clients.
#[derive(Debug, Clone)]
pub struct SimulatorCerts {
    pub ca_pem: PathBuf,
    /// Client certificate and key in one PEM file.
    pub client_pem: PathBuf,
    /// The same client certificate as PKCS#12, password [`CLIENT_P12_PASSWORD`].
    pub client_p12: PathBuf,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
}

/// BankID's public test certificate uses this password too.
pub const CLIENT_P12_PASSWORD: &str = "qwerty123";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot make certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot build the TLS configuration: {0}")]
    Tls(String),
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    std::fs::write(path, bytes).map_err(|source| CertError::Write { path: path.display().to_string(), source })
}

impl SimulatorCerts {
    /// Makes a CA, a server certificate for 127.0.0.1 and localhost, and a client certificate,
    /// and writes the client's files into `dir`.
    pub fn generate(dir: &Path, name: &str) -> Result<Self, CertError> {
        std::fs::create_dir_all(dir).map_err(|source| CertError::Write { path: dir.display().to_string(), source })?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name.push(DnType::CommonName, format!("{name} simulator root CA"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
        server.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().expect("an IP")));
        server.distinguished_name.push(DnType::CommonName, format!("{name} simulator"));
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &ca)?;

        let client_key = KeyPair::generate()?;
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, "Stjärna relying party (simulated)");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca)?;

        let ca_pem = dir.join("ca.pem");
        let client_pem = dir.join("client.pem");
        let client_p12 = dir.join("client.p12");
        write(&ca_pem, ca.pem().as_bytes())?;
        write(&client_pem, format!("{}{}", client_cert.pem(), client_key.serialize_pem()).as_bytes())?;
        let mut store = p12_keystore::KeyStore::new();
        let chain = p12_keystore::PrivateKeyChain::new(
            client_key.serialize_der(),
            b"stjarna-client",
            [p12_keystore::Certificate::from_der(client_cert.der()).map_err(|e| CertError::Tls(e.to_string()))?],
        );
        store.add_entry("client", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let p12 = store.writer(CLIENT_P12_PASSWORD).write().map_err(|e| CertError::Tls(e.to_string()))?;
        write(&client_p12, &p12)?;
        Ok(Self {
            ca_pem,
            client_pem,
            client_p12,
            ca_der: ca.der().clone(),
            server_chain: vec![server_cert.der().clone(), ca.der().clone()],
            server_key: server_key.serialize_der(),
        })
    }

    fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()))
    }

    /// Server TLS that requires a client certificate from this CA (mutual TLS).
    pub fn mutual_tls(&self) -> Result<rustls::ServerConfig, CertError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).map_err(|e| CertError::Tls(e.to_string()))?;
        let verifier =
            WebPkiClientVerifier::builder(Arc::new(roots)).build().map_err(|e| CertError::Tls(e.to_string()))?;
        rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_chain.clone(), self.server_key())
            .map_err(|e| CertError::Tls(e.to_string()))
    }

    /// Server TLS without client certificates.
    pub fn server_tls(&self) -> Result<rustls::ServerConfig, CertError> {
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), self.server_key())
            .map_err(|e| CertError::Tls(e.to_string()))
    }
}
