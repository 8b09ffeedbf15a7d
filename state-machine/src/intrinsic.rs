//! Intrinsic functions (`States.Format(...)`, ...): parsing at load time, evaluation at run time.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::path::{type_name, Path, Root};

/// An argument of an intrinsic function call.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A string literal, kept raw (escapes unresolved) so `States.Format` can tell `{}` from `\{\}`.
    Str(String),
    Literal(Value),
    Path(Path),
    Call(Box<Call>),
}

/// A parsed call of an intrinsic function.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub args: Vec<Arg>,
}

/// Arity per function: (min, max).
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("States.Format", 1, usize::MAX),
    ("States.StringToJson", 1, 1),
    ("States.JsonToString", 1, 1),
    ("States.Array", 0, usize::MAX),
    ("States.ArrayPartition", 2, 2),
    ("States.ArrayContains", 2, 2),
    ("States.ArrayRange", 3, 3),
    ("States.ArrayGetItem", 2, 2),
    ("States.ArrayLength", 1, 1),
    ("States.ArrayUnique", 1, 1),
    ("States.Base64Encode", 1, 1),
    ("States.Base64Decode", 1, 1),
    ("States.Hash", 2, 2),
    ("States.JsonMerge", 3, 3),
    ("States.MathRandom", 2, 3),
    ("States.MathAdd", 2, 2),
    ("States.StringSplit", 2, 2),
    ("States.UUID", 0, 0),
];

/// Whether `s` looks like an intrinsic call (as opposed to a path).
pub fn looks_like_call(s: &str) -> bool {
    s.starts_with("States.")
}

impl Call {
    pub fn parse(src: &str) -> Result<Call, String> {
        let mut p = Parser { s: src, pos: 0 };
        let call = p.call()?;
        p.ws();
        if p.pos != src.len() {
            return Err(format!("unexpected {:?} after the call", &src[p.pos..]));
        }
        Ok(call)
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.ws();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        self.ws();
        let end = self
            .rest()
            .find('(')
            .ok_or("expected \"(\" after the function name")?;
        let name = self.rest()[..end].trim().to_owned();
        let Some(&(_, min, max)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!("unknown intrinsic function {name:?}"));
        };
        self.pos += end + 1;
        let mut args = Vec::new();
        if !self.eat(')') {
            loop {
                args.push(self.arg()?);
                if self.eat(')') {
                    break;
                }
                if !self.eat(',') {
                    return Err(format!("expected \",\" or \")\" at {:?}", self.rest()));
                }
            }
        }
        if args.len() < min || args.len() > max {
            return Err(format!(
                "{name} takes {} arguments, got {}",
                arity(min, max),
                args.len()
            ));
        }
        // Lint and run agree: a template that can never be a string is refused at load time.
        if name == "States.Format" {
            if let Some(Arg::Literal(v)) = args.first() {
                return Err(format!(
                    "States.Format's template must be a string literal, a path or a call, not {v}"
                ));
            }
        }
        Ok(Call { name, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.ws();
        let rest = self.rest();
        if rest.starts_with('\'') {
            return self.string().map(Arg::Str);
        }
        if rest.starts_with("States.") {
            return self.call().map(|c| Arg::Call(Box::new(c)));
        }
        if rest.starts_with('$') {
            let len = path_len(rest);
            let src = rest[..len].trim_end();
            let path = Path::parse(src)?;
            self.pos += len;
            return Ok(Arg::Path(path));
        }
        let len = rest.find([',', ')']).unwrap_or(rest.len());
        let token = rest[..len].trim();
        let value = match token {
            "null" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => match serde_json::from_str::<Number>(token) {
                Ok(n) => Value::Number(n),
                Err(_) => return Err(format!("{token:?} is not a string, number, path or call")),
            },
        };
        self.pos += len;
        Ok(Arg::Literal(value))
    }

    fn string(&mut self) -> Result<String, String> {
        // Opening quote already checked by the caller.
        let body = &self.rest()[1..];
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '\'') => {
                    let raw = body[..i].to_owned();
                    self.pos += 1 + i + 1;
                    return Ok(raw);
                }
                _ => {}
            }
        }
        Err("unterminated string literal".into())
    }
}

