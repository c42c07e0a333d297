//! The OpenTelemetry SDK set-up, its configuration and the console view.

pub mod config;
pub mod console;
pub mod export_queue;
pub mod sdk;
pub mod traces_file;
pub mod waterfall;
