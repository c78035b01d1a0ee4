//! The notifications table: its sea-orm entity ([`notifications`]) and every statement run on
//! it ([`queries`]), shared by the service, the consumer's writes and the mailer.

pub mod notifications;
pub mod queries;