fn arity(min: usize, max: usize) -> String {
    match (min, max) {
        (a, b) if a == b => a.to_string(),
        (a, usize::MAX) => format!("at least {a}"),
        (a, b) => format!("{a} to {b}"),
    }
}

/// Length of a path argument: up to the first `,` or `)` outside brackets and quotes.
fn path_len(s: &str) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, ')') if depth == 0 => return i,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => return i,
            _ => {}
        }
    }
    s.len()
}

/// Resolves `\'`, `\{`, `\}` and `\\` in a raw string literal.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What a call needs from its surroundings.
pub trait Env {
    fn input(&self) -> &Value;
    fn context(&self) -> Value;
    fn random_u64(&mut self) -> u64;
}

/// Evaluates a call; the error is the cause of a `States.IntrinsicFailure` (or, for a path that
/// does not match, of the caller's path failure — the caller decides).
pub fn eval(call: &Call, env: &mut dyn Env) -> Result<Value, String> {
    let mut args = Vec::with_capacity(call.args.len());
    for a in &call.args {
        args.push(match a {
            Arg::Str(raw) => Value::String(unescape(raw)),
            Arg::Literal(v) => v.clone(),
            Arg::Path(p) => {
                let found = match p.root() {
                    Root::Input => p.select(env.input()),
                    Root::Context => p.select(&env.context()),
                };
                found.ok_or_else(|| format!("the path {p} in {} matched nothing", call.name))?
            }
            Arg::Call(c) => eval(c, env)?,
        });
    }
    let f = call.name.as_str();
    let bad = |what: &str| format!("{f}: {what}");
    match f {
        "States.Format" => {
            // The template is a string literal or anything yielding a string, e.g. a path:
            // "States.Format($.template, $.name)" (intrinsic functions page, States.Format:
            // "the first argument must be a string"). A literal keeps its raw escapes.
            let template = match call.args.first() {
                Some(Arg::Str(raw)) => raw.clone(),
                _ => match args.first() {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => {
                        return Err(bad(&format!(
                            "the template must be a string, got {}",
                            type_name(other)
                        )))
                    }
                    None => return Err(bad("a template is required")),
                },
            };
            format(&template, &args[1..])
                .map(Value::String)
                .map_err(|e| bad(&e))
        }
        "States.StringToJson" => {
            let s = as_str(&args[0]).ok_or_else(|| bad("argument must be a string"))?;
            serde_json::from_str(s).map_err(|e| bad(&format!("not JSON: {e}")))
        }
        "States.JsonToString" => Ok(Value::String(args[0].to_string())),
        "States.Array" => Ok(Value::Array(args)),
        "States.ArrayPartition" => {
            let arr = as_array(&args[0]).ok_or_else(|| bad("first argument must be an array"))?;
            let size = as_int(&args[1])
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("chunk size must be a positive integer"))?;
            let size = usize::try_from(size).map_err(|_| bad("chunk size too large"))?;
            Ok(Value::Array(
                arr.chunks(size).map(|c| Value::Array(c.to_vec())).collect(),
            ))
        }
        "States.ArrayContains" => {
            let arr = as_array(&args[0]).ok_or_else(|| bad("first argument must be an array"))?;
            Ok(Value::Bool(arr.contains(&args[1])))
        }
        "States.ArrayRange" => {
            let (Some(start), Some(end), Some(step)) =
                (as_int(&args[0]), as_int(&args[1]), as_int(&args[2]))
            else {
                return Err(bad("arguments must be integers"));
            };
            if step == 0 {
                return Err(bad("step must not be 0"));
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                if out.len() == 1000 {
                    return Err(bad("a range has at most 1000 items"));
                }
                out.push(Value::from(i));
                i += step;
            }
            Ok(Value::Array(out))
        }
        "States.ArrayGetItem" => {
            let arr = as_array(&args[0]).ok_or_else(|| bad("first argument must be an array"))?;
            let idx = as_int(&args[1])
                .and_then(|i| usize::try_from(i).ok())
                .ok_or_else(|| bad("index must be a non-negative integer"))?;
            arr.get(idx)
                .cloned()
                .ok_or_else(|| bad(&format!("index {idx} out of range")))
        }
        "States.ArrayLength" => {
            let arr = as_array(&args[0]).ok_or_else(|| bad("argument must be an array"))?;
            Ok(Value::from(arr.len()))
        }
        "States.ArrayUnique" => {
            let arr = as_array(&args[0]).ok_or_else(|| bad("argument must be an array"))?;
            let mut out: Vec<Value> = Vec::new();
            for v in arr {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "States.Base64Encode" => {
            let s = as_str(&args[0]).ok_or_else(|| bad("argument must be a string"))?;
            Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(s),
            ))
        }
        "States.Base64Decode" => {
            let s = as_str(&args[0]).ok_or_else(|| bad("argument must be a string"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| bad(&e.to_string()))?;
            String::from_utf8(bytes)
                .map(Value::String)
                .map_err(|_| bad("decoded data is not UTF-8"))
        }
        "States.Hash" => {
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let alg = as_str(&args[1]).ok_or_else(|| bad("algorithm must be a string"))?;
            hash(data.as_bytes(), alg)
                .map(Value::String)
                .map_err(|e| bad(&e))
        }
        "States.JsonMerge" => {
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err(bad("the first two arguments must be objects"));
            };
            if args[2] != Value::Bool(false) {
                return Err(bad(
                    "only shallow merge (false) is supported, as in Step Functions",
                ));
            }
            let mut out: Map<String, Value> = a.clone();
            for (k, v) in b {
                out.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(out))
        }
        "States.MathRandom" => {
            let (Some(start), Some(end)) = (as_int(&args[0]), as_int(&args[1])) else {
                return Err(bad("start and end must be integers"));
            };
            if end <= start {
                return Err(bad("end must be greater than start"));
            }
            let span = end.abs_diff(start);
            let r = match args.get(2) {
                Some(seed) => {
                    let seed = as_int(seed).ok_or_else(|| bad("seed must be an integer"))?;
                    crate::rng::SplitMix64::new(seed as u64).next_u64()
                }
                None => env.random_u64(),
            };
            Ok(Value::from(start.wrapping_add((r % span) as i64)))
        }
        "States.MathAdd" => {
            let (Some(a), Some(b)) = (as_int(&args[0]), as_int(&args[1])) else {
                return Err(bad("arguments must be integers"));
            };
            a.checked_add(b)
                .map(Value::from)
                .ok_or_else(|| bad("overflow"))
        }
        "States.StringSplit" => {
            let (Some(s), Some(delims)) = (as_str(&args[0]), as_str(&args[1])) else {
                return Err(bad("arguments must be strings"));
            };
            let parts = s
                .split(|c: char| delims.contains(c))
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(p.to_owned()))
                .collect();
            Ok(Value::Array(parts))
        }
        "States.UUID" => {
            let hi = env.random_u64().to_be_bytes();
            let lo = env.random_u64().to_be_bytes();
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&hi);
            bytes[8..].copy_from_slice(&lo);
            Ok(Value::String(
                uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string(),
            ))
        }
        other => Err(format!("unknown intrinsic function {other:?}")),
    }
}

fn format(raw_template: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = raw_template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let arg = args.next().ok_or("more {} placeholders than arguments")?;
                match arg {
                    Value::String(s) => out.push_str(s),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(format!("cannot format a {} argument", type_name(arg)))
                    }
                    other => out.push_str(&other.to_string()),
                }
            }
            c => out.push(c),
        }
    }
    if args.next().is_some() {
        return Err("more arguments than {} placeholders".into());
    }
    Ok(out)
}

fn hash(data: &[u8], alg: &str) -> Result<String, String> {
    use sha2::Digest;
    Ok(match alg {
        "MD5" => hex::encode(md5::Md5::digest(data)),
        "SHA-1" => hex::encode(sha1::Sha1::digest(data)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(data)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(data)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(data)),
        other => {
            return Err(format!(
                "unknown algorithm {other:?} (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
            ))
        }
    })
}

fn as_str(v: &Value) -> Option<&str> {
    v.as_str()
}

fn as_array(v: &Value) -> Option<&Vec<Value>> {
    v.as_array()
}

/// Integers, also when written as `3.0` (Step Functions accepts integral floats).
fn as_int(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}
