//! The `${Name}` placeholders of the state machine definition, as Terraform's `templatefile`
//! sees them (`$${` is an escaped literal `${`).

use std::collections::BTreeSet;

/// Every placeholder name; an interpolation that is not a bare name is returned whole so the
/// caller can reject it (templatefile would evaluate it as an expression).
pub fn placeholders(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'$' {
            // `$${` is a literal; `$$` followed by anything else is two literal dollars.
            i += 2;
            if i < bytes.len() && bytes[i] == b'{' {
                i += 1;
            }
            continue;
        }
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            let start = i + 2;
            match text[start..].find('}') {
                Some(len) => {
                    found.insert(text[start..start + len].trim().to_string());
                    i = start + len + 1;
                }
                None => {
                    found.insert(text[start..].to_string());
                    break;
                }
            }
            continue;
        }
        i += 1;
    }
    found
}

/// Template directives (`%{ ... }`) that templatefile would interpret; ASL has no use for them.
pub fn directives(text: &str) -> usize {
    text.matches("%{").count() - text.matches("%%{").count()
}

/// The text with every placeholder replaced, as templatefile would render it.
pub fn render(text: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            match after.find('}') {
                Some(end) => {
                    out.push_str(&value(after[..end].trim()));
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(tail);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_and_skips_escapes() {
        let text =
            r#"{"a": "${RunGuardArn}", "b": "$${NotOne}", "c": "${ Teardown }", "d": "$.x"}"#;
        let got: Vec<String> = placeholders(text).into_iter().collect();
        assert_eq!(got, vec!["RunGuardArn".to_string(), "Teardown".to_string()]);
    }

    #[test]
    fn renders_like_templatefile() {
        let text = r#"["${A}", "$${B}", "$.c"]"#;
        assert_eq!(
            render(text, |n| format!("<{n}>")),
            r#"["<A>", "${B}", "$.c"]"#
        );
    }

    #[test]
    fn counts_directives() {
        assert_eq!(directives("%{ if x }y%{ endif } %%{literal}"), 2);
    }
}
