//! Server-side apply and field management (`metadata.managedFields`).
//!
//! Ownership is tracked per leaf field; lists are atomic except the well-known associative lists
//! (see `fields::list_merge_keys`) and `metadata.finalizers` (a set).

use super::fields::{self, display_path, FieldSet, Path};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_owner(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    let Some(entries) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            ManagedEntry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                fields: e
                    .get("fieldsV1")
                    .map(fields::from_fields_v1)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields::to_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The fields a write through the main resource or `/status` may own.
fn scoped(set: FieldSet, status_subresource: bool, subresource: Option<&str>) -> FieldSet {
    match (status_subresource, subresource) {
        (true, Some("status")) => fields::filter_status(&set, false),
        (true, _) => fields::filter_status(&set, true),
        _ => set,
    }
}

/// A field ownership conflict: (manager, apiVersion, field path as the server prints it).
pub type Conflict = (String, String, String);

pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub force: bool,
    pub subresource: Option<&'a str>,
    pub status_subresource: bool,
}

/// Applies `applied` onto `live` (or onto nothing, for create-if-absent). Returns the merged
/// object with updated managedFields, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = live.map(read_managed).unwrap_or_default();
    let new_set = scoped(
        fields::fields_of(applied),
        req.status_subresource,
        req.subresource,
    );
    let mut result = live.cloned().unwrap_or_else(|| {
        let mut base = Map::new();
        for k in ["apiVersion", "kind", "metadata"] {
            if let Some(v) = applied.get(k) {
                base.insert(k.into(), v.clone());
            }
        }
        Value::Object(base)
    });

    if let Some(live) = live {
        let mut conflicts = Vec::new();
        let mut lost: Vec<(usize, Path)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.same_owner(req.manager, "Apply", req.subresource) {
                continue;
            }
            for path in &new_set {
                if path.last().map(String::as_str) == Some(".") || !entry.fields.contains(path) {
                    continue;
                }
                let (live_value, applied_value) = (
                    fields::value_at(live, path),
                    fields::value_at(applied, path),
                );
                // A map is a container, not a value: its fields conflict, not the map itself.
                let both_maps = live_value.is_some_and(Value::is_object)
                    && applied_value.is_some_and(Value::is_object);
                if live_value != applied_value && !both_maps {
                    conflicts.push((
                        entry.manager.clone(),
                        entry.api_version.clone(),
                        display_path(path),
                    ));
                    lost.push((i, path.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !req.force {
            return Err(conflicts);
        }
        for (i, path) in lost {
            entries[i].fields.remove(&path);
        }
    }

    merge_applied(&mut result, applied, "");

    let previous: FieldSet = entries
        .iter()
        .find(|e| e.same_owner(req.manager, "Apply", req.subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut removed: Vec<&Path> = previous
        .iter()
        .filter(|p| !new_set.contains(*p))
        .filter(|p| {
            !entries.iter().any(|e| {
                !e.same_owner(req.manager, "Apply", req.subresource) && e.fields.contains(*p)
            })
        })
        .collect();
    // Deepest first, so removing an element does not hide a field inside it.
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in removed {
        fields::remove_at(&mut result, path);
    }

    match entries
        .iter_mut()
        .find(|e| e.same_owner(req.manager, "Apply", req.subresource))
    {
        Some(e) => {
            e.fields = new_set;
            e.api_version = req.api_version.to_string();
            e.time = now();
        }
        None => entries.push(ManagedEntry {
            manager: req.manager.to_string(),
            operation: "Apply".into(),
            api_version: req.api_version.to_string(),
            time: now(),
            subresource: req.subresource.map(str::to_string),
            fields: new_set,
        }),
    }
    write_managed(&mut result, &entries);
    Ok(result)
}

/// Deep-merges an applied configuration into the live object: maps field by field,
/// associative lists element by element, everything else replaced.
fn merge_applied(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(live_map), Value::Object(applied_map)) => {
            for (k, v) in applied_map {
                if field.is_empty() && k == "metadata" {
                    merge_metadata(live_map, v);
                    continue;
                }
                match live_map.get_mut(k) {
                    Some(existing) => merge_applied(existing, v, k),
                    None => {
                        live_map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(live_items), Value::Array(applied_items)) if field == "finalizers" => {
            for item in applied_items {
                if !live_items.contains(item) {
                    live_items.push(item.clone());
                }
            }
        }
        (Value::Array(live_items), Value::Array(applied_items)) => {
            match fields::list_merge_keys(field, applied_items).filter(|keys| {
                live_items
                    .iter()
                    .all(|i| keys.iter().all(|k| i.get(k).is_some()))
            }) {
                Some(keys) => {
                    for item in applied_items {
                        let pos = live_items
                            .iter()
                            .position(|l| keys.iter().all(|k| l.get(k) == item.get(k)));
                        match pos {
                            Some(i) => merge_applied(&mut live_items[i], item, field),
                            None => live_items.push(item.clone()),
                        }
                    }
                }
                None => *live_items = applied_items.clone(),
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

fn merge_metadata(live_map: &mut Map<String, Value>, applied_meta: &Value) {
    let meta = live_map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
        if let Some(v) = applied_meta.get(k) {
            match meta.get_mut(k) {
                Some(existing) => merge_applied(existing, v, k),
                None => {
                    if let Some(m) = meta.as_object_mut() {
                        m.insert(k.into(), v.clone());
                    }
                }
            }
        }
    }
}

/// Records a non-apply write: `manager` (operation Update) takes ownership of the fields it
/// changed, other managers lose them, and fields that disappeared are owned by nobody.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    status_subresource: bool,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_fields = scoped(fields::fields_of(new), status_subresource, subresource);
    let old_fields = old
        .map(|o| scoped(fields::fields_of(o), status_subresource, subresource))
        .unwrap_or_default();
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| old.is_none_or(|o| fields::value_at(o, p) != fields::value_at(new, p)))
        .cloned()
        .collect();
    let gone: Vec<&Path> = old_fields
        .iter()
        .filter(|p| !new_fields.contains(*p))
        .collect();
    for entry in entries.iter_mut() {
        entry
            .fields
            .retain(|p| !changed.contains(p) && !gone.contains(&p));
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.same_owner(manager, "Update", subresource))
        {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now();
                e.api_version = api_version.to_string();
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now(),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(manager: &'a str, force: bool) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            api_version: "v1",
            force,
            subresource: None,
            status_subresource: false,
        }
    }

    #[test]
    fn conflicts_only_on_differing_values_and_force_takes_over() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1", "y": "2"}});
        let live = apply(None, &a, &req("alice", false)).unwrap_or_default();
        let same = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}});
        assert!(apply(Some(&live), &same, &req("bob", false)).is_ok());
        let differs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "9"}});
        let conflicts = apply(Some(&live), &differs, &req("bob", false))
            .err()
            .unwrap_or_default();
        assert_eq!(
            conflicts,
            vec![("alice".to_string(), "v1".to_string(), ".data.x".to_string())]
        );
        let forced = apply(Some(&live), &differs, &req("bob", true)).unwrap_or_default();
        assert_eq!(forced["data"], json!({"x": "9", "y": "2"}));
        // alice drops y from her config: it is removed, since nobody else owns it.
        let alice2 =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
        let after = apply(Some(&forced), &alice2, &req("alice", false)).unwrap_or_default();
        assert_eq!(after["data"], json!({"x": "9"}));
    }
}
