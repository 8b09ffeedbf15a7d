//! Custom resources against their CRD's `openAPIV3Schema`, as the real server does it:
//! prune unknown fields (or reject them with fieldValidation=Strict), apply defaults, then
//! validate through a JSON Schema validator compiled from the structural schema.

use super::errors::Cause;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Compiled validators per (group, plural, version), built on first use and dropped when the
/// CRD changes, so loading big CRD bundles stays cheap.
#[derive(Default)]
pub struct ValidatorCache {
    compiled: Mutex<HashMap<(String, String, String), Arc<jsonschema::Validator>>>,
}

impl ValidatorCache {
    pub fn forget(&self, group: &str, plural: &str) {
        if let Ok(mut map) = self.compiled.lock() {
            map.retain(|(g, p, _), _| !(g == group && p == plural));
        }
    }

    pub fn get(
        &self,
        group: &str,
        plural: &str,
        version: &str,
        schema: &Value,
    ) -> Result<Arc<jsonschema::Validator>, String> {
        let key = (group.to_string(), plural.to_string(), version.to_string());
        if let Some(v) = self.compiled.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let converted = to_json_schema(schema, true);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&converted)
            .map_err(|e| format!("compiling the schema of {plural}.{group}/{version}: {e}"))?;
        let validator = Arc::new(validator);
        if let Ok(mut map) = self.compiled.lock() {
            map.insert(key, validator.clone());
        }
        Ok(validator)
    }
}

/// Translates an OpenAPI v3 structural schema into JSON Schema 2020-12.
pub fn to_json_schema(schema: &Value, root: bool) -> Value {
    let Some(m) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "properties" | "patternProperties" => {
                let mut props: Map<String, Value> = v
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(pk, pv)| (pk.clone(), to_json_schema(pv, false)))
                            .collect()
                    })
                    .unwrap_or_default();
                if root {
                    // metadata is validated by the server itself, not by the CRD's schema.
                    props.remove("metadata");
                }
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "not" => {
                out.insert(k.clone(), to_json_schema(v, false));
            }
            "additionalProperties" => {
                let converted = if v.is_object() {
                    to_json_schema(v, false)
                } else {
                    v.clone()
                };
                out.insert(k.clone(), converted);
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = v
                    .as_array()
                    .map(|a| a.iter().map(|s| to_json_schema(s, false)).collect())
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Array(list));
            }
            "type" | "enum" | "required" | "minimum" | "maximum" | "minLength" | "maxLength"
            | "pattern" | "minItems" | "maxItems" | "uniqueItems" | "minProperties"
            | "maxProperties" | "multipleOf" => {
                out.insert(k.clone(), v.clone());
            }
            // description, format, default, example, x-kubernetes-* (CEL rules are not evaluated).
            _ => {}
        }
    }
    for (exclusive, inclusive) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if m.get(exclusive) == Some(&Value::Bool(true)) {
            if let Some(limit) = out.remove(inclusive) {
                out.insert(exclusive.into(), limit);
            }
        }
    }
    if m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        out.insert("type".into(), json!(["integer", "string"]));
    }
    if m.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), json!([t, "null"]));
        }
        if let Some(Value::Array(mut values)) = out.get("enum").cloned() {
            values.push(Value::Null);
            out.insert("enum".into(), Value::Array(values));
        }
    }
    Value::Object(out)
}

fn preserves_unknown(schema: &Value) -> bool {
    schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

/// Drops fields the schema does not declare; returns their paths (`spec.foo`).
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    if let Some(map) = obj.as_object_mut() {
        let props = schema.get("properties").and_then(Value::as_object);
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.and_then(|p| p.get(&k)) {
                Some(child_schema) => {
                    if let Some(child) = map.get_mut(&k) {
                        prune_value(child, child_schema, &k, &mut unknown);
                    }
                }
                None if preserves_unknown(schema) => {}
                None => {
                    map.remove(&k);
                    unknown.push(k);
                }
            }
        }
    }
    // Sorted, so the report does not depend on the object's key order (serde_json keeps it).
    unknown.sort();
    unknown
}

