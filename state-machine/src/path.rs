//! ASL paths.
//!
//! Step Functions evaluates paths with Jayway JsonPath: a *definite* path (only member names and
//! indexes) yields the value itself, an indefinite one (wildcards, slices, filters, `..`) yields an
//! array of every match. RFC 9535 (serde_json_path) always yields node lists and is stricter about
//! member names (`$.delivery-partner` is valid ASL, invalid RFC 9535), so reference paths — the
//! definite subset the spec defines — are parsed and walked here, and only indefinite paths go to
//! serde_json_path, whose result is turned into an array like Jayway's.

use std::fmt;

use serde_json::Value;

/// Where a path starts: the state's input (`$`) or the context object (`$$`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Input,
    Context,
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Kind {
    Reference(Vec<Segment>),
    Query(Box<serde_json_path::JsonPath>),
}

/// A parsed ASL path.
#[derive(Debug, Clone)]
pub struct Path {
    src: String,
    root: Root,
    kind: Kind,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.src)
    }
}

impl Path {
    /// Parses any ASL path (reference path or JSONPath query).
    pub fn parse(src: &str) -> Result<Path, String> {
        let (root, rest) = split_root(src)?;
        match parse_segments(rest) {
            Ok(segments) => Ok(Path {
                src: src.to_owned(),
                root,
                kind: Kind::Reference(segments),
            }),
            Err(reference_err) => {
                let query = format!("${rest}");
                match serde_json_path::JsonPath::parse(&query) {
                    Ok(p) => Ok(Path {
                        src: src.to_owned(),
                        root,
                        kind: Kind::Query(Box::new(p)),
                    }),
                    Err(e) => Err(format!(
                        "{src:?} is not a valid path ({reference_err}; as JSONPath: {e})"
                    )),
                }
            }
        }
    }

    /// Parses a reference path: one that can only identify a single node.
    pub fn parse_reference(src: &str) -> Result<Path, String> {
        let (root, rest) = split_root(src)?;
        let segments =
            parse_segments(rest).map_err(|e| format!("{src:?} is not a reference path: {e}"))?;
        Ok(Path {
            src: src.to_owned(),
            root,
            kind: Kind::Reference(segments),
        })
    }

    pub fn root(&self) -> Root {
        self.root
    }

    pub fn as_str(&self) -> &str {
        &self.src
    }

    /// The segments when this is a reference path.
    pub fn segments(&self) -> Option<&[Segment]> {
        match &self.kind {
            Kind::Reference(s) => Some(s),
            Kind::Query(_) => None,
        }
    }

    /// Selects from `doc` (the input or the context object, per [`Path::root`]).
    /// `None` when a reference path does not match.
    pub fn select(&self, doc: &Value) -> Option<Value> {
        match &self.kind {
            Kind::Reference(segments) => lookup(doc, segments).cloned(),
            Kind::Query(q) => Some(Value::Array(
                q.query(doc).all().into_iter().cloned().collect(),
            )),
        }
    }

    /// Like [`Path::select`] but borrows (reference paths only; queries build a new array).
    pub fn exists(&self, doc: &Value) -> bool {
        match &self.kind {
            Kind::Reference(segments) => lookup(doc, segments).is_some(),
            Kind::Query(q) => !q.query(doc).is_empty(),
        }
    }
}

fn split_root(src: &str) -> Result<(Root, &str), String> {
    if let Some(rest) = src.strip_prefix("$$") {
        Ok((Root::Context, rest))
    } else if let Some(rest) = src.strip_prefix('$') {
        Ok((Root::Input, rest))
    } else {
        Err(format!("{src:?} is not a path: it must start with \"$\""))
    }
}

