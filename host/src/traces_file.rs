//! `--traces-file PATH`: every span appended as OTLP/JSON, one
//! `ExportTraceServiceRequest` per line (the OTLP specification's protobuf
//! JSON mapping: lowerCamelCase fields, hex trace and span ids, 64-bit
//! integers as strings), a file any OTLP library can parse and Jaeger's UI
//! can load.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use wasmtime::error::Context as _;

/// The file, shared by every service of the process so that lines never
/// interleave.
#[derive(Debug, Clone)]
pub struct TracesFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl TracesFile {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &Path) -> wasmtime::Result<TracesFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| {
                format!(
                    "cannot open --traces-file `{}` for appending",
                    path.display()
                )
            })?;
        Ok(TracesFile {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An exporter writing one service's spans to the file.
    pub fn exporter(&self) -> FileExporter {
        FileExporter {
            file: self.clone(),
            resource: ResourceAttributesWithSchema::default(),
        }
    }
}

/// Writes each batch as one `ExportTraceServiceRequest` line.
#[derive(Debug)]
pub struct FileExporter {
    file: TracesFile,
    resource: ResourceAttributesWithSchema,
}

impl SpanExporter for FileExporter {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        // The same flags as the OTLP export (see `export_queue`).
        batch.iter_mut().for_each(crate::telemetry::random_root);
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let mut line = serde_json::to_string(&request).map_err(|e| {
            OTelSdkError::InternalFailure(format!("cannot encode spans as JSON: {e}"))
        })?;
        line.push('\n');
        let mut file = self
            .file
            .file
            .lock()
            .map_err(|_| OTelSdkError::InternalFailure("traces file lock poisoned".into()))?;
        file.write_all(line.as_bytes()).map_err(|e| {
            OTelSdkError::InternalFailure(format!(
                "cannot write to `{}`: {e}",
                self.file.path.display()
            ))
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}
