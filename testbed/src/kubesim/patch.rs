//! JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation of strategic merge
//! patch (merge patch that merges well-known lists by key).

use super::fields::list_merge_keys;
use serde_json::Value;

pub fn merge_patch(target: &mut Value, patch: &Value) {
    strategic_merge(target, patch, false, "");
}

/// Strategic merge patch: merge patch, except lists of objects with a known merge key
/// (containers by name, ...) are merged element by element.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    strategic_merge(target, patch, true, "");
}

fn strategic_merge(target: &mut Value, patch: &Value, strategic: bool, field: &str) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if strategic && key.starts_with("$") {
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        let existing = target_map.entry(key.clone()).or_insert(Value::Null);
        match (strategic, existing, value) {
            (true, Value::Array(current), Value::Array(incoming)) => {
                if let Some(keys) = list_merge_keys(key, incoming) {
                    *current = merge_keyed_list(current, incoming, &keys, key);
                } else {
                    *current = incoming.clone();
                }
            }
            (_, existing, value) if value.is_object() => {
                strategic_merge(existing, value, strategic, key)
            }
            (_, existing, value) => *existing = value.clone(),
        }
    }
    let _ = field;
}

/// A list merged by key, ordered as apimachinery's strategic merge orders it
/// (pkg/util/strategicpatch/patch.go, normalizeElementOrder and mergeSortedSlice): the patch's
/// items in patch order, the live items the patch does not name slotted in before the first
/// patch item that comes after them in the live list. New items therefore come first:
/// adding `third` to `[side, nginx]` gives `[third, side, nginx]`.
fn merge_keyed_list(live: &[Value], patch: &[Value], keys: &[String], field: &str) -> Vec<Value> {
    let same = |a: &Value, b: &Value| keys.iter().all(|k| a.get(k) == b.get(k));
    let live_index = |item: &Value| live.iter().position(|l| same(l, item));
    let patched: Vec<Value> = patch
        .iter()
        .map(|item| match live_index(item) {
            Some(i) => {
                let mut merged = live[i].clone();
                strategic_merge(&mut merged, item, true, field);
                merged
            }
            None => item.clone(),
        })
        .collect();
    let live_only: Vec<&Value> = live
        .iter()
        .filter(|l| !patch.iter().any(|p| same(l, p)))
        .collect();
    let (mut left, mut right) = (
        live_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    let mut merged = Vec::new();
    loop {
        match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => {
                let before =
                    matches!((live_index(l), live_index(r)), (Some(li), Some(ri)) if li < ri);
                if before {
                    merged.extend(left.next().cloned());
                } else {
                    merged.extend(right.next());
                }
            }
            (Some(_), None) => merged.extend(left.next().cloned()),
            (None, Some(_)) => merged.extend(right.next()),
            (None, None) => return merged,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JsonPatchError {
    #[error("the patch is not a JSON array of operations")]
    NotAList,
    #[error("operation {0}: {1}")]
    Op(usize, String),
    #[error("testing value {0} failed")]
    TestFailed(String),
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid pointer {pointer}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_and_key<'a>(
    doc: &'a mut Value,
    pointer: &str,
) -> Result<(&'a mut Value, String), String> {
    let mut tokens = split_pointer(pointer)?;
    let last = tokens.pop().ok_or("cannot address the document root")?;
    let mut node = doc;
    for t in tokens {
        node = match node {
            Value::Object(m) => m
                .get_mut(&t)
                .ok_or_else(|| format!("missing path {pointer}"))?,
            Value::Array(a) => {
                let i: usize = t
                    .parse()
                    .map_err(|_| format!("invalid index in {pointer}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("index out of range in {pointer}"))?
            }
            _ => return Err(format!("missing path {pointer}")),
        };
    }
    Ok((node, last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, key) = parent_and_key(doc, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(key, value);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = key
                .parse()
                .map_err(|_| format!("invalid index in {path}"))?;
            if i > a.len() {
                return Err(format!("index out of range in {path}"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("missing path {path}")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, key) = parent_and_key(doc, path)?;
    match parent {
        Value::Object(m) => m.remove(&key).ok_or_else(|| format!("missing path {path}")),
        Value::Array(a) => {
            let i: usize = key
                .parse()
                .map_err(|_| format!("invalid index in {path}"))?;
            if i >= a.len() {
                return Err(format!("index out of range in {path}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("missing path {path}")),
    }
}

fn get(doc: &Value, path: &str) -> Result<Value, String> {
    doc.pointer(path)
        .cloned()
        .ok_or_else(|| format!("missing path {path}"))
}

pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), JsonPatchError> {
    let ops = patch.as_array().ok_or(JsonPatchError::NotAList)?;
    for (i, op) in ops.iter().enumerate() {
        let err = |m: String| JsonPatchError::Op(i, m);
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| err("missing op".into()))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| err("missing path".into()))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| err("missing value".into()))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| err("missing from".into()))
        };
        match name {
            "add" => add(doc, path, value()?).map_err(err)?,
            "remove" => {
                remove(doc, path).map_err(err)?;
            }
            "replace" => {
                remove(doc, path).map_err(err)?;
                add(doc, path, value()?).map_err(err)?;
            }
            "move" => {
                let moved = remove(doc, from()?).map_err(err)?;
                add(doc, path, moved).map_err(err)?;
            }
            "copy" => {
                let copied = get(doc, from()?).map_err(err)?;
                add(doc, path, copied).map_err(err)?;
            }
            "test" => {
                if get(doc, path).map_err(err)? != value()? {
                    return Err(JsonPatchError::TestFailed(path.to_string()));
                }
            }
            other => return Err(err(format!("unknown op {other}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut doc =
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]});
        strategic_merge_patch(
            &mut doc,
            &json!({"containers": [{"name": "b", "image": "z"}]}),
        );
        assert_eq!(
            doc,
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]})
        );
    }

    #[test]
    fn new_items_of_a_keyed_list_come_first() {
        let mut doc = json!({"containers": [{"name": "side"}, {"name": "nginx"}]});
        strategic_merge_patch(&mut doc, &json!({"containers": [{"name": "third"}]}));
        assert_eq!(
            doc,
            json!({"containers": [{"name": "third"}, {"name": "side"}, {"name": "nginx"}]})
        );
        let mut doc = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        strategic_merge_patch(
            &mut doc,
            &json!({"containers": [{"name": "c"}, {"name": "a", "image": "i"}]}),
        );
        assert_eq!(
            doc,
            json!({"containers": [{"name": "c"}, {"name": "a", "image": "i"}, {"name": "b"}]})
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({"a": [1, 2], "b": {"c": 1}});
        let patch = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": 2},
            {"op": "copy", "from": "/b", "path": "/d"},
            {"op": "remove", "path": "/a/0"},
            {"op": "test", "path": "/d/c", "value": 2}
        ]);
        assert_eq!(json_patch(&mut doc, &patch), Ok(()));
        assert_eq!(doc, json!({"a": [2, 3], "b": {"c": 2}, "d": {"c": 2}}));
        assert!(json_patch(
            &mut doc,
            &json!([{"op": "test", "path": "/d/c", "value": 9}])
        )
        .is_err());
        assert!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }
}
