//! The pinned CRDs (Flux, Istio, cert-manager) as JSON Schemas: each served version's
//! `openAPIV3Schema` converted the way the API server reads it, then used to validate objects.
//!
//! Conversion: a schema node that lists `properties` (and does not preserve unknown fields, is not
//! an embedded resource and is not inside a junctor) gets `additionalProperties: false`, so a typo'd
//! field is an error instead of being pruned silently; `x-kubernetes-int-or-string` becomes
//! integer-or-string; `nullable` admits `null`; OpenAPI 3.0's boolean `exclusiveMinimum/Maximum`
//! become numeric bounds. CEL rules (`x-kubernetes-validations`) and `format` are not checked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::load::{is_yaml, parse_document, split_documents};

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("the CRD cache {0} is missing or incomplete (no .verified marker): run `make crds`")]
    Missing(PathBuf),
    #[error("cannot read the CRD cache {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CRD file {file} does not parse: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("the CRD cache {0} holds no CustomResourceDefinitions: run `make crds`")]
    Empty(PathBuf),
    #[error("the schema of {gvk} does not compile: {message}")]
    Compile { gvk: String, message: String },
}

type Gvk = (String, String, String);

/// Every served version of every CRD in the cache.
pub struct CrdSet {
    schemas: HashMap<Gvk, Value>,
    compiled: HashMap<Gvk, jsonschema::Validator>,
    groups: BTreeSet<String>,
    served: BTreeMap<(String, String), Vec<String>>,
}

/// Why an object could not be validated.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The kind exists in the group, but not at this version.
    VersionNotServed { served: Vec<String> },
    /// The group is covered by the CRDs, but has no such kind.
    UnknownKind,
}

impl CrdSet {
    /// Load `<dir>/*.yaml`; the directory must carry the `.verified` marker `fetch-crds.sh` writes.
    pub fn load(dir: &Path) -> Result<Self, CrdError> {
        if !dir.join(".verified").is_file() {
            return Err(CrdError::Missing(dir.to_path_buf()));
        }
        let read_err = |source| CrdError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if is_yaml(&path) {
                files.push(path);
            }
        }
        files.sort();
        let mut set = CrdSet {
            schemas: HashMap::new(),
            compiled: HashMap::new(),
            groups: BTreeSet::new(),
            served: BTreeMap::new(),
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| CrdError::Read {
                path: file.clone(),
                source,
            })?;
            for (_, chunk) in split_documents(&text) {
                let doc = parse_document(&chunk).map_err(|message| CrdError::Parse {
                    file: file.clone(),
                    message,
                })?;
                if let Some(doc) = doc {
                    set.add_crd(&doc);
                }
            }
        }
        if set.schemas.is_empty() {
            return Err(CrdError::Empty(dir.to_path_buf()));
        }
        Ok(set)
    }

    fn add_crd(&mut self, doc: &Value) {
        if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            return;
        }
        let (Some(group), Some(kind)) = (
            doc.pointer("/spec/group").and_then(Value::as_str),
            doc.pointer("/spec/names/kind").and_then(Value::as_str),
        ) else {
            return;
        };
        self.groups.insert(group.to_owned());
        let versions = doc
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for version in versions {
            let served = version
                .get("served")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let Some(name) = version.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !served {
                continue;
            }
            let schema = version
                .pointer("/schema/openAPIV3Schema")
                .map(root_schema)
                .unwrap_or_else(|| json!({}));
            self.served
                .entry((group.to_owned(), kind.to_owned()))
                .or_default()
                .push(name.to_owned());
            self.schemas
                .insert((group.to_owned(), name.to_owned(), kind.to_owned()), schema);
        }
    }

    /// Does the cache define this API group (so objects in it must validate)?
    pub fn covers_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// Validate `object`; `Ok(messages)` lists schema violations (empty: valid).
    pub fn validate(
        &mut self,
        group: &str,
        version: &str,
        kind: &str,
        object: &Value,
    ) -> Result<Result<Vec<String>, Lookup>, CrdError> {
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        if !self.compiled.contains_key(&key) {
            let Some(schema) = self.schemas.get(&key) else {
                return Ok(Err(
                    match self.served.get(&(group.to_owned(), kind.to_owned())) {
                        Some(served) => Lookup::VersionNotServed {
                            served: served.clone(),
                        },
                        None => Lookup::UnknownKind,
                    },
                ));
            };
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(false)
                .build(schema)
                .map_err(|err| CrdError::Compile {
                    gvk: format!("{group}/{version} {kind}"),
                    message: err.to_string(),
                })?;
            self.compiled.insert(key.clone(), validator);
        }
        let Some(validator) = self.compiled.get(&key) else {
            return Ok(Ok(Vec::new()));
        };
        let messages = validator
            .iter_errors(object)
            .map(|err| {
                let at = err.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("at {at}: {err}")
            })
            .collect();
        Ok(Ok(messages))
    }
}

