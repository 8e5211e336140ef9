//! One log line per request (method, route, status, latency, request id), and the span every
//! other event of the request is logged in. The route is the pattern (`/reset/{id}`), never the
//! path: flow ids and query strings stay out of the log.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RequestLog;

/// When the request came in.
struct Started(Instant);

impl RootSpanBuilder for RequestLog {
    fn on_request_start(request: &ServiceRequest) -> Span {
        request.extensions_mut().insert(Started(Instant::now()));
        let id = request.extensions().get::<RequestId>().map(|id| id.to_string()).unwrap_or_default();
        tracing::info_span!("request", request_id = %id)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let _inside = span.enter();
        match outcome {
            Ok(response) => {
                let request = response.request();
                let micros = request.extensions().get::<Started>().map(|s| s.0.elapsed().as_micros()).unwrap_or(0);
                let route = request.match_pattern();
                let route = route.as_deref().unwrap_or("(none)");
                crate::monitoring::request(route, response.status().as_u16(), micros as f64 / 1e6);
                tracing::info!(
                    target: "stjarna::http",
                    method = %request.method(),
                    route,
                    status = response.status().as_u16(),
                    ms = format_args!("{}.{:03}", micros / 1000, micros % 1000),
                );
            }
            Err(error) => tracing::warn!(target: "stjarna::http", error = %error, "request failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, test, web};
    use tracing_actix_web::TracingLogger;

    use super::RequestLog;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn each_request_is_one_line_with_its_route_not_its_path() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .wrap(TracingLogger::<RequestLog>::new())
                .route("/reset/{id}", web::get().to(|| async { HttpResponse::Ok().finish() })),
        )
        .await;
        let request = test::TestRequest::get().uri("/reset/hemligt-flode?token=x").to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 200);

        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        for part in ["request{request_id=", "method=GET", "route=\"/reset/{id}\"", "status=200", "ms="] {
            assert!(lines[0].contains(part), "{part} in {log}");
        }
        assert!(!log.contains("hemligt") && !log.contains("token"), "no path, no query: {log}");
    }
}
