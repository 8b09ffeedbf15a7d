//! The request log tests read to count calls (lists vs. gets, writes, ...).

use std::sync::{Arc, Mutex};

/// One request kubesim answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The audit verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// The resource (plural) for resource requests; None for discovery and /version.
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub status: u16,
    pub user_agent: String,
}

#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    records: Arc<Mutex<Vec<RequestRecord>>>,
}

impl RequestLog {
    pub fn push(&self, record: RequestRecord) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }

    pub fn all(&self) -> Vec<RequestRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
