//! What the cache keeps, and when a read may keep what it read: every write and notice moves
//! an epoch on under one lock, and a read keeps its result only if its epoch is still current.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::storage::{BankIdEnrolmentRecord, BankIdFlowRecord, EnrolmentRecord, SessionRecord, SmsEnrolmentRecord};

/// How long an entry may be served without a change being heard of.
const MAX_AGE: Duration = Duration::from_secs(30);
/// Entries per kind; a full cache forgets the least used.
const CAPACITY: usize = 20_000;

#[derive(Clone)]
pub(super) struct Entry<T> {
    /// When the read that fetched it began.
    at: Instant,
    pub(super) value: T,
}

/// What is kept, shared with the writes in flight.
pub struct Kept {
    pub(super) sessions: Cache<String, Entry<SessionRecord>>,
    pub(super) enrolments: Cache<String, Entry<Vec<EnrolmentRecord>>>,
    pub(super) bankid_enrolments: Cache<String, Entry<Option<BankIdEnrolmentRecord>>>,
    pub(super) sms_enrolments: Cache<String, Entry<Option<SmsEnrolmentRecord>>>,
    pub(super) flows: Cache<String, Entry<BankIdFlowRecord>>,
    /// Bumped by every write and notice, under `lock`.
    epoch: AtomicU64,
    lock: Mutex<()>,
    /// Whether memory may serve (false while a feed of other instances' changes is down).
    live: AtomicBool,
}

impl Kept {
    /// `live`: whether memory may serve from the start.
    pub(super) fn new(live: bool) -> Self {
        Kept {
            sessions: Cache::new(CAPACITY),
            enrolments: Cache::new(CAPACITY),
            bankid_enrolments: Cache::new(CAPACITY),
            sms_enrolments: Cache::new(CAPACITY),
            flows: Cache::new(CAPACITY),
            epoch: AtomicU64::new(0),
            lock: Mutex::new(()),
            live: AtomicBool::new(live),
        }
    }

    /// Whether memory may serve (not while the feed of other instances' changes is down).
    pub(super) fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::SeqCst);
    }

    pub(super) fn forget_session(&self, id: &str) {
        self.sessions.remove(id);
    }

    pub(super) fn forget_user(&self, user: &str) {
        self.enrolments.remove(user);
        self.bankid_enrolments.remove(user);
        self.sms_enrolments.remove(user);
    }

    /// The user's enrolments changed, and their sessions ended with it.
    pub(super) fn forget_user_and_sessions(&self, user: &str) {
        self.forget_user(user);
        self.sessions.retain(|_, e| e.value.user_id != user);
    }

    pub(super) fn forget_flow(&self, id: &str) {
        self.flows.remove(id);
    }

    pub(super) fn forget_all(&self) {
        self.sessions.clear();
        self.enrolments.clear();
        self.bankid_enrolments.clear();
        self.sms_enrolments.clear();
        self.flows.clear();
    }

    /// Forgets under the lock, and moves the epoch on so that no read begun before keeps its result.
    pub(super) fn forget(&self, what: impl FnOnce(&Self)) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        what(self);
    }

    pub(super) fn recall<T: Clone>(&self, cache: &Cache<String, Entry<T>>, key: &str) -> Option<T> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        cache.get(key).filter(|e| e.at.elapsed() < MAX_AGE).map(|e| e.value)
    }

    pub(super) fn keep<T: Clone>(&self, cache: &Cache<String, Entry<T>>, key: &str, value: &T, read: (u64, Instant)) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.live.load(Ordering::SeqCst) && self.epoch.load(Ordering::SeqCst) == read.0 {
            cache.insert(key.to_string(), Entry { at: read.1, value: value.clone() });
        }
    }

    pub(super) fn started(&self) -> (u64, Instant) {
        (self.epoch.load(Ordering::SeqCst), Instant::now())
    }
}
