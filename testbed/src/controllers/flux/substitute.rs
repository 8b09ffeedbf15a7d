//! Flux post-build variable substitution (`${var}`, `${var:=default}`, `${var:-default}`,
//! `${var=default}`, `${var-default}`; `$${var}` escapes). Non-strict, as kustomize-controller
//! runs by default: a variable that is not set and has no default becomes the empty string.
//! Only the braced form is substituted; `$var` stays as written.

use std::collections::HashMap;

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Evaluates the inside of `${...}`; None when it is not a variable expression.
fn evaluate(expr: &str, vars: &HashMap<String, String>) -> Option<String> {
    if is_name(expr) {
        return Some(vars.get(expr).cloned().unwrap_or_default());
    }
    let end = expr.find([':', '=', '-'])?;
    let (name, rest) = expr.split_at(end);
    if !is_name(name) {
        return None;
    }
    let value = vars.get(name);
    if let Some(default) = rest.strip_prefix(":=").or_else(|| rest.strip_prefix(":-")) {
        return Some(match value {
            Some(v) if !v.is_empty() => v.clone(),
            _ => default.to_string(),
        });
    }
    if let Some(default) = rest.strip_prefix('=').or_else(|| rest.strip_prefix('-')) {
        return Some(value.cloned().unwrap_or_else(|| default.to_string()));
    }
    None
}

pub fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            // `$${x}` is the escape for a literal `${x}`.
            out.push_str("${");
            rest = escaped;
            continue;
        }
        if let Some(inner) = after.strip_prefix('{') {
            if let Some(close) = inner.find('}') {
                if let Some(v) = evaluate(&inner[..close], vars) {
                    out.push_str(&v);
                    rest = &inner[close + 1..];
                    continue;
                }
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let vars: HashMap<String, String> = [
            ("a".to_string(), "1".to_string()),
            ("e".to_string(), String::new()),
        ]
        .into_iter()
        .collect();
        assert_eq!(substitute("x=${a} y=${b}", &vars), "x=1 y=");
        assert_eq!(substitute("${b:=d} ${e:=d} ${e=d} ${b-z}", &vars), "d d  z");
        assert_eq!(
            substitute("$${a} $a ${not a var} $", &vars),
            "${a} $a ${not a var} $"
        );
    }
}
