//! A HelmRelease's values as helm-controller computes them: every `spec.valuesFrom` entry in
//! order, later ones overriding earlier ones, then `spec.values` (Flux helm-controller API,
//! HelmRelease "Values references": "merged in the order given … spec.values is merged last";
//! a `targetPath` sets one value, `valuesKey` defaults to `values.yaml`). References are looked
//! up in the tree itself; one not in the tree (made outside Git) contributes nothing.

use base64::Engine;
use serde_json::{Map, Value};

use super::Object;

/// Deep merge as Helm merges values: maps merge key by key, anything else is replaced.
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (into, from) => *into = from.clone(),
    }
}

/// The text under `key` of a ConfigMap (`data`) or Secret (`stringData`, else base64 `data`).
fn referenced_text(object: &Object<'_>, key: &str) -> Option<String> {
    if let Some(text) = object
        .value
        .pointer("/stringData")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
    {
        return Some(text.to_string());
    }
    let data = object.value.pointer("/data")?.get(key)?.as_str()?;
    if object.doc.kind() == "Secret" {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?;
        String::from_utf8(bytes).ok()
    } else {
        Some(data.to_string())
    }
}

/// `a.b.c` → `{"a": {"b": {"c": value}}}`.
fn at_path(path: &str, value: Value) -> Value {
    path.rsplit('.').fold(value, |inner, key| {
        let mut map = Map::new();
        map.insert(key.to_string(), inner);
        Value::Object(map)
    })
}

/// The values helm-controller would install `release` with, as far as the tree shows them.
pub fn effective(objects: &[Object<'_>], release: &Object<'_>) -> Value {
    let mut values = Value::Object(Map::new());
    let refs = release
        .value
        .pointer("/spec/valuesFrom")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for reference in &refs {
        let kind = reference["kind"].as_str().unwrap_or("");
        let name = reference["name"].as_str().unwrap_or("");
        let key = reference["valuesKey"].as_str().unwrap_or("values.yaml");
        let found = objects.iter().find(|o| {
            o.doc.group().is_empty()
                && o.doc.kind() == kind
                && o.name() == name
                && o.namespace() == release.namespace()
        });
        let Some(text) = found.and_then(|o| referenced_text(o, key)) else {
            continue;
        };
        let piece = match reference["targetPath"].as_str().filter(|p| !p.is_empty()) {
            Some(path) => at_path(path, Value::String(text)),
            None => match serde_yaml_ng::from_str::<Value>(&text) {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        merge(&mut values, &piece);
    }
    if let Some(inline) = release.value.pointer("/spec/values") {
        merge(&mut values, inline);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_sources_override_earlier_and_maps_merge() {
        let mut values = json!({"grafana": {"enabled": true, "adminPassword": "prom-operator"}});
        merge(
            &mut values,
            &json!({"grafana": {"adminPassword": ""}, "kubeProxy": {"enabled": false}}),
        );
        assert_eq!(
            values,
            json!({"grafana": {"enabled": true, "adminPassword": ""}, "kubeProxy": {"enabled": false}})
        );
        assert_eq!(at_path("a.b", json!("x")), json!({"a": {"b": "x"}}));
    }
}
