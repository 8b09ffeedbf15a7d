//! The object store: every write goes through `commit`, which applies the API server's rules
//! (system metadata, status subresource, generation, finalizers, validation, field management,
//! resourceVersion) and publishes a change event other modules can subscribe to.

use super::apply::{self, ApplyRequest};
use super::crd;
use super::errors::{ApiError, Cause, Subject};
use super::meta::{self, meta_mut, now_rfc3339};
use super::patch;
use super::resources::{Registry, ResourceType};
use super::selectors::{FieldSelector, LabelSelector};
use super::validation::{self, ValidatorCache};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

const HISTORY: usize = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watchers and simulated controllers see it.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    pub event_type: EventType,
    pub group: String,
    /// The resource (plural), e.g. `deployments`.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: String,
    pub object: Value,
    pub resource_version: u64,
}

/// A REST collection as a request names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub plural: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub manager: String,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// `Some("status")` for writes to the status subresource.
    pub subresource: Option<String>,
    pub force: bool,
}

#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
    /// The object is gone (a delete without pending finalizers).
    pub removed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Create,
    Update,
    Apply,
}

type Key = (String, String);

pub(crate) struct State {
    rv: u64,
    pub(crate) registry: Registry,
    objects: BTreeMap<Key, BTreeMap<Key, Value>>,
    history: VecDeque<ChangeEvent>,
    /// The oldest resourceVersion a watch may start from.
    oldest_watchable: u64,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<ChangeEvent>,
    validators: ValidatorCache,
}

/// A handle on kubesim's objects, shared by the HTTP server and Rust callers.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn subject<'a>(rt: &'a ResourceType, name: &'a str) -> Subject<'a> {
    Subject {
        group: &rt.group,
        plural: &rt.plural,
        kind: &rt.kind,
        name,
    }
}

fn strip_for_generation(obj: &Value, status_subresource: bool) -> Value {
    let mut copy = obj.clone();
    if let Some(m) = copy.as_object_mut() {
        m.remove("metadata");
        if status_subresource {
            m.remove("status");
        }
    }
    copy
}

/// The object without what changes on every write anyway, to detect no-op writes.
fn comparable(obj: &Value) -> Value {
    let mut copy = obj.clone();
    let m = meta_mut(&mut copy);
    m.remove("resourceVersion");
    if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
        for e in entries.iter_mut() {
            if let Some(e) = e.as_object_mut() {
                e.remove("time");
            }
        }
    }
    copy
}

