//! The simulated BankID: orders, the rules BankID enforces, identities, and injected faults.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::order::{check_web, collect_response, decode_visible, invalid};
use super::{ApiError, AppError, Fault, Identity, Order, Status};
use crate::clock::{Clock, Random, Timestamp};
use crate::identity::bankid::{qr_auth_code, wire};

pub struct SimState {
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    identities: Mutex<Vec<Identity>>,
    orders: Mutex<Vec<Order>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Off only to test a relying party's own check: lets any BankID complete a personal-number order.
    enforce_requirement: Mutex<bool>,
    broker_status_calls: Mutex<Vec<(String, Timestamp)>>,
    /// The risk indication new orders get (`low` unless a test says otherwise).
    risk: Mutex<&'static str>,
    /// The device address new orders report (None: the endUserIp the order was started with).
    device_ip: Mutex<Option<String>>,
}

fn uuid4(random: &dyn Random) -> String {
    let mut bytes = [0u8; 16];
    random.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

impl SimState {
    pub fn new(clock: Arc<dyn Clock>, random: Arc<dyn Random>, identities: Vec<Identity>) -> Self {
        Self {
            clock,
            random,
            identities: Mutex::new(identities),
            orders: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            enforce_requirement: Mutex::new(true),
            broker_status_calls: Mutex::new(Vec::new()),
            risk: Mutex::new("low"),
            device_ip: Mutex::new(None),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn identities(&self) -> Vec<Identity> {
        self.identities.lock().expect("lock").clone()
    }

    pub fn add_identity(&self, identity: Identity) {
        self.identities.lock().expect("lock").push(identity);
    }

    fn identity(&self, personal_number: &str) -> Result<Identity, AppError> {
        self.identities().into_iter().find(|i| i.personal_number == personal_number).ok_or(AppError::UnknownIdentity)
    }

    /// The next `times` API calls fail with `fault`.
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut faults = self.faults.lock().expect("lock");
        for _ in 0..times {
            faults.push_back(fault);
        }
    }

    pub(super) fn take_fault(&self) -> Option<Fault> {
        self.faults.lock().expect("lock").pop_front()
    }

    pub(super) fn note_broker_status_call(&self, id: &str) {
        let now = self.now();
        self.broker_status_calls.lock().expect("lock").push((id.to_string(), now));
    }

    /// The broker status calls so far (order id, simulated time).
    pub fn broker_status_calls(&self) -> Vec<(String, Timestamp)> {
        self.broker_status_calls.lock().expect("lock").clone()
    }

    /// New orders that ask for it get this risk indication (`low`, `moderate` or `high`).
    pub fn set_risk(&self, risk: &'static str) {
        *self.risk.lock().expect("lock") = risk;
    }

    /// New orders report this device address (as if the app ran elsewhere), or the endUserIp.
    pub fn set_device_ip(&self, ip: Option<&str>) {
        *self.device_ip.lock().expect("lock") = ip.map(str::to_string);
    }

    pub fn set_enforce_requirement(&self, on: bool) {
        *self.enforce_requirement.lock().expect("lock") = on;
    }

    fn with_orders<T>(&self, f: impl FnOnce(&mut Vec<Order>, Timestamp) -> T) -> T {
        let now = self.now();
        let mut orders = self.orders.lock().expect("lock");
        for o in orders.iter_mut() {
            o.age(now);
        }
        orders.retain(|o| now - o.created_at < 3600);
        f(&mut orders, now)
    }

    /// Another pending order for the same person is cancelled, and the new one refused (as BankID does).
    fn refuse_if_in_progress(orders: &mut [Order], personal_number: &str) -> Result<(), ApiError> {
        let mut clash = false;
        for o in orders.iter_mut().filter(|o| o.is_pending()) {
            let same = o.required.as_deref() == Some(personal_number)
                || o.holder.as_ref().is_some_and(|h| h.personal_number == personal_number)
                || o.phone.as_ref().is_some_and(|(pn, _)| pn == personal_number);
            if same {
                o.status = Status::Failed("cancelled".into());
                clash = true;
            }
        }
        if clash { Err(ApiError(400, "alreadyInProgress", "Order already in progress for pno".into())) } else { Ok(()) }
    }

    pub fn auth(&self, req: &wire::AuthRequest) -> Result<wire::AuthResponse, ApiError> {
        if req.end_user_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid("Invalid endUserIp"));
        }
        let visible_text = decode_visible(req.user_visible_data.as_deref())?;
        if let Some(web) = &req.web {
            check_web(web)?;
        }
        let required = req.requirement.as_ref().and_then(|r| r.personal_number.clone());
        if let Some(pn) = &required
            && (pn.len() != 12 || !pn.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid("Incorrect personalNumber"));
        }
        if let Some(url) = &req.return_url
            && !url.starts_with("https://")
            && !url.starts_with("http://127.")
            && !url.starts_with("http://localhost")
        {
            // BankID wants an https address; the simulator lets a portal on loopback use http.
            return Err(invalid("Invalid returnUrl"));
        }
        let random = self.random.as_ref();
        let order = Order {
            order_ref: uuid4(random),
            auto_start_token: uuid4(random),
            qr_start_token: uuid4(random),
            qr_start_secret: uuid4(random),
            created_at: self.now(),
            started_at: None,
            end_user_ip: req.end_user_ip.clone(),
            required: required.clone(),
            phone: None,
            visible_text,
            holder: None,
            status: Status::Pending("outstandingTransaction"),
            return_risk: req.return_risk == Some(true),
            risk: *self.risk.lock().expect("lock"),
            device_ip: self.device_ip.lock().expect("lock").clone().unwrap_or_else(|| req.end_user_ip.clone()),
            web: req.web.clone(),
            return_url: req.return_url.clone(),
            opened_here: false,
        };
        self.with_orders(|orders, _| {
            if let Some(pn) = &required {
                Self::refuse_if_in_progress(orders, pn)?;
            }
            let response = wire::AuthResponse {
                order_ref: order.order_ref.clone(),
                auto_start_token: order.auto_start_token.clone(),
                qr_start_token: order.qr_start_token.clone(),
                qr_start_secret: order.qr_start_secret.clone(),
            };
            orders.push(order);
            Ok(response)
        })
    }

    pub fn phone_auth(&self, req: &wire::PhoneAuthRequest) -> Result<String, ApiError> {
        let pn = &req.personal_number;
        if pn.len() != 12 || !pn.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("Incorrect personalNumber"));
        }
        let rp = match req.call_initiator.as_str() {
            "RP" => true,
            "user" => false,
            _ => return Err(invalid("Invalid callInitiator")),
        };
        let visible_text = decode_visible(req.user_visible_data.as_deref())?;
        let random = self.random.as_ref();
        let order = Order {
            order_ref: uuid4(random),
            auto_start_token: String::new(),
            qr_start_token: String::new(),
            qr_start_secret: String::new(),
            created_at: self.now(),
            started_at: None,
            end_user_ip: String::new(),
            required: Some(pn.clone()),
            phone: Some((pn.clone(), rp)),
            visible_text,
            holder: None,
            status: Status::Pending("outstandingTransaction"),
            return_risk: false,
            risk: "low",
            device_ip: String::new(),
            web: None,
            return_url: None,
            opened_here: false,
        };
        self.with_orders(|orders, _| {
            Self::refuse_if_in_progress(orders, pn)?;
            let order_ref = order.order_ref.clone();
            orders.push(order);
            Ok(order_ref)
        })
    }

    pub fn collect(&self, order_ref: &str) -> Result<wire::CollectResponse, ApiError> {
        self.with_orders(|orders, _| {
            let o = orders.iter().find(|o| o.order_ref == order_ref).ok_or_else(|| invalid("No such order"))?;
            Ok(collect_response(o))
        })
    }

    pub fn cancel(&self, order_ref: &str) -> Result<(), ApiError> {
        self.with_orders(|orders, _| {
            let o = orders.iter_mut().find(|o| o.order_ref == order_ref).ok_or_else(|| invalid("No such order"))?;
            if o.is_pending() {
                o.status = Status::Failed("cancelled".into());
            }
            Ok(())
        })
    }

    /// A copy of an order, for the app page and tests.
    pub fn order(&self, order_ref: &str) -> Option<Order> {
        self.with_orders(|orders, _| orders.iter().find(|o| o.order_ref == order_ref).cloned())
    }

    /// Orders waiting for someone to scan their QR code, newest first.
    pub fn awaiting_scan(&self) -> Vec<Order> {
        self.with_orders(|orders, _| {
            let mut list: Vec<Order> = orders
                .iter()
                .filter(|o| o.is_pending() && o.started_at.is_none() && o.phone.is_none())
                .cloned()
                .collect();
            list.reverse();
            list
        })
    }

    /// Phone orders waiting for this person to answer.
    pub fn phone_orders_for(&self, personal_number: &str) -> Vec<Order> {
        self.with_orders(|orders, _| {
            orders
                .iter()
                .filter(|o| o.is_pending() && o.phone.as_ref().is_some_and(|(pn, _)| pn == personal_number))
                .cloned()
                .collect()
        })
    }

    /// What the camera would read now from the order's animated QR code.
    pub fn current_qr_payload(&self, order_ref: &str) -> Option<String> {
        let o = self.order(order_ref)?;
        let t = (self.now() - o.created_at).max(0) as u64;
        Some(format!("bankid.{}.{t}.{}", o.qr_start_token, qr_auth_code(&o.qr_start_secret, t)))
    }

    /// The app reads a QR payload: only the current frame (or the one just before) counts.
    pub fn scan(&self, payload: &str, personal_number: &str) -> Result<String, AppError> {
        let identity = self.identity(personal_number)?;
        let mut parts = payload.trim().split('.');
        let (Some("bankid"), Some(token), Some(time), Some(code), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AppError::NoSuchOrder);
        };
        let qr_time: i64 = time.parse().map_err(|_| AppError::StaleQr)?;
        let order_ref = self.with_orders(|orders, now| {
            let o = orders.iter().find(|o| o.qr_start_token == token).ok_or(AppError::NoSuchOrder)?;
            let elapsed = now - o.created_at;
            let fresh = qr_time == elapsed || qr_time == elapsed - 1;
            if !fresh || qr_auth_code(&o.qr_start_secret, qr_time as u64) != code {
                return Err(AppError::StaleQr);
            }
            Ok(o.order_ref.clone())
        })?;
        self.start(&order_ref, identity)
    }

    /// The app was started with the autostart token on this device.
    pub fn open_autostart(&self, token: &str, personal_number: &str) -> Result<String, AppError> {
        let identity = self.identity(personal_number)?;
        let order_ref = self.with_orders(|orders, _| {
            orders
                .iter_mut()
                .find(|o| !o.auto_start_token.is_empty() && o.auto_start_token == token)
                .map(|o| {
                    o.opened_here = true;
                    o.order_ref.clone()
                })
                .ok_or(AppError::NoSuchOrder)
        })?;
        self.start(&order_ref, identity)
    }

    /// Where the app sends the user once they approved an order it was started for on this device
    /// (its `returnUrl`), if anywhere.
    pub fn return_to(&self, order_ref: &str) -> Option<String> {
        let o = self.order(order_ref)?;
        (o.opened_here && matches!(o.status, Status::Complete(_))).then_some(o.return_url?)
    }

    /// The called person opens the phone order in the app.
    pub fn answer_phone(&self, order_ref: &str, personal_number: &str) -> Result<String, AppError> {
        let identity = self.identity(personal_number)?;
        self.start(order_ref, identity)
    }

    fn start(&self, order_ref: &str, identity: Identity) -> Result<String, AppError> {
        let enforce = *self.enforce_requirement.lock().expect("lock");
        self.with_orders(|orders, now| {
            let o = orders.iter_mut().find(|o| o.order_ref == order_ref).ok_or(AppError::NoSuchOrder)?;
            if !o.is_pending() || o.started_at.is_some() {
                return Err(AppError::NotWaiting);
            }
            if enforce && o.required.as_ref().is_some_and(|pn| *pn != identity.personal_number) {
                return Err(AppError::WrongPerson);
            }
            o.started_at = Some(now);
            o.status = Status::Pending(match o.phone {
                Some((_, true)) => "userCallConfirm",
                _ => "userSign",
            });
            o.holder = Some(identity);
            Ok(o.order_ref.clone())
        })
    }

    /// The user approves in the app (enters the security code).
    pub fn approve(&self, order_ref: &str) -> Result<(), AppError> {
        self.with_orders(|orders, _| {
            let o = orders.iter_mut().find(|o| o.order_ref == order_ref).ok_or(AppError::NoSuchOrder)?;
            let (true, Some(holder)) = (o.is_pending(), o.holder.clone()) else {
                return Err(AppError::NotWaiting);
            };
            o.status = if holder.blocked { Status::Failed("certificateErr".into()) } else { Status::Complete(holder) };
            Ok(())
        })
    }

    /// The user presses cancel in the app (or declines the call).
    pub fn user_cancel(&self, order_ref: &str) -> Result<(), AppError> {
        self.with_orders(|orders, _| {
            let o = orders.iter_mut().find(|o| o.order_ref == order_ref).ok_or(AppError::NoSuchOrder)?;
            if !o.is_pending() {
                return Err(AppError::NotWaiting);
            }
            let declined = matches!(o.status, Status::Pending("userCallConfirm"));
            o.status = Status::Failed(if declined { "userDeclinedCall" } else { "userCancel" }.into());
            Ok(())
        })
    }
}
