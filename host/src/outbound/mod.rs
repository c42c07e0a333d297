//! A guest's outgoing HTTP: the CLIENT span, egress, the client.

pub mod client;
pub mod egress;
pub mod send;
