//! Watch streams: JSON lines of `{"type": ..., "object": ...}`.

use super::errors::ApiError;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{ChangeEvent, Gvr, Store};
use bytes::Bytes;
use futures::Stream;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

pub struct WatchRequest {
    pub gvr: Gvr,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub from_rv: Option<u64>,
    pub timeout: Duration,
}

fn error_line(err: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": err.to_status()}))
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

struct WatchState {
    backlog: VecDeque<ChangeEvent>,
    rx: Option<broadcast::Receiver<ChangeEvent>>,
    deadline: Instant,
    request: WatchRequest,
    api_version: String,
    kind: String,
    group: String,
    plural: String,
    pending_error: Option<Bytes>,
}

impl WatchState {
    fn wanted(&self, e: &ChangeEvent) -> bool {
        e.group == self.group
            && e.resource == self.plural
            && (self.request.namespace.is_none() || e.namespace == self.request.namespace)
            && self.request.labels.matches(&e.object)
            && self.request.fields.matches(&e.object)
    }

    fn render(&self, e: &ChangeEvent) -> Bytes {
        let mut object = e.object.clone();
        object["apiVersion"] = json!(self.api_version);
        object["kind"] = json!(self.kind);
        line(&json!({"type": e.event_type.as_str(), "object": object}))
    }
}

/// The event stream for a watch request; an expired resourceVersion yields one ERROR event.
pub fn stream(store: &Store, request: WatchRequest) -> impl Stream<Item = Bytes> + Send + 'static {
    let deadline = Instant::now() + request.timeout;
    let (state, first_error) = match store.watch(&request.gvr, request.from_rv) {
        Ok((rt, backlog, rx)) => (
            WatchState {
                backlog: backlog.into(),
                rx: Some(rx),
                deadline,
                api_version: rt.api_version(&request.gvr.version),
                kind: rt.kind.clone(),
                group: rt.group.clone(),
                plural: rt.plural.clone(),
                request,
                pending_error: None,
            },
            None,
        ),
        Err(err) => (
            WatchState {
                backlog: VecDeque::new(),
                rx: None,
                deadline,
                api_version: String::new(),
                kind: String::new(),
                group: String::new(),
                plural: String::new(),
                request,
                pending_error: None,
            },
            Some(error_line(&err)),
        ),
    };
    let mut state = state;
    state.pending_error = first_error;
    futures::stream::unfold(state, |mut st| async move {
        if let Some(err) = st.pending_error.take() {
            st.rx = None;
            return Some((err, st));
        }
        while let Some(e) = st.backlog.pop_front() {
            if st.wanted(&e) {
                let bytes = st.render(&e);
                return Some((bytes, st));
            }
        }
        loop {
            let rx = st.rx.as_mut()?;
            match tokio::time::timeout_at(st.deadline, rx.recv()).await {
                Err(_) | Ok(Err(RecvError::Closed)) => return None,
                Ok(Err(RecvError::Lagged(_))) => {
                    st.rx = None;
                    let err = ApiError::gone("watch fell behind: resource version too old");
                    return Some((error_line(&err), st));
                }
                Ok(Ok(e)) => {
                    if st.wanted(&e) {
                        let bytes = st.render(&e);
                        return Some((bytes, st));
                    }
                }
            }
        }
    })
}
