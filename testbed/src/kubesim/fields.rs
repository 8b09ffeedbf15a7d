//! Field sets in the `FieldsV1` format of `metadata.managedFields`.
//!
//! A path is a list of FieldsV1 keys: `f:<field>`, `k:<json keys>` (element of an associative
//! list), `v:<json>` (element of a set list) and a final `.` meaning "the element itself".

use serde_json::{Map, Value};
use std::collections::BTreeSet;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// The merge keys of a well-known associative list, if every element carries them.
/// Other lists are atomic (owned and replaced as a whole).
pub fn list_merge_keys(field: &str, items: &[Value]) -> Option<Vec<String>> {
    let candidates: &[&[&str]] = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => &[&["name"]],
        "volumeMounts" => &[&["mountPath"]],
        "ports" => &[&["containerPort"], &["port"]],
        "conditions" => &[&["type"]],
        "ownerReferences" => &[&["uid"]],
        _ => return None,
    };
    candidates
        .iter()
        .find(|keys| {
            !items.is_empty()
                && items
                    .iter()
                    .all(|i| keys.iter().all(|k| i.get(*k).is_some_and(|v| !v.is_null())))
        })
        .map(|keys| keys.iter().map(|k| k.to_string()).collect())
}

fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

pub fn element_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), item.get(k).cloned().unwrap_or(Value::Null));
    }
    format!("k:{}", Value::Object(m))
}

/// The leaf fields a (partial) object sets. `metadata` contributes only labels, annotations,
/// finalizers and ownerReferences; `apiVersion` and `kind` are never owned.
pub fn fields_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                for mk in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(mv) = v.get(mk) {
                        let mut prefix = vec!["f:metadata".to_string(), format!("f:{mk}")];
                        collect(mv, mk, &mut prefix, &mut out);
                    }
                }
            }
            _ => {
                let mut prefix = vec![format!("f:{k}")];
                collect(v, k, &mut prefix, &mut out);
            }
        }
    }
    out
}

fn collect(value: &Value, field: &str, prefix: &mut Path, out: &mut FieldSet) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                prefix.push(format!("f:{k}"));
                collect(v, k, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) if is_set_list(field) && !items.is_empty() => {
            for item in items {
                prefix.push(format!("v:{item}"));
                out.insert(prefix.clone());
                prefix.pop();
            }
        }
        Value::Array(items) => match list_merge_keys(field, items) {
            Some(keys) => {
                for item in items {
                    prefix.push(element_key(item, &keys));
                    prefix.push(".".to_string());
                    out.insert(prefix.clone());
                    prefix.pop();
                    if let Some(m) = item.as_object() {
                        for (k, v) in m {
                            prefix.push(format!("f:{k}"));
                            collect(v, k, prefix, out);
                            prefix.pop();
                        }
                    }
                    prefix.pop();
                }
            }
            None => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// Only the paths under `status` (or, with `invert`, all but those).
pub fn filter_status(set: &FieldSet, invert: bool) -> FieldSet {
    set.iter()
        .filter(|p| (p.first().map(String::as_str) == Some("f:status")) != invert)
        .cloned()
        .collect()
}

pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for element in path {
            let entry = node
                .entry(element.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            node = next;
        }
    }
    Value::Object(root)
}

pub fn from_fields_v1(value: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    fn walk(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    prefix.push(k.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.insert(prefix.clone());
                }
            }
        }
    }
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn find_element<'a>(items: &'a [Value], element: &str) -> Option<usize> {
    if let Some(json) = element.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(json).ok()?;
        items
            .iter()
            .position(|i| keys.iter().all(|(k, v)| i.get(k) == Some(v)))
    } else if let Some(json) = element.strip_prefix("v:") {
        let wanted: Value = serde_json::from_str(json).ok()?;
        items.iter().position(|i| *i == wanted)
    } else {
        let _: Option<&'a Value> = None;
        None
    }
}

pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = obj;
    for element in path {
        if element == "." {
            return Some(node);
        }
        node = if let Some(f) = element.strip_prefix("f:") {
            node.get(f)?
        } else {
            let items = node.as_array()?;
            &items[find_element(items, element)?]
        };
    }
    Some(node)
}

/// Removes the field (or list element) a path names; missing paths are ignored.
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let (target, parents) = match path.last().map(String::as_str) {
        Some(".") => (&path[path.len() - 2], &path[..path.len() - 2]),
        Some(_) => (&path[path.len() - 1], &path[..path.len() - 1]),
        None => return,
    };
    let mut node = obj;
    for element in parents {
        let next = if let Some(f) = element.strip_prefix("f:") {
            node.get_mut(f)
        } else {
            match node.as_array_mut() {
                Some(items) => match find_element(items, element) {
                    Some(i) => items.get_mut(i),
                    None => None,
                },
                None => None,
            }
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Some(f) = target.strip_prefix("f:") {
        if let Some(m) = node.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = node.as_array_mut() {
        if let Some(i) = find_element(items, target) {
            items.remove(i);
        }
    }
}

/// `.spec.containers[name="web"].image`, as the real server prints field paths in conflicts.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(f) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(json) = element.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
            let inner: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", inner.join(",")));
        } else if let Some(v) = element.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_fields_v1_with_keyed_lists() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"a": "b"}, "finalizers": ["f1"]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
        });
        let set = fields_of(&obj);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"],
            json!({})
        );
        assert_eq!(v1["f:metadata"]["f:finalizers"]["v:\"f1\""], json!({}));
        assert!(v1["f:metadata"].get("f:name").is_none());
        assert_eq!(from_fields_v1(&v1), set);
        let image_path: Path = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(value_at(&obj, &image_path), Some(&json!("nginx")));
        assert_eq!(
            display_path(&image_path),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
        let mut copy = obj.clone();
        let mut element = image_path.clone();
        element.pop();
        element.push(".".into());
        remove_at(&mut copy, &element);
        assert_eq!(copy["spec"]["template"]["spec"]["containers"], json!([]));
    }
}