fn lookup<'a>(doc: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    let mut cur = doc;
    for seg in segments {
        cur = match (seg, cur) {
            (Segment::Field(name), Value::Object(map)) => map.get(name)?,
            (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Characters that make a dot-notation name an operator rather than a member name.
const OPERATOR_CHARS: &[char] = &['*', '@', ',', ':', '?', '(', ')', '\'', '"', ' '];

fn parse_segments(mut rest: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            if after.starts_with('.') {
                return Err("\"..\" (deep scan) selects many nodes".into());
            }
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() {
                return Err("empty member name".into());
            }
            if name.contains(OPERATOR_CHARS) {
                return Err(format!("{name:?} contains an operator"));
            }
            out.push(Segment::Field(name.to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let close_quote = after.chars().next().filter(|c| *c == '\'' || *c == '"');
            if let Some(q) = close_quote {
                let body = &after[1..];
                let end = body.find(q).ok_or("unterminated quoted name")?;
                let name = &body[..end];
                let tail = body[end + 1..]
                    .strip_prefix(']')
                    .ok_or("expected \"]\" after quoted name")?;
                out.push(Segment::Field(name.to_owned()));
                rest = tail;
            } else {
                let end = after.find(']').ok_or("unterminated \"[\"")?;
                let idx = &after[..end];
                let n: usize = idx
                    .parse()
                    .map_err(|_| format!("[{idx}] is not a single non-negative index"))?;
                out.push(Segment::Index(n));
                rest = &after[end + 1..];
            }
        } else {
            return Err(format!("unexpected {rest:?}"));
        }
    }
    Ok(out)
}

/// Writes `result` into `input` at `segments` (ResultPath semantics): missing objects on the way
/// are created; an existing non-object on the way (or an index out of range) is a match failure.
pub fn set_at(input: Value, segments: &[Segment], result: Value) -> Result<Value, String> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(result);
    };
    match (first, input) {
        (Segment::Field(name), Value::Object(mut map)) => {
            // In place: an existing key keeps its position (objects keep their key order).
            let slot = map
                .entry(name.clone())
                .or_insert_with(|| Value::Object(Default::default()));
            *slot = if rest.is_empty() {
                result
            } else {
                set_at(std::mem::take(slot), rest, result).map_err(|e| format!(".{name}{e}"))?
            };
            Ok(Value::Object(map))
        }
        (Segment::Index(i), Value::Array(mut items)) if *i < items.len() => {
            let child = std::mem::take(&mut items[*i]);
            items[*i] = if rest.is_empty() {
                result
            } else {
                set_at(child, rest, result).map_err(|e| format!("[{i}]{e}"))?
            };
            Ok(Value::Array(items))
        }
        (Segment::Field(name), other) => Err(format!(
            ": cannot set field {name:?} on a {}",
            type_name(&other)
        )),
        (Segment::Index(i), other) => {
            Err(format!(": cannot set index {i} on a {}", type_name(&other)))
        }
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_paths_select_single_values() {
        let doc = json!({"a": {"b-c": [10, 20]}, "x y": 1});
        let p = Path::parse("$.a.b-c[1]").unwrap();
        assert!(p.segments().is_some());
        assert_eq!(p.select(&doc), Some(json!(20)));
        assert_eq!(
            Path::parse("$['x y']").unwrap().select(&doc),
            Some(json!(1))
        );
        assert_eq!(Path::parse("$.a.nope").unwrap().select(&doc), None);
    }

    #[test]
    fn indefinite_paths_yield_arrays() {
        let doc = json!({"vals": [0, 10, 20, 30, 40, 50]});
        let p = Path::parse("$.vals[-3:]").unwrap();
        assert!(p.segments().is_none());
        assert_eq!(p.select(&doc), Some(json!([30, 40, 50])));
        assert!(Path::parse_reference("$.vals[*]").is_err());
        assert!(Path::parse("foo").is_err());
        assert!(Path::parse("$.a[?(@.x >").is_err());
    }

    #[test]
    fn set_at_creates_and_fails() {
        let out = set_at(
            json!({"a": 1}),
            &[Segment::Field("b".into()), Segment::Field("c".into())],
            json!(2),
        );
        assert_eq!(out, Ok(json!({"a": 1, "b": {"c": 2}})));
        let err = set_at(
            json!({"a": 1}),
            &[Segment::Field("a".into()), Segment::Field("c".into())],
            json!(2),
        );
        assert!(err.is_err());
    }
}