impl Store {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(16_384);
        Store {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    rv: 1,
                    registry: Registry::default(),
                    objects: BTreeMap::new(),
                    history: VecDeque::new(),
                    oldest_watchable: 0,
                }),
                events,
                validators: ValidatorCache::default(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (writes are applied at the
        // end), so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change events from now on (for simulated controllers, tests, the namespace controller).
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.events.subscribe()
    }

    pub fn registry(&self) -> Registry {
        self.lock().registry.clone()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn resolve(state: &State, gvr: &Gvr) -> Result<ResourceType, ApiError> {
        state
            .registry
            .by_plural(&gvr.group, &gvr.version, &gvr.plural)
            .cloned()
            .ok_or_else(ApiError::path_not_found)
    }

    fn key(rt: &ResourceType, ns: Option<&str>, name: &str) -> Key {
        let ns = if rt.namespaced { ns.unwrap_or("") } else { "" };
        (ns.to_string(), name.to_string())
    }

    fn served(obj: &Value, rt: &ResourceType, version: &str) -> Value {
        let mut copy = obj.clone();
        copy["apiVersion"] = json!(rt.api_version(version));
        copy["kind"] = json!(rt.kind);
        copy
    }

    fn stored<'s>(state: &'s State, rt: &ResourceType, key: &Key) -> Option<&'s Value> {
        state
            .objects
            .get(&(rt.group.clone(), rt.plural.clone()))
            .and_then(|m| m.get(key))
    }

    /// Server-side apply builds a typed patch from the applied object, which needs every field
    /// declared in the schema: an unknown field is a 500 whatever `fieldValidation` says
    /// (kubernetes/kubernetes#105916; the apiserver answers "failed to create typed patch object
    /// (ns/name; group/version, Kind=K): .spec.bogus: field not declared in schema"). Create and
    /// update prune such fields instead (or refuse them with Strict).
    fn check_applied_fields(
        rt: &ResourceType,
        gvr: &Gvr,
        ns: Option<&str>,
        name: &str,
        applied: &Value,
    ) -> Result<(), ApiError> {
        let Some(schema) = rt.schemas.get(&gvr.version).filter(|_| rt.custom) else {
            return Ok(());
        };
        let unknown = validation::prune(&mut applied.clone(), schema);
        if unknown.is_empty() {
            return Ok(());
        }
        let object = match ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        let fields: Vec<String> = unknown
            .iter()
            .map(|f| format!(".{f}: field not declared in schema"))
            .collect();
        Err(ApiError::internal(format!(
            "failed to create typed patch object ({object}; {}, Kind={}): {}",
            rt.api_version(&gvr.version),
            rt.kind,
            fields.join(", ")
        )))
    }

    pub fn get(&self, gvr: &Gvr, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        let state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        Self::stored(&state, &rt, &Self::key(&rt, ns, name))
            .map(|o| Self::served(o, &rt, &gvr.version))
            .ok_or_else(|| ApiError::not_found(&subject(&rt, name)))
    }

    /// Items matching the selectors, and the list's resourceVersion.
    pub fn list(
        &self,
        gvr: &Gvr,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Result<(ResourceType, Vec<Value>, u64), ApiError> {
        let state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        let items = state
            .objects
            .get(&(rt.group.clone(), rt.plural.clone()))
            .map(|m| {
                m.iter()
                    .filter(|((obj_ns, _), _)| {
                        ns.is_none() || !rt.namespaced || Some(obj_ns.as_str()) == ns
                    })
                    .map(|(_, o)| o)
                    .filter(|o| labels.matches(o) && fields.matches(o))
                    .map(|o| Self::served(o, &rt, &gvr.version))
                    .collect()
            })
            .unwrap_or_default();
        Ok((rt, items, state.rv))
    }

    /// Events to replay for a watch from `from_rv` (None/0: the current objects as ADDED) and a
    /// receiver for what follows, taken atomically.
    pub fn watch(
        &self,
        gvr: &Gvr,
        from_rv: Option<u64>,
    ) -> Result<
        (
            ResourceType,
            Vec<ChangeEvent>,
            broadcast::Receiver<ChangeEvent>,
        ),
        ApiError,
    > {
        let state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        let rx = self.inner.events.subscribe();
        let backlog = match from_rv.filter(|rv| *rv > 0) {
            None => state
                .objects
                .get(&(rt.group.clone(), rt.plural.clone()))
                .map(|m| {
                    m.iter()
                        .map(|((ns, name), o)| ChangeEvent {
                            event_type: EventType::Added,
                            group: rt.group.clone(),
                            resource: rt.plural.clone(),
                            namespace: (!ns.is_empty()).then(|| ns.clone()),
                            name: name.clone(),
                            object: o.clone(),
                            resource_version: meta::resource_version(o)
                                .and_then(|r| r.parse().ok())
                                .unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(rv) if rv < state.oldest_watchable => {
                return Err(ApiError::gone(format!(
                    "too old resource version: {rv} ({})",
                    state.oldest_watchable
                )));
            }
            Some(rv) => state
                .history
                .iter()
                .filter(|e| {
                    e.resource_version > rv && e.group == rt.group && e.resource == rt.plural
                })
                .cloned()
                .collect(),
        };
        Ok((rt, backlog, rx))
    }

    fn check_kind(rt: &ResourceType, gvr: &Gvr, body: &Value) -> Result<(), ApiError> {
        if let Some(kind) = body.get("kind").and_then(Value::as_str) {
            if kind != rt.kind {
                return Err(ApiError::bad_request(format!(
                    "the kind in the body ({kind}) does not match the kind of the resource ({})",
                    rt.kind
                )));
            }
        }
        if let Some(api_version) = body.get("apiVersion").and_then(Value::as_str) {
            if api_version != rt.api_version(&gvr.version) {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({api_version}) does not match the expected API version ({})",
                    rt.api_version(&gvr.version)
                )));
            }
        }
        Ok(())
    }

    fn check_namespace(
        state: &State,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        let ns = ns.ok_or_else(|| {
            ApiError::bad_request(
                "the server could not find the requested resource: a namespace is required",
            )
        })?;
        let ns_key = (String::new(), ns.to_string());
        match state.objects.get(&(String::new(), "namespaces".to_string())).and_then(|m| m.get(&ns_key)) {
            None => Err(ApiError::not_found(&Subject { group: "", plural: "namespaces", kind: "Namespace", name: ns })),
            Some(n) if meta::is_deleting(n) => Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                rt.plural
            ))),
            Some(_) => Ok(()),
        }
    }

    fn check_body_namespace(
        rt: &ResourceType,
        ns: Option<&str>,
        body: &Value,
    ) -> Result<(), ApiError> {
        if let (true, Some(body_ns)) = (rt.namespaced, meta::meta_str(body, "namespace")) {
            if Some(body_ns) != ns && !body_ns.is_empty() {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        Ok(())
    }

    pub fn create(
        &self,
        gvr: &Gvr,
        ns: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let mut state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        Self::check_kind(&rt, gvr, &body)?;
        Self::check_body_namespace(&rt, ns, &body)?;
        let mut name = meta::name(&body).to_string();
        if name.is_empty() {
            match meta::meta_str(&body, "generateName") {
                Some(prefix) if !prefix.is_empty() => {
                    name = meta::generate_name(prefix);
                    meta_mut(&mut body).insert("name".into(), json!(name));
                }
                _ => {
                    return Err(ApiError::invalid(
                        &subject(&rt, ""),
                        vec![Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    ))
                }
            }
        }
        Self::check_namespace(&state, &rt, ns, &name)?;
        if Self::stored(&state, &rt, &Self::key(&rt, ns, &name)).is_some() {
            return Err(ApiError::already_exists(&subject(&rt, &name)));
        }
        self.commit(&mut state, &rt, gvr, ns, None, body, opts, Op::Create)
    }

    pub fn replace(
        &self,
        gvr: &Gvr,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let mut state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        Self::check_kind(&rt, gvr, &body)?;
        Self::check_body_namespace(&rt, ns, &body)?;
        let body_name = meta::name(&body);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let old = Self::stored(&state, &rt, &Self::key(&rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&subject(&rt, name)))?;
        if let Some(rv) = meta::resource_version(&body) {
            if Some(rv) != meta::resource_version(&old) {
                return Err(ApiError::conflict(&subject(&rt, name)));
            }
        }
        self.commit(&mut state, &rt, gvr, ns, Some(old), body, opts, Op::Update)
    }

    pub fn patch(
        &self,
        gvr: &Gvr,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch_body: &Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let mut state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        let old = Self::stored(&state, &rt, &Self::key(&rt, ns, name)).cloned();
        let subj = subject(&rt, name);
        if patch_type == PatchType::Apply {
            return self.apply_patch(&mut state, &rt, gvr, ns, name, old, patch_body, opts);
        }
        let old = old.ok_or_else(|| ApiError::not_found(&subj))?;
        let mut new = Self::served(&old, &rt, &gvr.version);
        match patch_type {
            PatchType::Merge => patch::merge_patch(&mut new, patch_body),
            PatchType::Strategic => patch::strategic_merge_patch(&mut new, patch_body),
            PatchType::Json => patch::json_patch(&mut new, patch_body).map_err(|e| match e {
                patch::JsonPatchError::TestFailed(_) => ApiError::invalid(
                    &subj,
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: e.to_string(),
                        field: "".into(),
                    }],
                ),
                _ => ApiError::internal(e.to_string()),
            })?,
            PatchType::Apply => {}
        }
        Self::check_kind(&rt, gvr, &new)?;
        if meta::name(&new) != name {
            return Err(ApiError::bad_request(
                "the name of the object may not be changed by a patch",
            ));
        }
        if meta::resource_version(&new) != meta::resource_version(&old) {
            return Err(ApiError::conflict(&subj));
        }
        self.commit(&mut state, &rt, gvr, ns, Some(old), new, opts, Op::Update)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_patch(
        &self,
        state: &mut State,
        rt: &ResourceType,
        gvr: &Gvr,
        ns: Option<&str>,
        name: &str,
        old: Option<Value>,
        applied: &Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        if opts.manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager",
            ));
        }
        if applied.get("apiVersion").and_then(Value::as_str).is_none()
            || applied.get("kind").and_then(Value::as_str).is_none()
        {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an applied configuration",
            ));
        }
        Self::check_kind(rt, gvr, applied)?;
        Self::check_body_namespace(rt, ns, applied)?;
        if meta::name(applied) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta::name(applied)
            )));
        }
        Self::check_applied_fields(rt, gvr, ns, name, applied)?;
        let request = ApplyRequest {
            manager: &opts.manager,
            api_version: &rt.api_version(&gvr.version),
            force: opts.force,
            subresource: opts.subresource.as_deref(),
            status_subresource: rt.status_subresource,
        };
        let subj = subject(rt, name);
        match old {
            None => {
                if opts.subresource.is_some() {
                    return Err(ApiError::not_found(&subj));
                }
                Self::check_namespace(state, rt, ns, name)?;
                let new = apply::apply(None, applied, &request)
                    .map_err(|c| ApiError::apply_conflict(&subj, c))?;
                self.commit(state, rt, gvr, ns, None, new, opts, Op::Apply)
            }
            Some(old) => {
                if let Some(rv) = meta::resource_version(applied) {
                    if Some(rv) != meta::resource_version(&old) {
                        return Err(ApiError::conflict(&subj));
                    }
                }
                let served_old = Self::served(&old, rt, &gvr.version);
                let new = apply::apply(Some(&served_old), applied, &request)
                    .map_err(|c| ApiError::apply_conflict(&subj, c))?;
                self.commit(state, rt, gvr, ns, Some(old), new, opts, Op::Apply)
            }
        }
    }

    /// Applies the API server's write rules and stores the result.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        state: &mut State,
        rt: &ResourceType,
        gvr: &Gvr,
        ns: Option<&str>,
        old: Option<Value>,
        mut new: Value,
        opts: &WriteOptions,
        op: Op,
    ) -> Result<WriteOutcome, ApiError> {
        let api_version = rt.api_version(&gvr.version);
        let name = meta::name(&new).to_string();
        let subj = subject(rt, &name);
        new["apiVersion"] = json!(api_version);
        new["kind"] = json!(rt.kind);
        let status_write = opts.subresource.as_deref() == Some("status");

        // The status subresource and the main resource each ignore the other's part.
        if rt.status_subresource {
            if status_write {
                if let Some(old) = &old {
                    let status = new.get("status").cloned();
                    let managed = meta::meta(&new)
                        .and_then(|m| m.get("managedFields"))
                        .cloned();
                    new = old.clone();
                    match status {
                        Some(s) => new["status"] = s,
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                    if let Some(managed) = managed {
                        meta_mut(&mut new).insert("managedFields".into(), managed);
                    }
                    new["apiVersion"] = json!(api_version);
                }
            } else {
                match old.as_ref().and_then(|o| o.get("status")) {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
        }

        // System metadata.
        {
            let m = meta_mut(&mut new);
            if rt.namespaced {
                m.insert("namespace".into(), json!(ns.unwrap_or("")));
            } else {
                m.remove("namespace");
            }
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                m.remove(k);
            }
            if let Some(old_meta) = old.as_ref().and_then(meta::meta) {
                for k in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    if let Some(v) = old_meta.get(k) {
                        m.insert(k.into(), v.clone());
                    }
                }
                if op == Op::Update {
                    if let Some(v) = old_meta.get("managedFields") {
                        m.insert("managedFields".into(), v.clone());
                    }
                }
            } else {
                m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                m.insert("creationTimestamp".into(), json!(now_rfc3339()));
                if rt.generation {
                    m.insert("generation".into(), json!(1));
                }
                if op == Op::Create {
                    m.remove("managedFields");
                }
            }
        }
        if old.is_none() {
            if let Some(cause) = meta::validate_name(&name, rt.plural == "namespaces") {
                return Err(ApiError::invalid(&subj, vec![cause]));
            }
        }

        // Custom resources: prune, default and validate against the CRD's schema.
        let mut warnings = Vec::new();
        if rt.custom {
            if let Some(schema) = rt.schemas.get(&gvr.version) {
                let unknown = validation::prune(&mut new, schema);
                match opts.field_validation {
                    FieldValidation::Strict if !unknown.is_empty() => {
                        let list: Vec<String> = unknown
                            .iter()
                            .map(|f| format!("unknown field \"{f}\""))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "strict decoding error: {}",
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => {
                        warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
                    }
                    _ => {}
                }
                validation::apply_defaults(&mut new, schema);
                let validator = self
                    .inner
                    .validators
                    .get(&rt.group, &rt.plural, &gvr.version, schema)
                    .map_err(ApiError::internal)?;
                let causes = validation::validate(&validator, &new);
                if !causes.is_empty() {
                    return Err(ApiError::invalid(&subj, causes));
                }
            }
        }

        // Kind-specific rules.
        if rt.group.is_empty() && rt.plural == "namespaces" {
            if old.is_none() {
                new["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            if new.pointer("/status/phase").is_none() {
                new["status"] = json!({"phase": "Active"});
            }
        }
        if crd::is_crd(rt) {
            crd::validate(&new).map_err(|causes| ApiError::invalid(&subj, causes))?;
            crd::prepare(old.as_ref(), &mut new);
        }

        // Generation moves on spec changes only.
        if let (Some(old), true) = (&old, rt.generation) {
            if strip_for_generation(old, rt.status_subresource)
                != strip_for_generation(&new, rt.status_subresource)
            {
                let generation = meta::meta(old)
                    .and_then(|m| m.get("generation"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
            }
        }

        // Finalizers: none may be added while deleting; the last one removed deletes the object.
        let deleting = old.as_ref().is_some_and(meta::is_deleting);
        if deleting {
            let before = old.as_ref().map(meta::finalizers).unwrap_or_default();
            if meta::finalizers(&new).iter().any(|f| !before.contains(f)) {
                return Err(ApiError::invalid(&subj, vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    message: "Forbidden: no new finalizers can be added if the object is being deleted".into(),
                    field: "metadata.finalizers".into(),
                }]));
            }
        }

        if op != Op::Apply {
            let manager = if opts.manager.is_empty() {
                "unknown"
            } else {
                opts.manager.as_str()
            };
            apply::record_update(
                old.as_ref(),
                &mut new,
                manager,
                &api_version,
                opts.subresource.as_deref(),
                rt.status_subresource,
            );
        }

        if let Some(old) = &old {
            if comparable(old) == comparable(&new) {
                return Ok(WriteOutcome {
                    object: Self::served(old, rt, &gvr.version),
                    warnings,
                    created: false,
                    removed: false,
                });
            }
        }
        if opts.dry_run {
            return Ok(WriteOutcome {
                object: new,
                warnings,
                created: old.is_none(),
                removed: false,
            });
        }
        if deleting
            && meta::finalizers(&new).is_empty()
            && !Self::waits_for_spec_finalizers(rt, &new)
        {
            let removed = self.remove(state, rt, ns, &name, new);
            return Ok(WriteOutcome {
                object: Self::served(&removed, rt, &gvr.version),
                warnings,
                created: false,
                removed: true,
            });
        }
        let event_type = if old.is_none() {
            EventType::Added
        } else {
            EventType::Modified
        };
        let stored = self.store(state, rt, ns, &name, new, event_type);
        Ok(WriteOutcome {
            object: Self::served(&stored, rt, &gvr.version),
            warnings,
            created: old.is_none(),
            removed: false,
        })
    }

    /// Namespaces wait for their content (the `kubernetes` spec finalizer) too.
    fn waits_for_spec_finalizers(rt: &ResourceType, obj: &Value) -> bool {
        rt.group.is_empty()
            && rt.plural == "namespaces"
            && obj
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
    }

    fn next_rv(state: &mut State) -> u64 {
        state.rv += 1;
        state.rv
    }

    fn publish(&self, state: &mut State, event: ChangeEvent) {
        state.history.push_back(event.clone());
        while state.history.len() > HISTORY {
            if let Some(dropped) = state.history.pop_front() {
                state.oldest_watchable = dropped.resource_version;
            }
        }
        // Nobody listening is fine.
        let _ = self.inner.events.send(event);
    }

    fn store(
        &self,
        state: &mut State,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut obj: Value,
        event_type: EventType,
    ) -> Value {
        let rv = Self::next_rv(state);
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let key = Self::key(rt, ns, name);
        state
            .objects
            .entry((rt.group.clone(), rt.plural.clone()))
            .or_default()
            .insert(key.clone(), obj.clone());
        if crd::is_crd(rt) {
            if let Some(defined) = super::resources::from_crd(&obj) {
                self.inner
                    .validators
                    .forget(&defined.group, &defined.plural);
                if !meta::is_deleting(&obj) {
                    state.registry.register(defined);
                }
            }
        }
        self.publish(
            state,
            ChangeEvent {
                event_type,
                group: rt.group.clone(),
                resource: rt.plural.clone(),
                namespace: (!key.0.is_empty()).then(|| key.0.clone()),
                name: name.to_string(),
                object: obj.clone(),
                resource_version: rv,
            },
        );
        obj
    }

    fn remove(
        &self,
        state: &mut State,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        mut last: Value,
    ) -> Value {
        let key = Self::key(rt, ns, name);
        if let Some(m) = state
            .objects
            .get_mut(&(rt.group.clone(), rt.plural.clone()))
        {
            m.remove(&key);
        }
        let rv = Self::next_rv(state);
        meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        if crd::is_crd(rt) {
            if let Some(defined) = super::resources::from_crd(&last) {
                state.registry.unregister(&defined.group, &defined.plural);
                state
                    .objects
                    .remove(&(defined.group.clone(), defined.plural.clone()));
                self.inner
                    .validators
                    .forget(&defined.group, &defined.plural);
            }
        }
        self.publish(
            state,
            ChangeEvent {
                event_type: EventType::Deleted,
                group: rt.group.clone(),
                resource: rt.plural.clone(),
                namespace: (!key.0.is_empty()).then(|| key.0.clone()),
                name: name.to_string(),
                object: last.clone(),
                resource_version: rv,
            },
        );
        last
    }

    pub fn delete(
        &self,
        gvr: &Gvr,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let mut state = self.lock();
        let rt = Self::resolve(&state, gvr)?;
        self.delete_locked(&mut state, &rt, &gvr.version, ns, name, opts)
    }

    fn delete_locked(
        &self,
        state: &mut State,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<WriteOutcome, ApiError> {
        let subj = subject(rt, name);
        let old = Self::stored(state, rt, &Self::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&subj))?;
        if let Some(uid) = &opts.precondition_uid {
            if meta::meta_str(&old, "uid") != Some(uid.as_str()) {
                let mut err = ApiError::conflict(&subj);
                err.message = format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::meta_str(&old, "uid").unwrap_or("")
                );
                return Err(err);
            }
        }
        if let Some(rv) = &opts.precondition_rv {
            if meta::resource_version(&old) != Some(rv.as_str()) {
                let mut err = ApiError::conflict(&subj);
                err.message = format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta::resource_version(&old).unwrap_or("")
                );
                return Err(err);
            }
        }
        let served = |o: &Value| Self::served(o, rt, version);
        if meta::is_deleting(&old) {
            return Ok(WriteOutcome {
                object: served(&old),
                warnings: vec![],
                created: false,
                removed: false,
            });
        }
        let pending =
            !meta::finalizers(&old).is_empty() || Self::waits_for_spec_finalizers(rt, &old);
        if opts.dry_run {
            return Ok(WriteOutcome {
                object: served(&old),
                warnings: vec![],
                created: false,
                removed: !pending,
            });
        }
        if pending {
            let mut new = old.clone();
            let m = meta_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if rt.group.is_empty() && rt.plural == "namespaces" {
                new["status"]["phase"] = json!("Terminating");
            }
            if crd::is_crd(rt) {
                crd::mark_terminating(&mut new);
            }
            let stored = self.store(state, rt, ns, name, new, EventType::Modified);
            return Ok(WriteOutcome {
                object: served(&stored),
                warnings: vec![],
                created: false,
                removed: false,
            });
        }
        let removed = self.remove(state, rt, ns, name, old);
        Ok(WriteOutcome {
            object: served(&removed),
            warnings: vec![],
            created: false,
            removed: true,
        })
    }

    /// Deletes every matching object of a collection; returns them as they were answered.
    pub fn delete_collection(
        &self,
        gvr: &Gvr,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        opts: &DeleteOptions,
    ) -> Result<(ResourceType, Vec<Value>, u64), ApiError> {
        let (rt, items, _) = self.list(gvr, ns, labels, fields)?;
        let mut state = self.lock();
        let mut out = Vec::new();
        for item in items {
            let item_ns = meta::meta_str(&item, "namespace").map(str::to_string);
            let name = meta::name(&item).to_string();
            if let Ok(outcome) = self.delete_locked(
                &mut state,
                &rt,
                &gvr.version,
                item_ns.as_deref(),
                &name,
                opts,
            ) {
                out.push(outcome.object);
            }
        }
        Ok((rt, out, state.rv))
    }

    /// One pass of the namespace and CRD finalizers: content of terminating namespaces (and
    /// custom resources of terminating CRDs) is deleted; once it is gone, so is the owner.
    pub fn reconcile_terminations(&self) {
        let mut state = self.lock();
        let ns_rt = state.registry.by_plural("", "v1", "namespaces").cloned();
        let crd_rt = state
            .registry
            .by_plural("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .cloned();
        let terminating = |state: &State, group: &str, plural: &str| -> Vec<Value> {
            state
                .objects
                .get(&(group.to_string(), plural.to_string()))
                .map(|m| {
                    m.values()
                        .filter(|o| meta::is_deleting(o))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(ns_rt) = ns_rt {
            for ns_obj in terminating(&state, "", "namespaces") {
                let ns = meta::name(&ns_obj).to_string();
                let mut remaining = 0;
                let types: Vec<ResourceType> = state
                    .registry
                    .all()
                    .iter()
                    .filter(|t| t.namespaced)
                    .cloned()
                    .collect();
                for rt in types {
                    let names: Vec<String> = state
                        .objects
                        .get(&(rt.group.clone(), rt.plural.clone()))
                        .map(|m| {
                            m.keys()
                                .filter(|(n, _)| *n == ns)
                                .map(|(_, name)| name.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    for name in names {
                        remaining += 1;
                        let version = rt.versions[0].clone();
                        let _ = self.delete_locked(
                            &mut state,
                            &rt,
                            &version,
                            Some(&ns),
                            &name,
                            &DeleteOptions::default(),
                        );
                    }
                }
                if remaining == 0 {
                    let mut done = ns_obj.clone();
                    done["spec"]["finalizers"] = json!([]);
                    if meta::finalizers(&done).is_empty() {
                        self.remove(&mut state, &ns_rt, None, &ns, done);
                    } else {
                        self.store(&mut state, &ns_rt, None, &ns, done, EventType::Modified);
                    }
                }
            }
        }
        if let Some(crd_rt) = crd_rt {
            for crd_obj in terminating(&state, "apiextensions.k8s.io", "customresourcedefinitions")
            {
                let Some(defined) = super::resources::from_crd(&crd_obj) else {
                    continue;
                };
                let keys: Vec<Key> = state
                    .objects
                    .get(&(defined.group.clone(), defined.plural.clone()))
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                for (ns, name) in &keys {
                    let ns = (!ns.is_empty()).then_some(ns.as_str());
                    let version = defined.versions.first().cloned().unwrap_or_default();
                    let _ = self.delete_locked(
                        &mut state,
                        &defined,
                        &version,
                        ns,
                        name,
                        &DeleteOptions::default(),
                    );
                }
                let left = state
                    .objects
                    .get(&(defined.group.clone(), defined.plural.clone()))
                    .map_or(0, |m| m.len());
                if left == 0
                    && meta::finalizers(&crd_obj)
                        .iter()
                        .any(|f| f == crd::CLEANUP_FINALIZER)
                {
                    let mut done = crd_obj.clone();
                    let finalizers: Vec<String> = meta::finalizers(&done)
                        .into_iter()
                        .filter(|f| f != crd::CLEANUP_FINALIZER)
                        .collect();
                    meta_mut(&mut done).insert("finalizers".into(), json!(finalizers));
                    let name = meta::name(&done).to_string();
                    if finalizers.is_empty() {
                        self.remove(&mut state, &crd_rt, None, &name, done);
                    } else {
                        self.store(&mut state, &crd_rt, None, &name, done, EventType::Modified);
                    }
                }
            }
        }
    }
}
