//! Reading HCL expressions without evaluating Terraform: references, literal strings, object
//! entries, and whether a resource list can contain `"*"`.

use hcl::expr::{TemplateExpr, TraversalOperator};
use hcl::{Expression, ObjectKey};

use crate::terraform::Module;
use crate::InfraError;

/// A reference like `local.x`, `aws_iam_role.lambda[each.key].arn` or
/// `aws_lambda_function.step["run-guard"].arn` as path segments; a non-literal index becomes
/// its own reference in brackets (`[each.key]`).
pub fn reference(expr: &Expression) -> Option<Vec<String>> {
    match expr {
        Expression::Variable(var) => Some(vec![var.to_string()]),
        Expression::Parenthesis(inner) => reference(inner),
        Expression::Traversal(traversal) => {
            let mut path = reference(&traversal.expr)?;
            for op in &traversal.operators {
                match op {
                    TraversalOperator::GetAttr(id) => path.push(id.to_string()),
                    TraversalOperator::Index(Expression::String(s)) => path.push(s.clone()),
                    TraversalOperator::Index(inner) => {
                        path.push(format!("[{}]", reference(inner)?.join(".")))
                    }
                    TraversalOperator::LegacyIndex(n) => path.push(n.to_string()),
                    TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                        path.push("*".into())
                    }
                }
            }
            Some(path)
        }
        _ => None,
    }
}

/// The reference as written, e.g. `local.lambda_permissions`.
pub fn reference_string(expr: &Expression) -> Option<String> {
    reference(expr).map(|path| path.join("."))
}

/// A quoted string literal, or the raw text of a quoted template (`"${a}/b"`).
pub fn string_or_template(expr: &Expression) -> Option<String> {
    match expr {
        Expression::String(s) => Some(s.clone()),
        Expression::TemplateExpr(template) => match template.as_ref() {
            TemplateExpr::QuotedString(s) => Some(s.clone()),
            TemplateExpr::Heredoc(h) => Some(h.template.clone()),
        },
        _ => None,
    }
}

/// An object key as a string (identifier or literal string).
pub fn key_string(key: &ObjectKey) -> Option<String> {
    match key {
        ObjectKey::Identifier(id) => Some(id.to_string()),
        ObjectKey::Expression(expr) => string_or_template(expr),
        // ObjectKey is non-exhaustive; a new kind of key is not a literal we understand.
        _ => None,
    }
}

/// The entries of an object literal; an error names what it was instead.
pub fn object_entries<'a>(
    expr: &'a Expression,
    what: &str,
) -> Result<Vec<(String, &'a Expression)>, InfraError> {
    let Expression::Object(object) = expr else {
        return Err(InfraError::Invalid(format!(
            "{what} must be an object literal"
        )));
    };
    object
        .iter()
        .map(|(key, value)| {
            key_string(key)
                .map(|k| (k, value))
                .ok_or_else(|| InfraError::Invalid(format!("{what}: a key is not a literal")))
        })
        .collect()
}

/// The strings a list expression is made of, resolving `local.x`, `local.x.y` (into object
/// locals), `concat(...)` and parentheses. Anything else is an error: a checker that guessed
/// would stop checking.
pub fn literal_strings(module: &Module, expr: &Expression) -> Result<Vec<String>, InfraError> {
    match expr {
        Expression::String(s) => Ok(vec![s.clone()]),
        Expression::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.extend(literal_strings(module, item)?);
            }
            Ok(out)
        }
        Expression::Parenthesis(inner) => literal_strings(module, inner),
        Expression::FuncCall(call) if call.name.name.as_str() == "concat" => {
            let mut out = Vec::new();
            for arg in &call.args {
                out.extend(literal_strings(module, arg)?);
            }
            Ok(out)
        }
        other => {
            let resolved = resolve_local(module, other)?;
            literal_strings(module, resolved)
        }
    }
}

/// Follow `local.a` or `local.a.b` (attribute `b` of the object literal `local.a`).
pub fn resolve_local<'a>(
    module: &'a Module,
    expr: &Expression,
) -> Result<&'a Expression, InfraError> {
    let path = reference(expr).ok_or_else(|| {
        InfraError::Invalid(format!("expected a literal or a local, got {expr:?}"))
    })?;
    if path.len() < 2 || path[0] != "local" {
        return Err(InfraError::Invalid(format!(
            "expected a literal or a local, got {}",
            path.join(".")
        )));
    }
    let mut current = module.local(&path[1])?;
    for segment in &path[2..] {
        let entries = object_entries(current, &format!("local.{}", path[1]))?;
        current = entries
            .into_iter()
            .find(|(key, _)| key == segment)
            .map(|(_, value)| value)
            .ok_or_else(|| InfraError::Invalid(format!("{} does not exist", path.join("."))))?;
    }
    Ok(current)
}

/// Whether a resource list may contain the literal `"*"`: looks through arrays, `concat`,
/// parentheses and locals; other expressions (templates, resource attributes, for-expressions
/// over named resources) are specific ARNs.
pub fn may_contain_wildcard(module: &Module, expr: &Expression) -> Result<bool, InfraError> {
    match expr {
        Expression::String(s) => Ok(s == "*"),
        Expression::Array(items) => {
            for item in items {
                if may_contain_wildcard(module, item)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expression::Parenthesis(inner) => may_contain_wildcard(module, inner),
        Expression::FuncCall(call) if call.name.name.as_str() == "concat" => {
            for arg in &call.args {
                if may_contain_wildcard(module, arg)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expression::ForExpr(for_expr) => may_contain_wildcard(module, &for_expr.value_expr),
        Expression::TemplateExpr(_) | Expression::Traversal(_) | Expression::Variable(_) => {
            match reference(expr) {
                Some(path) if path.first().map(String::as_str) == Some("local") => {
                    may_contain_wildcard(module, resolve_local(module, expr)?)
                }
                // Resource attributes and interpolated ARNs are never the bare "*".
                _ => Ok(false),
            }
        }
        other => Err(InfraError::Invalid(format!(
            "cannot tell whether {other:?} contains \"*\""
        ))),
    }
}
