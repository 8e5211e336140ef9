//! Mobile code (SMS): numbers, one-time codes, gateways, and the enrol/verify flow.

mod code;
mod flow;
mod gateway;
mod number;

pub use code::{CodeHasher, OneTimeCode};
pub use flow::{ChallengeState, SmsFlows, SmsLimits, SmsOutcome, SmsPurpose, SmsStart, SmsView};
pub use gateway::{Elks46, GatewayError, SmsGateway, Twilio, Webhook, with_retries};
pub use number::{COUNTRIES, PhoneNumber, PhoneNumberError};
