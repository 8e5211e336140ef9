use std::process::ExitCode;

fn main() -> ExitCode {
    // One crypto provider for every TLS connection (LDAPS, HTTPS, SMTP), before anything uses TLS.
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("no other rustls crypto provider is installed before main");
    stjarna::cli::run()
}
