//! Phone orders (`phone/auth`): the service desk verifies a caller with the BankID they enrolled.

use super::flow::BankIdFlows;
use super::{Flow, FlowError, FlowPurpose, FlowUser};
use crate::audit::{AuditEvent, Detail, EventKind, Outcome, RequestMeta};
use crate::identity::PersonalNumber;
use crate::storage::StorageError;

impl BankIdFlows {
    /// Starts a phone order for a caller: BankID asks the enrolled person to confirm in the app.
    pub async fn start_phone(
        &self,
        binding: &str,
        user: FlowUser<'_>,
        personal_number: &PersonalNumber,
        we_called: bool,
        visible_text: String,
        meta: &RequestMeta,
    ) -> Result<Flow, FlowError> {
        let admitted = self.admit_phone_order(personal_number, &user, meta).await?;
        let order = super::PhoneOrder {
            personal_number: personal_number.digits().to_string(),
            call_initiator_rp: we_called,
            user_visible_data: visible_text,
        };
        let event =
            AuditEvent::new(EventKind::BankIdOrder, Outcome::Success).username(user.account_name).user_id(user.user_id);
        let order_ref = match self.bankid.phone_auth(&order).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "BankID refused or failed the phone order");
                // Given back only when BankID said it made no order: a timeout or an answer we
                // could not read may hide one that reached the phone.
                if e.made_no_order() {
                    self.release_order(admitted).await?;
                }
                let event = AuditEvent { outcome: Outcome::Failure, ..event }
                    .detail(Detail::new("order_failed").purpose("caller").arg("reason_key", super::error_key(&e)));
                self.auditor.record(meta, event).await?;
                return Err(FlowError::BankId(e));
            }
        };
        let mut record =
            self.new_record(FlowPurpose::Caller, binding, Some(user.user_id), Some(personal_number), order_ref);
        record.mode = "phone".into();
        self.store.insert_bankid_flow(&record).await?;
        let id = record.id;
        let initiator = if we_called { "RP" } else { "user" };
        self.auditor
            .record(
                meta,
                event.detail(Detail::new("phone_order").arg("initiator_key", format!("audit.initiator.{initiator}"))),
            )
            .await?;
        Ok(Flow { id })
    }

    /// The enrolled personal number of a user (decrypted), for a phone order.
    pub async fn enrolled_number(&self, user_id: &str) -> Result<Option<PersonalNumber>, StorageError> {
        let Some(e) = self.store.bankid_enrolment(user_id).await? else { return Ok(None) };
        let today = self.today();
        Ok(self.key.decrypt(&e.pn_encrypted).ok().and_then(|pn| PersonalNumber::parse(&pn, today).ok()))
    }
}
