//! Messaging through the client SDK against a real server in this process
//! (SQLite, or PostgreSQL when `PARLEY_TEST_DATABASE_URL` is set). One
//! behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod attachments;
mod fallback_key_session;
mod group_messaging;
mod messaging_duplicate_send;
mod messaging_multi_device;
mod messaging_offline_delivery;
mod messaging_two_users;
mod receipts;
mod vault_at_rest;
