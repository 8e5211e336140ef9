//! A mail sink: a real SMTP server on loopback that keeps every message, and a web page to read
//! them, for demo mode and tests. Not a relay: nothing leaves the machine.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use askama::Template;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A received message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub raw: String,
}

#[derive(Default)]
pub struct MailState {
    mails: Mutex<Vec<Mail>>,
    /// Refuse this many messages with a temporary error (451), to test retries.
    refuse: Mutex<usize>,
}

impl MailState {
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }

    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address))).collect()
    }

    pub fn refuse_next(&self, n: usize) {
        *self.refuse.lock().expect("lock") = n;
    }

    fn take_refusal(&self) -> bool {
        let mut refuse = self.refuse.lock().expect("lock");
        if *refuse > 0 {
            *refuse -= 1;
            true
        } else {
            false
        }
    }
}

/// The text inside `<...>` of `MAIL FROM:<a@b>`, or what follows the colon.
fn address(arg: &str) -> String {
    let rest = arg.split_once(':').map(|(_, r)| r).unwrap_or(arg).trim();
    rest.trim_start_matches('<').split('>').next().unwrap_or_default().to_string()
}

fn parse(from: String, to: Vec<String>, raw: String) -> Mail {
    let (mut subject, mut text, mut html) = (String::new(), String::new(), String::new());
    if let Ok(parsed) = mailparse::parse_mail(raw.as_bytes()) {
        use mailparse::MailHeaderMap;
        subject = parsed.headers.get_first_value("Subject").unwrap_or_default();
        let mut parts = vec![&parsed];
        while let Some(part) = parts.pop() {
            parts.extend(part.subparts.iter());
            let body = || part.get_body().unwrap_or_default();
            match part.ctype.mimetype.as_str() {
                "text/plain" if text.is_empty() => text = body(),
                "text/html" if html.is_empty() => html = body(),
                _ => {}
            }
        }
    }
    Mail { from, to, subject, text, html, raw }
}

async fn session(stream: TcpStream, state: Arc<MailState>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 stjarna-mail-simulator ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-stjarna-mail-simulator\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "MAIL" => {
                from = address(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut raw = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    raw.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                }
                if state.take_refusal() {
                    b"451 Simulated temporary failure, try again later\r\n"
                } else {
                    state.mails.lock().expect("lock").push(parse(from.clone(), to.clone(), raw));
                    b"250 OK: queued\r\n"
                }
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

#[derive(Template)]
#[template(path = "simulators/mailbox.html")]
struct Mailbox {
    mails: Vec<(usize, Mail)>,
}

async fn mailbox(state: web::Data<Arc<MailState>>) -> HttpResponse {
    let mut mails: Vec<(usize, Mail)> = state.mails().into_iter().enumerate().collect();
    mails.reverse();
    let body = Mailbox { mails }.render().unwrap_or_else(|e| e.to_string());
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

async fn mail_html(state: web::Data<Arc<MailState>>, n: web::Path<usize>) -> HttpResponse {
    match state.mails().get(*n) {
        Some(m) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"))
            .body(m.html.clone()),
        None => HttpResponse::NotFound().finish(),
    }
}

async fn mails_json(state: web::Data<Arc<MailState>>) -> HttpResponse {
    HttpResponse::Ok().json(state.mails())
}

pub struct MailSimulator {
    pub smtp: SocketAddr,
    /// `http://127.0.0.1:PORT/mail`
    pub web_url: String,
    pub state: Arc<MailState>,
    handle: ServerHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MailSimulator {
    pub async fn start(smtp_listen: &str, web_listen: &str) -> std::io::Result<Self> {
        let state = Arc::new(MailState::default());
        let listener = TcpListener::bind(smtp_listen).await?;
        let smtp = listener.local_addr()?;
        let accept_state = state.clone();
        let smtp_task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = accept_state.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, state).await {
                        tracing::debug!(error = %e, "SMTP session ended");
                    }
                });
            }
        });
        let web_listener = std::net::TcpListener::bind(web_listen)?;
        let port = web_listener.local_addr()?.port();
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/mail", web::get().to(mailbox))
                .route("/mail/{n}/html", web::get().to(mail_html))
                .route("/mails.json", web::get().to(mails_json))
        })
        .workers(1)
        .listen(web_listener)?
        .run();
        let handle = server.handle();
        let web_task = tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(Self {
            smtp,
            web_url: format!("http://127.0.0.1:{port}/mail"),
            state,
            handle,
            tasks: vec![smtp_task, web_task],
        })
    }

    /// Serves until the web server stops (Ctrl-C or SIGTERM), then stops the SMTP side too.
    pub async fn run_until_stopped(self) {
        let mut tasks = self.tasks.into_iter();
        let smtp = tasks.next();
        for t in tasks {
            let _ = t.await;
        }
        if let Some(smtp) = smtp {
            smtp.abort();
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
        for t in &self.tasks {
            t.abort();
        }
    }
}