/// The object's root: Kubernetes always admits `apiVersion`, `kind` and `metadata`.
fn root_schema(schema: &Value) -> Value {
    let mut root = convert(schema, false);
    if let Some(obj) = root.as_object_mut() {
        if let Some(Value::Object(props)) = obj.get_mut("properties") {
            for (field, schema) in [
                ("apiVersion", json!({"type": "string"})),
                ("kind", json!({"type": "string"})),
                ("metadata", json!({"type": "object"})),
            ] {
                props.entry(field).or_insert(schema);
            }
        }
    }
    root
}

/// Keywords copied as they are (same meaning in OpenAPI 3.0 and JSON Schema 2020-12).
const COPIED: &[&str] = &[
    "type",
    "required",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
];

/// Convert one structural-schema node. `in_junctor`: inside allOf/anyOf/oneOf/not, where
/// Kubernetes only allows value validations, so nothing is closed there.
pub fn convert(schema: &Value, in_junctor: bool) -> Value {
    let Some(node) = schema.as_object() else {
        return schema.clone();
    };
    let flag = |key: &str| node.get(key).and_then(Value::as_bool).unwrap_or(false);
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let embedded = flag("x-kubernetes-embedded-resource");
    let int_or_string = flag("x-kubernetes-int-or-string");
    let nullable = flag("nullable");

    let mut out = Map::new();
    for (key, value) in node {
        match key.as_str() {
            "properties" => {
                let props = value
                    .as_object()
                    .map(|props| {
                        props
                            .iter()
                            .map(|(name, s)| (name.clone(), convert(s, in_junctor)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" => {
                out.insert(key.clone(), convert(value, in_junctor));
            }
            "additionalProperties" => {
                let converted = match value {
                    Value::Bool(_) => value.clone(),
                    other => convert(other, in_junctor),
                };
                out.insert(key.clone(), converted);
            }
            "allOf" | "anyOf" | "oneOf" => {
                let branches = value
                    .as_array()
                    .map(|branches| branches.iter().map(|b| convert(b, true)).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(branches));
            }
            "not" => {
                out.insert(key.clone(), convert(value, true));
            }
            k if COPIED.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }

    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if node.get(exclusive).and_then(Value::as_bool) == Some(true) {
            if let Some(limit) = out.remove(bound) {
                out.insert(exclusive.to_owned(), limit);
            }
        }
    }
    if int_or_string {
        out.remove("type");
        if !out.contains_key("anyOf") {
            out.insert(
                "anyOf".to_owned(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
        }
    }
    if nullable {
        if let Some(Value::String(ty)) = out.get("type").cloned() {
            out.insert("type".to_owned(), json!([ty, "null"]));
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    let has_properties = out.contains_key("properties");
    if has_properties
        && !preserve
        && !embedded
        && !in_junctor
        && !out.contains_key("additionalProperties")
    {
        out.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::convert;
    use serde_json::json;

    #[test]
    fn closes_objects_and_maps_kubernetes_extensions() {
        let crd = json!({
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                "maybe": {"type": "string", "nullable": true},
                "count": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
            },
        });
        let schema = convert(&crd, false);
        let v = jsonschema::validator_for(&schema).expect("compiles");
        assert!(v.is_valid(&json!({"port": 80, "free": {"x": 1}, "maybe": null, "count": 1})));
        assert!(v.is_valid(&json!({"port": "http"})));
        assert!(!v.is_valid(&json!({"typo": 1})));
        assert!(!v.is_valid(&json!({"count": 0})));
        assert!(!v.is_valid(&json!({"port": true})));
    }
}
