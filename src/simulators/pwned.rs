//! A Pwned-Passwords-compatible range API on loopback, answering from the common-password list
//! that ships with Stjärna plus any passwords a test marks as breached.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};

use crate::reset::pwned::range_answer;

#[derive(Default)]
pub struct PwnedState {
    extra: Mutex<Vec<String>>,
    queries: Mutex<Vec<String>>,
}

impl PwnedState {
    /// Marks a password as breached.
    pub fn add(&self, password: &str) {
        self.extra.lock().expect("lock").push(password.into());
    }

    /// The prefixes asked for so far: all the service ever learns.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().expect("lock").clone()
    }
}

async fn range(state: web::Data<Arc<PwnedState>>, prefix: web::Path<String>) -> HttpResponse {
    if prefix.len() != 5 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return HttpResponse::BadRequest().body("The hash prefix was not in a valid format");
    }
    state.queries.lock().expect("lock").push(prefix.to_string());
    let extra = state.extra.lock().expect("lock").clone();
    let mut list: Vec<&str> = crate::reset::policy::common_passwords().collect();
    list.extend(extra.iter().map(String::as_str));
    HttpResponse::Ok().content_type("text/plain").body(range_answer(&prefix, &list))
}

pub struct PwnedSimulator {
    /// `http://127.0.0.1:PORT/range/`
    pub url: String,
    pub state: Arc<PwnedState>,
}

impl PwnedSimulator {
    pub async fn start(listen: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(PwnedState::default());
        let data = web::Data::new(state.clone());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).route("/range/{prefix}", web::get().to(range)))
                .workers(1)
                .listen(listener)?
                .run();
        tokio::spawn(server);
        Ok(Self { url: format!("http://127.0.0.1:{port}/range/"), state })
    }
}
