//! CustomResourceDefinitions: what the apiextensions server checks and the status it reports.

use super::errors::Cause;
use super::meta::{self, meta_mut, now_rfc3339};
use super::resources::ResourceType;
use serde_json::{json, Value};

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

pub fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

fn required(field: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: "Required value".into(),
        field: field.into(),
    }
}

pub fn validate(crd: &Value) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    let s = |p: &str| crd.pointer(p).and_then(Value::as_str).unwrap_or("");
    for (pointer, field) in [
        ("/spec/group", "spec.group"),
        ("/spec/names/plural", "spec.names.plural"),
        ("/spec/names/kind", "spec.names.kind"),
        ("/spec/scope", "spec.scope"),
    ] {
        if s(pointer).is_empty() {
            causes.push(required(field));
        }
    }
    let expected = format!("{}.{}", s("/spec/names/plural"), s("/spec/group"));
    if causes.is_empty() && meta::name(crd) != expected {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: \"{}\": must be spec.names.plural+\".\"+spec.group",
                meta::name(crd)
            ),
            field: "metadata.name".into(),
        });
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(required("spec.versions"));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage") == Some(&Value::Bool(true)))
            .count();
        if storage != 1 {
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {storage}: must have exactly one version marked as storage version"),
                field: "spec.versions".into(),
            });
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

fn condition(old: Option<&Value>, type_: &str, status: &str, reason: &str, message: &str) -> Value {
    let previous = old
        .and_then(|o| o.pointer("/status/conditions"))
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        });
    let since = previous
        .filter(|p| p.get("status").and_then(Value::as_str) == Some(status))
        .and_then(|p| p.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| json!(now_rfc3339()));
    json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
}

/// Sets the finalizer, accepted names, conditions and stored versions a real server reports.
pub fn prepare(old: Option<&Value>, crd: &mut Value) {
    if old.is_none() {
        let mut finalizers = meta::finalizers(crd);
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(CLEANUP_FINALIZER.to_string());
        }
        meta_mut(crd).insert("finalizers".into(), json!(finalizers));
    }
    let mut names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if names.get("singular").is_none() {
        let singular = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        names["singular"] = json!(singular);
    }
    if names.get("listKind").is_none() {
        let list_kind = format!(
            "{}List",
            names.get("kind").and_then(Value::as_str).unwrap_or("")
        );
        names["listKind"] = json!(list_kind);
    }
    let mut stored: Vec<Value> = old
        .and_then(|o| o.pointer("/status/storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage") == Some(&Value::Bool(true)))
        })
        .and_then(|v| v.get("name"))
        .cloned();
    if let Some(storage) = storage {
        if !stored.contains(&storage) {
            stored.push(storage);
        }
    }
    let terminating = meta::is_deleting(crd);
    let mut conditions = vec![
        condition(
            old,
            "NamesAccepted",
            "True",
            "NoConflicts",
            "no conflicts found",
        ),
        condition(
            old,
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
    ];
    if terminating {
        conditions.push(condition(
            old,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ));
    }
    crd["status"] =
        json!({"acceptedNames": names, "conditions": conditions, "storedVersions": stored});
}

pub fn mark_terminating(crd: &mut Value) {
    let snapshot = crd.clone();
    prepare(Some(&snapshot), crd);
}