fn prune_value(value: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let embedded = schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in map.iter_mut() {
                    prune_value(v, additional, &format!("{path}.{k}"), unknown);
                }
                return;
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child_path = format!("{path}.{k}");
                match props.and_then(|p| p.get(&k)) {
                    Some(child_schema) => {
                        if let Some(child) = map.get_mut(&k) {
                            prune_value(child, child_schema, &child_path, unknown);
                        }
                    }
                    None if preserves_unknown(schema)
                        || schema.get("additionalProperties") == Some(&Value::Bool(true))
                        || (embedded
                            && matches!(k.as_str(), "apiVersion" | "kind" | "metadata")) => {}
                    None => {
                        map.remove(&k);
                        unknown.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills in schema defaults for absent fields of objects that are present.
pub fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, prop_schema) in props {
                    if k == "metadata" {
                        continue;
                    }
                    if !map.contains_key(k) {
                        if let Some(default) = prop_schema.get("default") {
                            map.insert(k.clone(), default.clone());
                        }
                    }
                    if let Some(child) = map.get_mut(k) {
                        apply_defaults(child, prop_schema);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for v in map.values_mut() {
                    apply_defaults(v, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

/// Validates and returns the causes, worded like the apiserver's field errors.
pub fn validate(validator: &jsonschema::Validator, obj: &Value) -> Vec<Cause> {
    let mut instance = obj.clone();
    if let Some(m) = instance.as_object_mut() {
        m.remove("metadata");
    }
    let mut causes = Vec::new();
    for error in validator.iter_errors(&instance) {
        let mut field = String::new();
        for segment in error.instance_path().iter() {
            match segment {
                LocationSegment::Property(p) => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(&p);
                }
                LocationSegment::Index(i) => field.push_str(&format!("[{i}]")),
            }
        }
        let value = error.instance();
        let (reason, message) = match error.kind() {
            ValidationErrorKind::Enum { options } => {
                let supported: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(short).collect())
                    .unwrap_or_default();
                (
                    "FieldValueNotSupported",
                    format!(
                        "Unsupported value: {}: supported values: {}",
                        short(value),
                        supported.join(", ")
                    ),
                )
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                field = if field.is_empty() {
                    name.to_string()
                } else {
                    format!("{field}.{name}")
                };
                ("FieldValueRequired", "Required value".to_string())
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(set) => set
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join("/"),
                };
                (
                    "FieldValueTypeInvalid",
                    format!(
                        "Invalid value: \"{}\": {field} in body must be of type {expected}: \"{}\"",
                        type_name(value),
                        type_name(value)
                    ),
                )
            }
            _ => (
                "FieldValueInvalid",
                format!("Invalid value: {}: {error}", short(value)),
            ),
        };
        causes.push(Cause {
            reason: reason.into(),
            message,
            field,
        });
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["mode"],
                    "properties": {
                        "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "maybe": {"type": "string", "nullable": true}
                    }
                }
            }
        })
    }

    #[test]
    fn prunes_defaults_and_validates_with_field_paths() {
        let cache = ValidatorCache::default();
        let validator = cache
            .get("g", "p", "v1", &schema())
            .map_err(|e| e.to_string());
        let Ok(validator) = validator else {
            panic!("{validator:?}")
        };
        let mut obj = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "x"},
            "spec": {"port": "http", "free": {"any": 1}, "maybe": null, "bogus": 1}, "extra": true});
        let unknown = prune(&mut obj, &schema());
        assert_eq!(unknown, vec!["extra".to_string(), "spec.bogus".to_string()]);
        apply_defaults(&mut obj, &schema());
        assert_eq!(obj["spec"]["mode"], json!("A"));
        assert!(validate(&validator, &obj).is_empty());
        obj["spec"]["mode"] = json!("C");
        let causes = validate(&validator, &obj);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.mode");
        assert_eq!(
            causes[0].message,
            "Unsupported value: \"C\": supported values: \"A\", \"B\""
        );
        obj["spec"]["port"] = json!(true);
        obj["spec"]["mode"] = json!("B");
        assert_eq!(validate(&validator, &obj)[0].field, "spec.port");
    }
}
