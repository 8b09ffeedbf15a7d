//! The linter: turns a JSON definition into the typed model, or reports every problem with the
//! state and field it is in (`States.Foo.Next: "Nope" is not a state`). Features the executor does
//! not implement are reported here too, so nothing is ever skipped silently at run time.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::error::{names, LintError, LintErrors, LoadError};
use crate::intrinsic::{looks_like_call, Call};
use crate::model::*;
use crate::path::{Path, Root};
use crate::template::Template;

/// Loads and lints a definition from JSON text.
pub fn load(text: &str) -> Result<StateMachine, LoadError> {
    let v: Value = serde_json::from_str(text)?;
    Ok(lint(&v)?)
}

/// Lints a parsed definition.
pub fn lint(v: &Value) -> Result<StateMachine, LintErrors> {
    let mut l = Linter::default();
    let machine = l.machine(v);
    match (machine, l.errs.is_empty()) {
        (Some(m), true) => Ok(m),
        _ => {
            if l.errs.is_empty() {
                l.err("", "definition is invalid");
            }
            Err(LintErrors(l.errs))
        }
    }
}

const COMMON: &[&str] = &["Type", "Comment"];
const IO: &[&str] = &["InputPath", "OutputPath"];
const FIELDS_PASS: &[&str] = &["Next", "End", "ResultPath", "Parameters", "Result"];
const FIELDS_TASK: &[&str] = &[
    "Next",
    "End",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Resource",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "Retry",
    "Catch",
];
const FIELDS_CHOICE: &[&str] = &["Choices", "Default"];
const FIELDS_WAIT: &[&str] = &[
    "Next",
    "End",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
];
const FIELDS_SUCCEED: &[&str] = &[];
const FIELDS_FAIL: &[&str] = &["Error", "ErrorPath", "Cause", "CausePath"];
const FIELDS_PARALLEL: &[&str] = &[
    "Next",
    "End",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Branches",
    "Retry",
    "Catch",
];
const FIELDS_MAP: &[&str] = &[
    "Next",
    "End",
    "ResultPath",
    "Parameters",
    "ItemSelector",
    "ResultSelector",
    "ItemsPath",
    "ItemProcessor",
    "Iterator",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "Retry",
    "Catch",
];
/// Real ASL fields this executor does not implement: a load-time error, never a silent skip.
const UNSUPPORTED: &[&str] = &[
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Credentials",
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "Label",
    "Arguments",
    "Output",
    "Assign",
    "QueryLanguage",
];

#[derive(Default)]
struct Linter {
    errs: Vec<LintError>,
    /// State names seen anywhere: Step Functions requires them unique across the whole machine.
    names: HashSet<String>,
}

type Obj = Map<String, Value>;

impl Linter {
    fn err(&mut self, at: &str, msg: impl Into<String>) {
        self.errs.push(LintError {
            at: at.to_owned(),
            message: msg.into(),
        });
    }

