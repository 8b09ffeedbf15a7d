//! Just enough of IAM's policy evaluation to ask of a rendered policy document "does it allow
//! this action on this resource with this request context?" — the checks read what Terraform
//! rendered, not the HCL that renders it.
//!
//! Rules (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements"): an explicit
//! Deny wins, otherwise any matching Allow allows; `Action` matches case-insensitively with `*`/`?`
//! wildcards, `Resource` case-sensitively with the same wildcards; every condition operator of a
//! statement must hold, a key with several values holds if any value matches, and a key absent
//! from the request fails every operator except the `...IfExists` forms. Multivalued keys
//! (`route53:ChangeResourceRecordSetsNormalizedRecordNames`, ...) take the set operators:
//! `ForAllValues:` holds when every value of the request matches (also when the key is absent),
//! `ForAnyValue:` when at least one does (IAM User Guide, "Single-valued vs. multivalued context
//! keys"). Operators this module does not know are an error, never silently true.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a policy could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("policy is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("policy has no Statement")]
    NoStatement,
    #[error("statement {0}: {1}")]
    Statement(usize, String),
}

/// One request: the action, the resource ARN and the context keys it carries.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: BTreeMap<String, String>,
    /// Multivalued context keys and their values.
    pub multi: BTreeMap<String, Vec<String>>,
}

