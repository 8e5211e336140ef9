//! Mobile code (SMS): numbers, one-time codes, gateways, and the enrol/verify flow.

mod budget;
mod challenge;
mod code;
mod flow;
mod gateway;
mod guesses;
mod number;
mod queue;

pub use budget::{ANONYMOUS_TEXTS_PER_USER_PER_DAY, Sender, WRONG_CODES_PER_USER_PER_DAY};
pub use challenge::{ChallengeState, SmsLimits, SmsOutcome, SmsPurpose, SmsStart, SmsView};
pub use code::{CodeHasher, OneTimeCode};
pub use flow::SmsFlows;
pub use gateway::{Elks46, GatewayError, Metered, SmsGateway, Twilio, Webhook, http_client, with_retries};
pub use number::{COUNTRIES, PhoneNumber, PhoneNumberError};
pub use queue::{Queued, SmsQueue};
