//! Serving: the accept loop and one request.

pub mod accept;
pub mod handler;