impl<'a> Request<'a> {
    pub fn new(action: &'a str, resource: &'a str) -> Self {
        Self {
            action,
            resource,
            context: BTreeMap::new(),
            multi: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.context.insert(key.to_string(), value.to_string());
        self
    }

    /// A multivalued key with `values`.
    pub fn with_all(mut self, key: &str, values: &[&str]) -> Self {
        self.multi.insert(
            key.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }
}

/// Whether the policy document (JSON text) allows the request.
pub fn allows(document: &str, request: &Request) -> Result<bool, EvalError> {
    let policy: Value = serde_json::from_str(document)?;
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.iter().collect::<Vec<_>>(),
        Value::Object(_) => vec![&policy["Statement"]],
        _ => return Err(EvalError::NoStatement),
    };
    let mut allowed = false;
    for (index, statement) in statements.into_iter().enumerate() {
        let applies = statement_applies(statement, request)
            .map_err(|message| EvalError::Statement(index, message))?;
        if !applies {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => return Ok(false),
            Some("Allow") => allowed = true,
            other => {
                return Err(EvalError::Statement(
                    index,
                    format!("Effect must be Allow or Deny, got {other:?}"),
                ))
            }
        }
    }
    Ok(allowed)
}

fn strings(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(list) => list.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn statement_applies(statement: &Value, request: &Request) -> Result<bool, String> {
    if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
        return Err("NotAction/NotResource are not supported by this evaluator".into());
    }
    let actions = strings(&statement["Action"]).ok_or("no Action")?;
    let action = request.action.to_ascii_lowercase();
    if !actions
        .iter()
        .any(|a| wildcard_match(&a.to_ascii_lowercase(), &action))
    {
        return Ok(false);
    }
    let resources = strings(&statement["Resource"]).ok_or("no Resource")?;
    if !resources
        .iter()
        .any(|r| wildcard_match(r, request.resource))
    {
        return Ok(false);
    }
    let Some(conditions) = statement.get("Condition") else {
        return Ok(true);
    };
    let conditions = conditions.as_object().ok_or("Condition is not an object")?;
    for (operator, keys) in conditions {
        let keys = keys
            .as_object()
            .ok_or("a condition operator without keys")?;
        for (key, values) in keys {
            let values = strings(values).ok_or("condition values must be strings")?;
            let holds = if let Some(base) = operator.strip_prefix("ForAllValues:") {
                match request.multi.get(key) {
                    None => true,
                    Some(actual) => actual
                        .iter()
                        .map(|a| condition_holds(base, Some(a), &values))
                        .collect::<Result<Vec<bool>, String>>()?
                        .into_iter()
                        .all(|h| h),
                }
            } else if let Some(base) = operator.strip_prefix("ForAnyValue:") {
                match request.multi.get(key) {
                    None => false,
                    Some(actual) => actual
                        .iter()
                        .map(|a| condition_holds(base, Some(a), &values))
                        .collect::<Result<Vec<bool>, String>>()?
                        .into_iter()
                        .any(|h| h),
                }
            } else {
                condition_holds(operator, request.context.get(key), &values)?
            };
            if !holds {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn condition_holds(
    operator: &str,
    actual: Option<&String>,
    expected: &[&str],
) -> Result<bool, String> {
    // "Null": true = the key is absent from the request, false = present (IAM user guide,
    // "Condition operator to check existence of condition keys").
    if operator == "Null" {
        let wants_absent = match expected {
            [v] if v.eq_ignore_ascii_case("true") => true,
            [v] if v.eq_ignore_ascii_case("false") => false,
            _ => return Err(format!("Null takes true or false, not {expected:?}")),
        };
        return Ok(actual.is_none() == wants_absent);
    }
    let (base, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let Some(actual) = actual else {
        return Ok(if_exists);
    };
    let holds = match base {
        "StringEquals" | "ArnEquals" => expected.iter().any(|e| e == actual),
        "Bool" => expected.iter().any(|e| e.eq_ignore_ascii_case(actual)),
        "StringEqualsIgnoreCase" => expected.iter().any(|e| e.eq_ignore_ascii_case(actual)),
        "StringLike" | "ArnLike" => expected.iter().any(|e| wildcard_match(e, actual)),
        "StringNotEquals" | "ArnNotEquals" => expected.iter().all(|e| e != actual),
        "StringNotLike" | "ArnNotLike" => expected.iter().all(|e| !wildcard_match(e, actual)),
        other => return Err(format!("condition operator {other} is not supported")),
    };
    Ok(holds)
}

/// `*` matches any run of characters, `?` exactly one; everything else itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["states:Start*"],"Resource":"arn:aws:states:r:1:stateMachine:lab-*"},
        {"Effect":"Allow","Action":"kms:GenerateDataKey","Resource":"arn:key",
         "Condition":{"StringEquals":{"kms:EncryptionContext:aws:states:stateMachineArn":["arn:sm"]}}},
        {"Effect":"Deny","Action":"states:StartExecution","Resource":"arn:aws:states:r:1:stateMachine:lab-prod"}
    ]}"#;

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*d", "abc"));
    }

    #[test]
    fn allow_deny_and_conditions() -> Result<(), EvalError> {
        let sm = "arn:aws:states:r:1:stateMachine:lab-dev";
        assert!(allows(POLICY, &Request::new("STATES:startexecution", sm))?);
        assert!(!allows(
            POLICY,
            &Request::new(
                "states:StartExecution",
                "arn:aws:states:r:1:stateMachine:lab-prod"
            )
        )?);
        assert!(!allows(POLICY, &Request::new("states:StopExecution", sm))?);
        let key = "kms:EncryptionContext:aws:states:stateMachineArn";
        assert!(allows(
            POLICY,
            &Request::new("kms:GenerateDataKey", "arn:key").with(key, "arn:sm")
        )?);
        assert!(!allows(
            POLICY,
            &Request::new("kms:GenerateDataKey", "arn:key").with(key, "arn:other")
        )?);
        assert!(!allows(
            POLICY,
            &Request::new("kms:GenerateDataKey", "arn:key")
        )?);
        Ok(())
    }

    #[test]
    fn set_operators_judge_every_or_any_value_of_a_multivalued_key() -> Result<(), EvalError> {
        let policy = r#"{"Statement":[{"Effect":"Allow","Action":"r:Change","Resource":"*",
            "Condition":{"ForAllValues:StringLike":{"names":["lab.example.com","*.lab.example.com"]},
                         "ForAnyValue:StringEquals":{"types":["TXT"]}}}]}"#;
        let change = |names: &[&str], types: &[&str]| {
            Request::new("r:Change", "zone")
                .with_all("names", names)
                .with_all("types", types)
        };
        assert!(allows(
            policy,
            &change(&["a.lab.example.com", "lab.example.com"], &["TXT"])
        )?);
        assert!(!allows(
            policy,
            &change(&["a.lab.example.com", "www.example.com"], &["TXT"])
        )?);
        assert!(!allows(policy, &change(&["a.lab.example.com"], &["A"]))?);
        // ForAllValues of an absent key holds; ForAnyValue of one does not.
        assert!(!allows(
            policy,
            &Request::new("r:Change", "zone").with_all("types", &[])
        )?);
        assert!(allows(
            policy,
            &Request::new("r:Change", "zone").with_all("types", &["TXT"])
        )?);
        Ok(())
    }

    #[test]
    fn null_checks_whether_the_key_is_there() {
        let policy = r#"{"Statement":[{"Effect":"Allow","Action":"a:B","Resource":"*",
            "Condition":{"Null":{"aws:ResourceTag/t":"false"}}}]}"#;
        assert!(allows(
            policy,
            &Request::new("a:B", "x").with("aws:ResourceTag/t", "any")
        )
        .unwrap_or(false));
        assert!(!allows(policy, &Request::new("a:B", "x")).unwrap_or(true));
    }

    #[test]
    fn unknown_operators_are_errors() {
        let policy = r#"{"Statement":[{"Effect":"Allow","Action":"a:B","Resource":"*",
            "Condition":{"NumericLessThan":{"k":"1"}}}]}"#;
        assert!(allows(policy, &Request::new("a:B", "x").with("k", "0")).is_err());
    }
}
