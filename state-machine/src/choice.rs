//! Choice rule evaluation.

use std::cmp::Ordering;

use serde_json::Value;

use crate::error::Failure;
use crate::intrinsic::Env;
use crate::lint::parse_timestamp;
use crate::model::{Cmp, Operand, Rule, Test, TypeTest};
use crate::path::{Path, Root};

fn select(p: &Path, env: &mut dyn Env) -> Option<Value> {
    match p.root() {
        Root::Input => p.select(env.input()),
        Root::Context => p.select(&env.context()),
    }
}

fn invalid_path(p: &Path) -> Failure {
    Failure::runtime(format!(
        "Invalid path '{p}': The choice state's condition path references an invalid value."
    ))
}

/// Evaluates a rule against the state's effective input. A Variable that matches nothing is a
/// States.Runtime error, except under IsPresent; a value of the wrong type makes the test false.
pub fn eval(rule: &Rule, env: &mut dyn Env) -> Result<bool, Failure> {
    match rule {
        Rule::And(rules) => {
            for r in rules {
                if !eval(r, env)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Or(rules) => {
            for r in rules {
                if eval(r, env)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Rule::Not(r) => Ok(!eval(r, env)?),
        Rule::Test { variable, test } => {
            let value = select(variable, env);
            if let Test::Type(TypeTest::IsPresent, want) = test {
                return Ok(value.is_some() == *want);
            }
            let value = value.ok_or_else(|| invalid_path(variable))?;
            test_value(&value, test, env)
        }
    }
}

fn operand<T>(
    op: &Operand<T>,
    env: &mut dyn Env,
    conv: impl Fn(&Value) -> Option<T>,
) -> Result<Option<T>, Failure>
where
    T: Clone,
{
    match op {
        Operand::Literal(t) => Ok(Some(t.clone())),
        Operand::Path(p) => {
            let v = select(p, env).ok_or_else(|| invalid_path(p))?;
            Ok(conv(&v))
        }
    }
}

fn apply(cmp: Cmp, ord: Option<Ordering>) -> bool {
    match (cmp, ord) {
        (_, None) => false,
        (Cmp::Eq, Some(o)) => o == Ordering::Equal,
        (Cmp::Lt, Some(o)) => o == Ordering::Less,
        (Cmp::Gt, Some(o)) => o == Ordering::Greater,
        (Cmp::Le, Some(o)) => o != Ordering::Greater,
        (Cmp::Ge, Some(o)) => o != Ordering::Less,
    }
}

fn test_value(v: &Value, test: &Test, env: &mut dyn Env) -> Result<bool, Failure> {
    Ok(match test {
        Test::String(cmp, op) => {
            let other = operand(op, env, |x| x.as_str().map(str::to_owned))?;
            match (v.as_str(), other) {
                (Some(a), Some(b)) => apply(*cmp, Some(a.cmp(b.as_str()))),
                _ => false,
            }
        }
        Test::Numeric(cmp, op) => {
            let other = operand(op, env, Value::as_f64)?;
            match (v.as_f64(), other) {
                (Some(a), Some(b)) => apply(*cmp, a.partial_cmp(&b)),
                _ => false,
            }
        }
        Test::Boolean(op) => {
            let other = operand(op, env, Value::as_bool)?;
            matches!((v.as_bool(), other), (Some(a), Some(b)) if a == b)
        }
        Test::Timestamp(cmp, op) => {
            let other = operand(op, env, |x| x.as_str().and_then(parse_timestamp))?;
            match (v.as_str().and_then(parse_timestamp), other) {
                (Some(a), Some(b)) => apply(*cmp, Some(a.cmp(&b))),
                _ => false,
            }
        }
        Test::Matches(pattern) => v.as_str().is_some_and(|s| string_matches(s, pattern)),
        Test::Type(t, want) => {
            let is = match t {
                TypeTest::IsNull => v.is_null(),
                TypeTest::IsPresent => true,
                TypeTest::IsNumeric => v.is_number(),
                TypeTest::IsString => v.is_string(),
                TypeTest::IsBoolean => v.is_boolean(),
                TypeTest::IsTimestamp => v.as_str().and_then(parse_timestamp).is_some(),
            };
            is == *want
        }
    })
}

#[derive(Debug, PartialEq)]
enum Tok {
    Star,
    Char(char),
}

/// StringMatches: `*` matches any run of characters; `\*` and `\\` are literal.
pub fn string_matches(s: &str, pattern: &str) -> bool {
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Tok::Char(chars.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = s.chars().collect();
    // Classic wildcard matching with backtracking to the last star.
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::string_matches;

    #[test]
    fn wildcards() {
        assert!(string_matches("log-2024-01.txt", "log-*.txt"));
        assert!(string_matches("abc", "*"));
        assert!(!string_matches("log.csv", "log-*.txt"));
        assert!(string_matches("a*b", "a\\*b"));
        assert!(!string_matches("axb", "a\\*b"));
        assert!(string_matches("x\\y", "x\\\\y"));
    }
}
