//! Payload templates (Parameters, ResultSelector, ItemSelector): JSON whose `key.$` fields take
//! their value from a path or an intrinsic function call.

use serde_json::{Map, Value};

use crate::error::{names, Failure};
use crate::intrinsic::{self, looks_like_call, Call, Env};
use crate::path::{Path, Root};

#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Path(Path),
    Call(Call),
}

impl Template {
    /// Compiles `v`; problems are reported as `(location suffix, message)` pairs.
    pub fn compile(v: &Value, at: &str, errs: &mut Vec<(String, String)>) -> Template {
        let t = compile(v, at, errs);
        match t {
            Template::Object(_) | Template::Array(_) if !is_dynamic(&t) => {
                Template::Literal(v.clone())
            }
            other => other,
        }
    }

    /// The value of a static top-level field, if the template is an object and the field literal.
    pub fn literal_field(&self, key: &str) -> Option<&Value> {
        match self {
            Template::Literal(Value::Object(m)) => m.get(key),
            Template::Object(fields) => fields.iter().find_map(|(k, t)| match t {
                Template::Literal(v) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    pub fn eval(&self, env: &mut dyn Env) -> Result<Value, Failure> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut out = Map::new();
                for (k, t) in fields {
                    let v = match t {
                        Template::Path(p) => select(p, env).ok_or_else(|| no_match(p, k, env))?,
                        other => other.eval(env)?,
                    };
                    out.insert(k.clone(), v);
                }
                Ok(Value::Object(out))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| t.eval(env))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Path(p) => select(p, env).ok_or_else(|| no_match(p, "", env)),
            Template::Call(c) => intrinsic::eval(c, env).map_err(|cause| {
                let name = if cause.contains("matched nothing") {
                    names::PARAMETER_PATH_FAILURE
                } else {
                    names::INTRINSIC_FAILURE
                };
                Failure::new(name, cause)
            }),
        }
    }
}

fn select(p: &Path, env: &mut dyn Env) -> Option<Value> {
    match p.root() {
        Root::Input => p.select(env.input()),
        Root::Context => p.select(&env.context()),
    }
}

/// A `key.$` path that matches nothing. The ASL spec names States.ParameterPathFailure, but Step
/// Functions fails the execution with States.Runtime, which no Retry/Catch handles (reported with
/// AWS's and Step Functions Local's message: github.com/floci-io/floci/issues/2521).
fn no_match(p: &Path, key: &str, env: &mut dyn Env) -> Failure {
    let input = match p.root() {
        Root::Input => env.input().to_string(),
        Root::Context => env.context().to_string(),
    };
    Failure::runtime(format!(
        "The JSONPath '{p}' specified for the field '{key}.$' could not be found in the input '{input}'"
    ))
}

fn is_dynamic(t: &Template) -> bool {
    match t {
        Template::Literal(_) => false,
        Template::Object(f) => f.iter().any(|(_, t)| is_dynamic(t)),
        Template::Array(i) => i.iter().any(is_dynamic),
        Template::Path(_) | Template::Call(_) => true,
    }
}

/// Compiles a `.$` value: a path or an intrinsic call.
pub fn compile_dynamic(v: &Value) -> Result<Template, String> {
    let Some(s) = v.as_str() else {
        return Err(format!(
            "{v} is not a string holding a JSONPath or intrinsic function"
        ));
    };
    if looks_like_call(s) {
        Call::parse(s)
            .map(Template::Call)
            .map_err(|e| format!("{s:?} is not a valid intrinsic function call: {e}"))
    } else if s.starts_with('$') {
        Path::parse(s).map(Template::Path)
    } else {
        Err(format!("{s:?} is not a JSONPath or intrinsic function"))
    }
}

fn compile(v: &Value, at: &str, errs: &mut Vec<(String, String)>) -> Template {
    match v {
        Value::Object(map) => {
            let mut fields = Vec::with_capacity(map.len());
            for (k, child) in map {
                let here = format!("{at}.{k}");
                if let Some(name) = k.strip_suffix(".$") {
                    if map.contains_key(name) {
                        errs.push((here.clone(), format!("both {name:?} and {k:?} are set")));
                    }
                    match compile_dynamic(child) {
                        Ok(t) => fields.push((name.to_owned(), t)),
                        Err(e) => errs.push((here, e)),
                    }
                } else {
                    fields.push((k.clone(), compile(child, &here, errs)));
                }
            }
            Template::Object(fields)
        }
        Value::Array(items) => Template::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| compile(item, &format!("{at}[{i}]"), errs))
                .collect(),
        ),
        other => Template::Literal(other.clone()),
    }
}
