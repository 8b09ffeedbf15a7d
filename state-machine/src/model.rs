//! The typed model of a state machine, as produced by the linter ([`crate::lint`]).

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::intrinsic::Call;
use crate::path::{Path, Segment};
use crate::template::Template;

/// A loaded, linted state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub comment: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub scope: Scope,
}

/// A set of states with a start: the top level, a Parallel branch or a Map's ItemProcessor.
#[derive(Debug, Clone)]
pub struct Scope {
    pub start_at: String,
    pub states: HashMap<String, State>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: Kind,
    pub input_path: Selection,
    pub output_path: Selection,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    /// `None` for End states and terminal types (Succeed, Fail, Choice).
    pub next: Option<String>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// InputPath / OutputPath.
#[derive(Debug, Clone)]
pub enum Selection {
    /// `$` (the default): everything.
    All,
    /// `null`: an empty object.
    Nothing,
    Path(Path),
}

#[derive(Debug, Clone)]
pub enum ResultPath {
    /// `$` (the default): the result replaces the input.
    Replace,
    /// `null`: the result is discarded, the raw input passes through.
    Discard,
    At(Vec<Segment>),
}

#[derive(Debug, Clone)]
pub enum Kind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: Resource,
        timeout: Option<Amount>,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<Source>,
        cause: Option<Source>,
    },
    Parallel {
        branches: Vec<Scope>,
    },
    Map {
        items_path: Option<Path>,
        item_selector: Option<Template>,
        processor: Box<Scope>,
        max_concurrency: Amount,
    },
}

impl Kind {
    /// The `Type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Pass { .. } => "Pass",
            Kind::Task { .. } => "Task",
            Kind::Choice { .. } => "Choice",
            Kind::Wait(_) => "Wait",
            Kind::Succeed => "Succeed",
            Kind::Fail { .. } => "Fail",
            Kind::Parallel { .. } => "Parallel",
            Kind::Map { .. } => "Map",
        }
    }
}

/// What a Task calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `arn:aws:states:::lambda:invoke`: the function comes from Parameters.FunctionName.
    LambdaInvoke,
    /// A Lambda ARN (or `${Placeholder}`), an activity or another integration, called as is.
    Direct(String),
}

pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// A non-negative integer given literally or by a path (`TimeoutSeconds[Path]`, `MaxConcurrency[Path]`).
#[derive(Debug, Clone)]
pub enum Amount {
    Fixed(u64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(DateTime<FixedOffset>),
    TimestampPath(Path),
}

/// Fail's Error/Cause and their Path forms.
#[derive(Debug, Clone)]
pub enum Source {
    Literal(String),
    Path(Path),
    Call(Call),
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub full_jitter: bool,
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: ResultPath,
}

/// A Choice rule (boolean expression).
#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: Path, test: Test },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Debug, Clone)]
pub enum Operand<T> {
    Literal(T),
    Path(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeTest {
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

#[derive(Debug, Clone)]
pub enum Test {
    String(Cmp, Operand<String>),
    Numeric(Cmp, Operand<f64>),
    Boolean(Operand<bool>),
    Timestamp(Cmp, Operand<DateTime<FixedOffset>>),
    Matches(String),
    Type(TypeTest, bool),
}

impl StateMachine {
    /// The names Task states will call (FunctionName for `lambda:invoke` when it is a literal,
    /// the Resource otherwise), sorted and deduplicated: lets a runner check its invoker first.
    pub fn task_resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect(&self.scope, &mut out);
        out.sort();
        out.dedup();
        out
    }
}

fn collect(scope: &Scope, out: &mut Vec<String>) {
    for s in scope.states.values() {
        match &s.kind {
            Kind::Task {
                resource: Resource::Direct(r),
                ..
            } => out.push(r.clone()),
            Kind::Task {
                resource: Resource::LambdaInvoke,
                ..
            } => {
                if let Some(Value::String(f)) = s
                    .parameters
                    .as_ref()
                    .and_then(|p| p.literal_field("FunctionName"))
                {
                    out.push(f.clone());
                }
            }
            Kind::Parallel { branches } => branches.iter().for_each(|b| collect(b, out)),
            Kind::Map { processor, .. } => collect(processor, out),
            _ => {}
        }
    }
}
