//! Flux post-build substitution, as kustomize-controller does it (fluxcd/pkg/envsubst): `${VAR}`,
//! `${VAR:=default}` / `${VAR:-default}` (default when unset), `$${VAR}` escapes to a literal
//! `${VAR}`, and `$VAR` without braces is left alone. Names match `^[_a-zA-Z][_a-zA-Z0-9]*$`.

/// The result of substituting one document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Substituted {
    pub text: String,
    /// Every variable referenced (with or without a default), first use first.
    pub used: Vec<String>,
    /// Variables used without a default that the provider does not supply.
    pub unknown: Vec<String>,
    /// Expressions Flux would reject.
    pub malformed: Vec<String>,
}

/// Substitute every `${...}` in `text` with `lookup(name)`.
pub fn substitute<'a>(text: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Substituted {
    let mut out = Substituted::default();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.text.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            // `$${x}` -> literal `${x}`.
            out.text.push_str("${");
            rest = escaped;
        } else if let Some(body_and_rest) = after.strip_prefix('{') {
            let end = body_and_rest
                .find('}')
                .filter(|&end| !body_and_rest[..end].contains('\n'));
            let Some(end) = end else {
                out.malformed
                    .push(format!("${{{}", first_line(body_and_rest)));
                out.text.push('$');
                rest = after;
                continue;
            };
            let body = &body_and_rest[..end];
            rest = &body_and_rest[end + 1..];
            match parse_expression(body) {
                Some((name, default)) => {
                    if !out.used.iter().any(|u| u == name) {
                        out.used.push(name.to_owned());
                    }
                    match (lookup(name), default) {
                        (Some(value), _) => out.text.push_str(value),
                        (None, Some(default)) => out.text.push_str(default),
                        (None, None) => {
                            if !out.unknown.iter().any(|u| u == name) {
                                out.unknown.push(name.to_owned());
                            }
                        }
                    }
                }
                None => out.malformed.push(format!("${{{body}}}")),
            }
        } else {
            out.text.push('$');
            rest = after;
        }
    }
    out.text.push_str(rest);
    out
}

/// `NAME` plus its default, if the operator supplies one; `None` when the name is invalid.
fn parse_expression(body: &str) -> Option<(&str, Option<&str>)> {
    let name_len = body
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let (name, op) = body.split_at(name_len);
    let default = [":=", ":-", "=", "-"]
        .iter()
        .find_map(|prefix| op.strip_prefix(prefix));
    if op.is_empty() || default.is_some() {
        return Some((name, default));
    }
    // Other operators (substring, replace, case) transform the value: the variable must exist.
    let known_op = [":", "/", "#", "%", "^", ","]
        .iter()
        .any(|prefix| op.starts_with(prefix));
    known_op.then_some((name, None))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::substitute;

    fn vars(name: &str) -> Option<&'static str> {
        match name {
            "DOMAIN" => Some("lab.example.com"),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_escapes_and_leaves_bare_dollars() {
        let s = substitute(
            "h: a.${DOMAIN}\nd: ${MISSING:=x}\ne: $${DOMAIN}\nr: $1:$2 $HOME\n",
            vars,
        );
        assert_eq!(
            s.text,
            "h: a.lab.example.com\nd: x\ne: ${DOMAIN}\nr: $1:$2 $HOME\n"
        );
        assert!(s.unknown.is_empty());
        assert!(s.malformed.is_empty());
    }

    #[test]
    fn reports_unknown_and_malformed() {
        let s = substitute("a: ${NOPE}\nb: ${9x}\nc: ${OPEN\n", vars);
        assert_eq!(s.unknown, vec!["NOPE".to_owned()]);
        assert_eq!(s.malformed.len(), 2, "{:?}", s.malformed);
    }
}
