//! Metrics for monitoring: a Prometheus text endpoint on a listener of its own (`metrics.listen`,
//! off by default, never the public port). One recorder per process: what it counts is the
//! process's.
//!
//! - `stjarna_http_requests_total{route,status}` and `stjarna_http_request_duration_seconds{route}`:
//!   every request, by route pattern (never a path, so no flow id and a bounded set of labels);
//! - `stjarna_events_total{event,outcome}`: every audited event (logins, resets, unlocks, changes,
//!   enrolments, BankID and code steps) by outcome; `outcome="blocked"` is a limit or a rule that
//!   stopped it;
//! - `stjarna_outbox_queued` and `stjarna_outbox_oldest_seconds`: mail waiting to be sent, read at
//!   each scrape;
//! - `stjarna_sms_sent_total{gateway}`, `stjarna_sms_cost_hundredths_total{gateway}` (`sms.cost_per_text`
//!   per text the gateway accepted, in hundredths: öre, cents) and `stjarna_sms_failed_total{gateway,error}`;
//! - `stjarna_bankid_orders_total{outcome}`: orders started (or not), and how each ended: `complete`,
//!   `cancelled`, or BankID's hint code or our reason to refuse (a known set; `other` beyond it);
//! - `stjarna_rate_limit_blocks_total{scope}`: every attempt a limit refused;
//! - `stjarna_directory_connections{dc,pool,state}`, `stjarna_directory_dc_in_use{dc}` and
//!   `stjarna_directory_dc_down{dc}` (read at each scrape), and `stjarna_directory_errors_total{dc,error}`.

use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALLING: Mutex<()> = Mutex::new(());

/// The process's recorder, installed on first use.
pub fn handle() -> Result<PrometheusHandle, String> {
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let handle = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .and_then(|b| b.install_recorder())
        .map_err(|e| format!("the metrics recorder cannot be installed: {e}"))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// One request answered.
pub fn request(route: &str, status: u16, seconds: f64) {
    let route = route.to_string();
    metrics::counter!("stjarna_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("stjarna_http_request_duration_seconds", "route" => route).record(seconds);
}

/// One audited event.
pub fn event(event: &'static str, outcome: &'static str) {
    metrics::counter!("stjarna_events_total", "event" => event, "outcome" => outcome).increment(1);
}

/// The outbox as read at a scrape: mails waiting, and how long the oldest has waited.
pub fn outbox(queued: i64, oldest_seconds: Option<i64>) {
    metrics::gauge!("stjarna_outbox_queued").set(queued as f64);
    metrics::gauge!("stjarna_outbox_oldest_seconds").set(oldest_seconds.unwrap_or(0).max(0) as f64);
}

/// One text handed to an SMS gateway: accepted (with what one costs), or not (`error` is a kind:
/// server, refused, timeout, transport).
pub fn sms(gateway: &'static str, sent: Result<f64, &'static str>) {
    match sent {
        Ok(cost) => {
            metrics::counter!("stjarna_sms_sent_total", "gateway" => gateway).increment(1);
            // Counters are whole numbers: the cost in hundredths of the currency (öre, cents), so
            // that increase() over restarts stays right.
            let hundredths = (cost * 100.0).round().max(0.0) as u64;
            metrics::counter!("stjarna_sms_cost_hundredths_total", "gateway" => gateway).increment(hundredths);
        }
        Err(error) => {
            metrics::counter!("stjarna_sms_failed_total", "gateway" => gateway, "error" => error).increment(1)
        }
    }
}

/// How BankID orders went: `started` or `start_failed`, then how each ended.
pub fn bankid_order(outcome: &str) {
    const KNOWN: &[&str] = &[
        "started",
        "start_failed",
        "complete",
        "cancelled",
        "userCancel",
        "expiredTransaction",
        "certificateErr",
        "startFailed",
        "notFound",
        "mismatch",
        "notVerified",
        "notEnrolled",
        "severalAccounts",
        "noUser",
        "alreadyEnrolled",
        "nothingToReplace",
        "invalidPersonalNumber",
        "riskTooHigh",
        "otherDevice",
    ];
    let outcome = KNOWN.iter().find(|k| **k == outcome).copied().unwrap_or("other");
    metrics::counter!("stjarna_bankid_orders_total", "outcome" => outcome).increment(1);
}

/// An attempt a limit refused.
pub fn rate_limit_block(scope: &str) {
    metrics::counter!("stjarna_rate_limit_blocks_total", "scope" => scope.to_string()).increment(1);
}

/// A directory operation that failed, by domain controller and kind of error.
pub fn directory_error(dc: &str, error: &'static str) {
    metrics::counter!("stjarna_directory_errors_total", "dc" => dc.to_string(), "error" => error).increment(1);
}

/// A directory pool's connections as read at a scrape.
pub fn directory_pool(dc: &str, pool: &'static str, open: usize, idle: usize) {
    let dc = dc.to_string();
    metrics::gauge!("stjarna_directory_connections", "dc" => dc.clone(), "pool" => pool, "state" => "open")
        .set(open as f64);
    metrics::gauge!("stjarna_directory_connections", "dc" => dc, "pool" => pool, "state" => "idle").set(idle as f64);
}

/// A domain controller as read at a scrape: operations go to it now, or it is skipped after a
/// failure.
pub fn directory_dc(dc: &str, in_use: bool, down: bool) {
    metrics::gauge!("stjarna_directory_dc_in_use", "dc" => dc.to_string()).set(if in_use { 1.0 } else { 0.0 });
    metrics::gauge!("stjarna_directory_dc_down", "dc" => dc.to_string()).set(if down { 1.0 } else { 0.0 });
}