    fn machine(&mut self, v: &Value) -> Option<StateMachine> {
        let Some(m) = v.as_object() else {
            self.err("", "a state machine definition must be a JSON object");
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                "StartAt" | "States" | "Comment" | "Version" | "TimeoutSeconds" => {}
                "QueryLanguage" => {
                    if m[k] != Value::String("JSONPath".into()) {
                        self.err(
                            "QueryLanguage",
                            "only \"JSONPath\" is supported (JSONata is not)",
                        );
                    }
                }
                other => self.err(other, "unknown field"),
            }
        }
        if let Some(v) = m.get("Version") {
            if v.as_str() != Some("1.0") {
                self.err(
                    "Version",
                    format!("{v} is not a supported version (\"1.0\")"),
                );
            }
        }
        let comment = self.opt_str(m, "Comment", "").map(str::to_owned);
        let timeout_seconds = self.opt_positive(m, "TimeoutSeconds", "");
        let scope = self.scope(m, "")?;
        Some(StateMachine {
            comment,
            timeout_seconds,
            scope,
        })
    }

    /// A StartAt + States block at `prefix` ("" for the top level).
    fn scope(&mut self, m: &Obj, prefix: &str) -> Option<Scope> {
        let at = |f: &str| join(prefix, f);
        let start_at = match m.get("StartAt") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(&at("StartAt"), format!("{other} is not a string"));
                None
            }
            None => {
                self.err(&at("StartAt"), "missing");
                None
            }
        };
        let Some(states_v) = m.get("States") else {
            self.err(&at("States"), "missing");
            return None;
        };
        let Some(states_m) = states_v.as_object() else {
            self.err(&at("States"), "must be an object");
            return None;
        };
        if states_m.is_empty() {
            self.err(&at("States"), "must contain at least one state");
        }
        let mut states = HashMap::new();
        for (name, sv) in states_m {
            let sat = at(&format!("States.{name}"));
            if !self.names.insert(name.clone()) {
                self.err(
                    &sat,
                    "a state with this name already exists elsewhere in the machine",
                );
            }
            if name.chars().count() > 80 {
                self.err(&sat, "state names are limited to 80 characters");
            }
            if let Some(s) = self.state(name, sv, &sat) {
                states.insert(name.clone(), s);
            }
        }
        let start_at = start_at?;
        if !states_m.contains_key(&start_at) {
            self.err(&at("StartAt"), format!("{start_at:?} is not a state"));
            return None;
        }
        // Transitions stay inside their scope.
        for (name, s) in states_m
            .iter()
            .filter_map(|(n, _)| states.get(n).map(|s| (n, s)))
        {
            let sat = at(&format!("States.{name}"));
            for (field, target) in targets(s) {
                if !states_m.contains_key(target) {
                    self.err(
                        &format!("{sat}.{field}"),
                        format!("{target:?} is not a state"),
                    );
                }
            }
        }
        // Reachability from StartAt.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut todo = vec![start_at.as_str()];
        while let Some(n) = todo.pop() {
            if !seen.insert(n) {
                continue;
            }
            if let Some(s) = states.get(n) {
                todo.extend(targets(s).into_iter().map(|(_, t)| t));
            }
        }
        for name in states_m.keys() {
            if states.contains_key(name) && !seen.contains(name.as_str()) {
                self.err(
                    &at(&format!("States.{name}")),
                    "unreachable: no transition leads to this state",
                );
            }
        }
        Some(Scope { start_at, states })
    }

    fn state(&mut self, name: &str, v: &Value, at: &str) -> Option<State> {
        let Some(m) = v.as_object() else {
            self.err(at, "a state must be an object");
            return None;
        };
        let ty = match m.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                self.err(&format!("{at}.Type"), format!("{other} is not a string"));
                return None;
            }
            None => {
                self.err(&format!("{at}.Type"), "missing");
                return None;
            }
        };
        let (own, io): (&[&str], bool) = match ty {
            "Pass" => (FIELDS_PASS, true),
            "Task" => (FIELDS_TASK, true),
            "Choice" => (FIELDS_CHOICE, true),
            "Wait" => (FIELDS_WAIT, true),
            "Succeed" => (FIELDS_SUCCEED, true),
            "Fail" => (FIELDS_FAIL, false),
            "Parallel" => (FIELDS_PARALLEL, true),
            "Map" => (FIELDS_MAP, true),
            other => {
                self.err(
                    &format!("{at}.Type"),
                    format!("{other:?} is not a state type"),
                );
                return None;
            }
        };
        for k in m.keys() {
            let known = COMMON.contains(&k.as_str())
                || own.contains(&k.as_str())
                || (io && IO.contains(&k.as_str()));
            if known {
                continue;
            }
            if UNSUPPORTED.contains(&k.as_str()) {
                self.err(&format!("{at}.{k}"), "not supported by labflow-states");
            } else {
                self.err(
                    &format!("{at}.{k}"),
                    format!("unknown field for a {ty} state"),
                );
            }
        }
        self.opt_str(m, "Comment", at);

        // Transition.
        let next = self.opt_str(m, "Next", at).map(str::to_owned);
        let end = match m.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.err(&format!("{at}.End"), format!("{other} is not a boolean"));
                false
            }
        };
        let terminal_type = matches!(ty, "Choice" | "Succeed" | "Fail");
        if !terminal_type {
            match (&next, end) {
                (Some(_), true) => self.err(at, "has both Next and End"),
                (None, false) => self.err(at, "is not terminal: it needs Next or \"End\": true"),
                _ => {}
            }
        }

        let input_path = self.selection(m, "InputPath", at);
        let output_path = self.selection(m, "OutputPath", at);
        let result_path = self.result_path(m.get("ResultPath"), &format!("{at}.ResultPath"));
        let parameters = m
            .get("Parameters")
            .map(|p| self.template(p, &format!("{at}.Parameters")));
        let result_selector = m
            .get("ResultSelector")
            .map(|p| self.template(p, &format!("{at}.ResultSelector")));
        if let Some(rs) = m.get("ResultSelector") {
            if !rs.is_object() {
                self.err(&format!("{at}.ResultSelector"), "must be an object");
            }
        }
        let retry = self.retriers(m.get("Retry"), &format!("{at}.Retry"));
        let catch = self.catchers(m.get("Catch"), &format!("{at}.Catch"));

        let kind = match ty {
            "Pass" => Kind::Pass {
                result: m.get("Result").cloned(),
            },
            "Task" => self.task(m, at, &parameters)?,
            "Choice" => self.choice(m, at)?,
            "Wait" => Kind::Wait(self.wait(m, at)?),
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail {
                error: self.source(m, "Error", at),
                cause: self.source(m, "Cause", at),
            },
            "Parallel" => {
                let bat = format!("{at}.Branches");
                let Some(branches) = m.get("Branches").and_then(Value::as_array) else {
                    self.err(&bat, "missing or not an array");
                    return None;
                };
                if branches.is_empty() {
                    self.err(&bat, "must contain at least one branch");
                }
                let mut out = Vec::new();
                for (i, b) in branches.iter().enumerate() {
                    let here = format!("{bat}[{i}]");
                    let Some(bm) = b.as_object() else {
                        self.err(&here, "a branch must be an object");
                        continue;
                    };
                    self.only_fields(bm, &["StartAt", "States", "Comment"], &here);
                    out.extend(self.scope(bm, &here));
                }
                Kind::Parallel { branches: out }
            }
            "Map" => self.map(m, at)?,
            _ => return None,
        };
        Some(State {
            name: name.to_owned(),
            kind,
            input_path,
            output_path,
            parameters,
            result_selector,
            result_path,
            next,
            retry,
            catch,
        })
    }

    fn task(&mut self, m: &Obj, at: &str, parameters: &Option<Template>) -> Option<Kind> {
        let rat = format!("{at}.Resource");
        let resource = match m.get("Resource") {
            Some(Value::String(r)) => r.clone(),
            Some(other) => {
                self.err(&rat, format!("{other} is not a string"));
                return None;
            }
            None => {
                self.err(&rat, "missing");
                return None;
            }
        };
        if resource.ends_with(".sync")
            || resource.contains(".sync:")
            || resource.ends_with(".waitForTaskToken")
        {
            self.err(&rat, format!("{resource:?}: .sync and .waitForTaskToken integrations are not supported by labflow-states"));
        }
        let resource = if resource == LAMBDA_INVOKE {
            let params = m.get("Parameters").and_then(Value::as_object);
            let has_fn = params.is_some_and(|p| {
                p.contains_key("FunctionName") || p.contains_key("FunctionName.$")
            });
            if !has_fn {
                self.err(
                    &format!("{at}.Parameters"),
                    "lambda:invoke needs Parameters.FunctionName",
                );
            }
            Resource::LambdaInvoke
        } else {
            Resource::Direct(resource)
        };
        let _ = parameters;
        let timeout = self.amount(m, "TimeoutSeconds", at, true);
        Some(Kind::Task { resource, timeout })
    }

    fn map(&mut self, m: &Obj, at: &str) -> Option<Kind> {
        let items_path = match m.get("ItemsPath") {
            None => None,
            Some(Value::String(s)) => match Path::parse_reference(s) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err(&format!("{at}.ItemsPath"), e);
                    None
                }
            },
            Some(other) => {
                self.err(
                    &format!("{at}.ItemsPath"),
                    format!("{other} is not a string"),
                );
                None
            }
        };
        if m.contains_key("ItemSelector") && m.contains_key("Parameters") {
            self.err(at, "has both ItemSelector and Parameters (its legacy name)");
        }
        // In a Map, Parameters is the legacy name of ItemSelector (applied per item).
        let item_selector = m
            .get("ItemSelector")
            .map(|t| ("ItemSelector", t))
            .or_else(|| m.get("Parameters").map(|t| ("Parameters", t)))
            .map(|(f, t)| self.template(t, &format!("{at}.{f}")));
        let (field, proc_v) = match (m.get("ItemProcessor"), m.get("Iterator")) {
            (Some(p), None) => ("ItemProcessor", p),
            (None, Some(p)) => ("Iterator", p),
            (Some(_), Some(_)) => {
                self.err(at, "has both ItemProcessor and Iterator (its legacy name)");
                return None;
            }
            (None, None) => {
                self.err(&format!("{at}.ItemProcessor"), "missing");
                return None;
            }
        };
        let pat = format!("{at}.{field}");
        let Some(pm) = proc_v.as_object() else {
            self.err(&pat, "must be an object");
            return None;
        };
        self.only_fields(
            pm,
            &["StartAt", "States", "Comment", "ProcessorConfig"],
            &pat,
        );
        if let Some(cfg) = pm.get("ProcessorConfig") {
            let cat = format!("{pat}.ProcessorConfig");
            match cfg.as_object() {
                Some(c) => {
                    self.only_fields(c, &["Mode"], &cat);
                    if let Some(mode) = c.get("Mode") {
                        if mode != "INLINE" {
                            self.err(
                                &format!("{cat}.Mode"),
                                format!("{mode}: only INLINE is supported by labflow-states"),
                            );
                        }
                    }
                }
                None => self.err(&cat, "must be an object"),
            }
        }
        let processor = self.scope(pm, &pat)?;
        let max_concurrency = self
            .amount(m, "MaxConcurrency", at, false)
            .unwrap_or(Amount::Fixed(0));
        Some(Kind::Map {
            items_path,
            item_selector,
            processor: Box::new(processor),
            max_concurrency,
        })
    }

    fn wait(&mut self, m: &Obj, at: &str) -> Option<WaitFor> {
        let present: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if present.len() != 1 {
            self.err(
                at,
                "a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath",
            );
            return None;
        }
        let f = present[0];
        let fat = format!("{at}.{f}");
        let v = &m[f];
        match f {
            "Seconds" => match v.as_u64() {
                Some(n) => Some(WaitFor::Seconds(n)),
                None => {
                    self.err(&fat, format!("{v} is not a non-negative integer"));
                    None
                }
            },
            "Timestamp" => match v.as_str().and_then(parse_timestamp) {
                Some(t) => Some(WaitFor::Timestamp(t)),
                None => {
                    self.err(&fat, format!("{v} is not an RFC 3339 timestamp"));
                    None
                }
            },
            _ => {
                let p = self.ref_path(v, &fat)?;
                Some(if f == "SecondsPath" {
                    WaitFor::SecondsPath(p)
                } else {
                    WaitFor::TimestampPath(p)
                })
            }
        }
    }

    fn choice(&mut self, m: &Obj, at: &str) -> Option<Kind> {
        let cat = format!("{at}.Choices");
        let Some(arr) = m.get("Choices").and_then(Value::as_array) else {
            self.err(&cat, "missing or not an array");
            return None;
        };
        if arr.is_empty() {
            self.err(&cat, "must contain at least one rule");
        }
        let mut choices = Vec::new();
        for (i, r) in arr.iter().enumerate() {
            let rat = format!("{cat}[{i}]");
            let next = match r.get("Next") {
                Some(Value::String(n)) => Some(n.clone()),
                Some(other) => {
                    self.err(&format!("{rat}.Next"), format!("{other} is not a string"));
                    None
                }
                None => {
                    self.err(
                        &format!("{rat}.Next"),
                        "missing: a top-level choice rule needs Next",
                    );
                    None
                }
            };
            let rule = self.rule(r, &rat, true);
            if let (Some(rule), Some(next)) = (rule, next) {
                choices.push((rule, next));
            }
        }
        let default = self.opt_str(m, "Default", at).map(str::to_owned);
        Some(Kind::Choice { choices, default })
    }

    fn rule(&mut self, v: &Value, at: &str, top: bool) -> Option<Rule> {
        let Some(m) = v.as_object() else {
            self.err(at, "a choice rule must be an object");
            return None;
        };
        if !top && m.contains_key("Next") {
            self.err(
                &format!("{at}.Next"),
                "only top-level choice rules may have Next",
            );
        }
        let combinators: Vec<&str> = ["And", "Or", "Not"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        let operators: Vec<&String> = m
            .keys()
            .filter(|k| {
                !matches!(
                    k.as_str(),
                    "Variable" | "Next" | "Comment" | "And" | "Or" | "Not"
                )
            })
            .collect();
        if !combinators.is_empty() {
            if combinators.len() > 1 || !operators.is_empty() || m.contains_key("Variable") {
                self.err(
                    at,
                    "a rule with And/Or/Not must have nothing else but Next and Comment",
                );
                return None;
            }
            let c = combinators[0];
            let cat = format!("{at}.{c}");
            if c == "Not" {
                return self
                    .rule(&m[c], &cat, false)
                    .map(|r| Rule::Not(Box::new(r)));
            }
            let Some(items) = m[c].as_array().filter(|a| !a.is_empty()) else {
                self.err(&cat, "must be a non-empty array of rules");
                return None;
            };
            let rules: Vec<Option<Rule>> = items
                .iter()
                .enumerate()
                .map(|(i, r)| self.rule(r, &format!("{cat}[{i}]"), false))
                .collect();
            let rules: Option<Vec<Rule>> = rules.into_iter().collect();
            let rules = rules?;
            return Some(if c == "And" {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            });
        }
        let Some(var) = m.get("Variable") else {
            self.err(
                &format!("{at}.Variable"),
                "missing: a comparison needs Variable",
            );
            return None;
        };
        let variable = self.ref_path(var, &format!("{at}.Variable"));
        if operators.len() != 1 {
            let list: Vec<&str> = operators.iter().map(|s| s.as_str()).collect();
            self.err(
                at,
                format!("a comparison needs exactly one operator, found {list:?}"),
            );
            return None;
        }
        let op = operators[0].as_str();
        let oat = format!("{at}.{op}");
        let test = self.test(op, &m[op], &oat)?;
        Some(Rule::Test {
            variable: variable?,
            test,
        })
    }

    fn test(&mut self, op: &str, v: &Value, at: &str) -> Option<Test> {
        let type_test = match op {
            "IsNull" => Some(TypeTest::IsNull),
            "IsPresent" => Some(TypeTest::IsPresent),
            "IsNumeric" => Some(TypeTest::IsNumeric),
            "IsString" => Some(TypeTest::IsString),
            "IsBoolean" => Some(TypeTest::IsBoolean),
            "IsTimestamp" => Some(TypeTest::IsTimestamp),
            _ => None,
        };
        if let Some(t) = type_test {
            return match v.as_bool() {
                Some(b) => Some(Test::Type(t, b)),
                None => {
                    self.err(at, format!("{v} is not a boolean"));
                    None
                }
            };
        }
        if op == "StringMatches" {
            return match v.as_str() {
                Some(s) => Some(Test::Matches(s.to_owned())),
                None => {
                    self.err(at, format!("{v} is not a string"));
                    None
                }
            };
        }
        let (base, is_path) = match op.strip_suffix("Path") {
            Some(b) => (b, true),
            None => (op, false),
        };
        let (family, rest) = ["String", "Numeric", "Boolean", "Timestamp"]
            .into_iter()
            .find_map(|f| base.strip_prefix(f).map(|r| (f, r)))
            .unwrap_or(("", base));
        let cmp = match rest {
            "Equals" => Cmp::Eq,
            "LessThan" => Cmp::Lt,
            "GreaterThan" => Cmp::Gt,
            "LessThanEquals" => Cmp::Le,
            "GreaterThanEquals" => Cmp::Ge,
            _ => {
                self.err(at, "unknown choice rule operator");
                return None;
            }
        };
        if family.is_empty() || (family == "Boolean" && cmp != Cmp::Eq) {
            self.err(at, "unknown choice rule operator");
            return None;
        }
        if is_path {
            let p = self.ref_path(v, at)?;
            return Some(match family {
                "String" => Test::String(cmp, Operand::Path(p)),
                "Numeric" => Test::Numeric(cmp, Operand::Path(p)),
                "Boolean" => Test::Boolean(Operand::Path(p)),
                _ => Test::Timestamp(cmp, Operand::Path(p)),
            });
        }
        let t = match family {
            "String" => v
                .as_str()
                .map(|s| Test::String(cmp, Operand::Literal(s.to_owned()))),
            "Numeric" => v.as_f64().map(|n| Test::Numeric(cmp, Operand::Literal(n))),
            "Boolean" => v.as_bool().map(|b| Test::Boolean(Operand::Literal(b))),
            _ => v
                .as_str()
                .and_then(parse_timestamp)
                .map(|t| Test::Timestamp(cmp, Operand::Literal(t))),
        };
        if t.is_none() {
            let want = match family {
                "String" => "a string",
                "Numeric" => "a number",
                "Boolean" => "a boolean",
                _ => "an RFC 3339 timestamp",
            };
            self.err(at, format!("{v} is not {want}"));
        }
        t
    }

    fn retriers(&mut self, v: Option<&Value>, at: &str) -> Vec<Retrier> {
        let Some(v) = v else { return Vec::new() };
        let Some(arr) = v.as_array() else {
            self.err(at, "must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in arr.iter().enumerate() {
            let rat = format!("{at}[{i}]");
            let Some(m) = r.as_object() else {
                self.err(&rat, "a retrier must be an object");
                continue;
            };
            self.only_fields(
                m,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
                &rat,
            );
            let error_equals = self.error_equals(m, &rat, i + 1 == arr.len());
            let interval_seconds = self.opt_positive(m, "IntervalSeconds", &rat).unwrap_or(1);
            let max_attempts = match m.get("MaxAttempts") {
                None => 3,
                Some(v) => v.as_u64().unwrap_or_else(|| {
                    self.err(
                        &format!("{rat}.MaxAttempts"),
                        format!("{v} is not a non-negative integer"),
                    );
                    0
                }),
            };
            let backoff_rate = match m.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64().filter(|b| *b >= 1.0) {
                    Some(b) => b,
                    None => {
                        self.err(
                            &format!("{rat}.BackoffRate"),
                            format!("{v} is not a number >= 1.0"),
                        );
                        1.0
                    }
                },
            };
            let max_delay_seconds = self.opt_positive(m, "MaxDelaySeconds", &rat);
            let full_jitter = match m.get("JitterStrategy").map(|j| j.as_str()) {
                None | Some(Some("NONE")) => false,
                Some(Some("FULL")) => true,
                Some(_) => {
                    self.err(
                        &format!("{rat}.JitterStrategy"),
                        "must be \"FULL\" or \"NONE\"",
                    );
                    false
                }
            };
            out.push(Retrier {
                error_equals,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
                full_jitter,
            });
        }
        out
    }

    fn catchers(&mut self, v: Option<&Value>, at: &str) -> Vec<Catcher> {
        let Some(v) = v else { return Vec::new() };
        let Some(arr) = v.as_array() else {
            self.err(at, "must be an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in arr.iter().enumerate() {
            let cat = format!("{at}[{i}]");
            let Some(m) = c.as_object() else {
                self.err(&cat, "a catcher must be an object");
                continue;
            };
            self.only_fields(m, &["ErrorEquals", "Next", "ResultPath", "Comment"], &cat);
            let error_equals = self.error_equals(m, &cat, i + 1 == arr.len());
            let result_path = self.result_path(m.get("ResultPath"), &format!("{cat}.ResultPath"));
            match m.get("Next").and_then(Value::as_str) {
                Some(n) => out.push(Catcher {
                    error_equals,
                    next: n.to_owned(),
                    result_path,
                }),
                None => self.err(&format!("{cat}.Next"), "missing or not a string"),
            }
        }
        out
    }

    fn error_equals(&mut self, m: &Obj, at: &str, last: bool) -> Vec<String> {
        let eat = format!("{at}.ErrorEquals");
        let Some(arr) = m
            .get("ErrorEquals")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        else {
            self.err(&eat, "missing or not a non-empty array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in arr {
            match v.as_str() {
                Some(s) => out.push(s.to_owned()),
                None => self.err(&eat, format!("{v} is not a string")),
            }
        }
        if out.iter().any(|e| e == names::ALL) {
            if out.len() > 1 {
                self.err(&eat, "States.ALL must appear alone");
            }
            if !last {
                self.err(&eat, "States.ALL must be in the last retrier/catcher");
            }
        }
        out
    }

    fn selection(&mut self, m: &Obj, field: &str, at: &str) -> Selection {
        let fat = format!("{at}.{field}");
        match m.get(field) {
            None => Selection::All,
            Some(Value::Null) => Selection::Nothing,
            Some(Value::String(s)) if s == "$" => Selection::All,
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p) => Selection::Path(p),
                Err(e) => {
                    self.err(&fat, e);
                    Selection::All
                }
            },
            Some(other) => {
                self.err(&fat, format!("{other} is not a path or null"));
                Selection::All
            }
        }
    }

    fn result_path(&mut self, v: Option<&Value>, at: &str) -> ResultPath {
        match v {
            None => ResultPath::Replace,
            Some(Value::Null) => ResultPath::Discard,
            Some(v) => match self.ref_path(v, at) {
                Some(p) if p.root() == Root::Context => {
                    self.err(at, "ResultPath cannot write to the context object");
                    ResultPath::Replace
                }
                Some(p) => match p.segments() {
                    Some([]) => ResultPath::Replace,
                    Some(segs) => ResultPath::At(segs.to_vec()),
                    None => ResultPath::Replace,
                },
                None => ResultPath::Replace,
            },
        }
    }

    fn ref_path(&mut self, v: &Value, at: &str) -> Option<Path> {
        let Some(s) = v.as_str() else {
            self.err(at, format!("{v} is not a string"));
            return None;
        };
        match Path::parse_reference(s) {
            Ok(p) => Some(p),
            Err(e) => {
                self.err(at, e);
                None
            }
        }
    }

    fn template(&mut self, v: &Value, at: &str) -> Template {
        let mut errs = Vec::new();
        let t = Template::compile(v, at, &mut errs);
        for (a, m) in errs {
            self.err(&a, m);
        }
        t
    }

    fn source(&mut self, m: &Obj, field: &str, at: &str) -> Option<Source> {
        let pf = format!("{field}Path");
        match (m.get(field), m.get(&pf)) {
            (Some(_), Some(_)) => {
                self.err(at, format!("has both {field} and {pf}"));
                None
            }
            (Some(v), None) => match v.as_str() {
                Some(s) => Some(Source::Literal(s.to_owned())),
                None => {
                    self.err(&format!("{at}.{field}"), format!("{v} is not a string"));
                    None
                }
            },
            (None, Some(v)) => {
                let pat = format!("{at}.{pf}");
                match v.as_str() {
                    Some(s) if looks_like_call(s) => match Call::parse(s) {
                        Ok(c) => Some(Source::Call(c)),
                        Err(e) => {
                            self.err(&pat, e);
                            None
                        }
                    },
                    Some(_) => self.ref_path(v, &pat).map(Source::Path),
                    None => {
                        self.err(&pat, format!("{v} is not a string"));
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    /// `Field` (a positive/non-negative integer) or `FieldPath` (a reference path).
    fn amount(&mut self, m: &Obj, field: &str, at: &str, positive: bool) -> Option<Amount> {
        let pf = format!("{field}Path");
        match (m.get(field), m.get(&pf)) {
            (Some(_), Some(_)) => {
                self.err(at, format!("has both {field} and {pf}"));
                None
            }
            (Some(v), None) => match v.as_u64().filter(|n| !positive || *n > 0) {
                Some(n) => Some(Amount::Fixed(n)),
                None => {
                    let want = if positive {
                        "a positive integer"
                    } else {
                        "a non-negative integer"
                    };
                    self.err(&format!("{at}.{field}"), format!("{v} is not {want}"));
                    None
                }
            },
            (None, Some(v)) => self.ref_path(v, &format!("{at}.{pf}")).map(Amount::Path),
            (None, None) => None,
        }
    }

    fn opt_str<'a>(&mut self, m: &'a Obj, field: &str, at: &str) -> Option<&'a str> {
        match m.get(field) {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.err(&join(at, field), format!("{other} is not a string"));
                None
            }
        }
    }

    fn opt_positive(&mut self, m: &Obj, field: &str, at: &str) -> Option<u64> {
        let v = m.get(field)?;
        match v.as_u64().filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                self.err(&join(at, field), format!("{v} is not a positive integer"));
                None
            }
        }
    }

    fn only_fields(&mut self, m: &Obj, allowed: &[&str], at: &str) {
        for k in m.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(&join(at, k), "unknown field");
            }
        }
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Every transition out of a state, with the field it is in.
fn targets(s: &State) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    if let Some(n) = &s.next {
        out.push(("Next".to_owned(), n.as_str()));
    }
    if let Kind::Choice { choices, default } = &s.kind {
        for (i, (_, n)) in choices.iter().enumerate() {
            out.push((format!("Choices[{i}].Next"), n.as_str()));
        }
        if let Some(d) = default {
            out.push(("Default".to_owned(), d.as_str()));
        }
    }
    for (i, c) in s.catch.iter().enumerate() {
        out.push((format!("Catch[{i}].Next"), c.next.as_str()));
    }
    out
}

/// RFC 3339 with an uppercase `T` separator, as Step Functions requires.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if !s.contains('T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}
