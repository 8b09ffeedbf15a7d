//! `labflow diagram`: the state machine as a Mermaid flowchart, printed or written into README.md
//! between the `<!-- state-machine-diagram:start -->` / `<!-- state-machine-diagram:end -->`
//! markers.
//!
//! States are nodes (Task: rectangle, Choice: rhombus, Wait: parallelogram, Pass: rounded,
//! Succeed/Fail: stadium), Map and Parallel states are subgraphs holding their processor/branches.
//! Next and Default edges are solid, Choice edges carry a short rendering of their rule, Catch
//! edges are dashed and labelled with the error names they catch.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use labflow_states::model::{Cmp, Kind, Operand, Rule, Scope, Test, TypeTest};
use labflow_states::StateMachine;

/// The markers around the generated block in README.md.
pub const START_MARKER: &str = "<!-- state-machine-diagram:start -->";
pub const END_MARKER: &str = "<!-- state-machine-diagram:end -->";

/// Longest Choice edge label before it is shortened with `…`.
const MAX_LABEL: usize = 40;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 ok; 1 --check-readme found the README diagram out of date; \
2 bad usage or input (unreadable or invalid definition, README without the markers)."
)]
pub struct DiagramArgs {
    /// The state machine definition; default `<repo>/state-machine/lifecycle.asl.json`.
    #[arg(long)]
    pub definition: Option<PathBuf>,
    /// Replace the block between the diagram markers in README.md instead of printing.
    #[arg(long, conflicts_with = "check_readme")]
    pub write_readme: bool,
    /// Exit 1 when the README's diagram differs from the definition's (for CI).
    #[arg(long)]
    pub check_readme: bool,
    /// The README to write or check; default `<repo>/README.md`.
    #[arg(long)]
    pub readme: Option<PathBuf>,
}

pub fn run(args: DiagramArgs) -> anyhow::Result<ExitCode> {
    let root = crate::lint::repo_root_or_cwd();
    let definition = args
        .definition
        .clone()
        .unwrap_or_else(|| root.join(crate::lint::DEFAULT_DEFINITION));
    let machine = load_machine(&definition)?;
    let diagram = mermaid(&machine);
    if !(args.write_readme || args.check_readme) {
        print!("{diagram}");
        return Ok(ExitCode::SUCCESS);
    }
    let readme = args.readme.unwrap_or_else(|| root.join("README.md"));
    let text = std::fs::read_to_string(&readme)
        .with_context(|| format!("reading {}", readme.display()))?;
    let updated = replace_block(&text, &diagram).ok_or_else(|| {
        anyhow!(
            "{} has no {START_MARKER} ... {END_MARKER} block (hint: add both markers where the diagram belongs)",
            readme.display()
        )
    })?;
    if args.check_readme {
        if updated == text {
            eprintln!("{}: state machine diagram is up to date", readme.display());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{}: state machine diagram is out of date (hint: labflow diagram --write-readme)",
            readme.display()
        );
        return Ok(ExitCode::from(1));
    }
    if updated != text {
        std::fs::write(&readme, &updated)
            .with_context(|| format!("writing {}", readme.display()))?;
    }
    eprintln!("{}: state machine diagram written", readme.display());
    Ok(ExitCode::SUCCESS)
}

/// Reads and lints a definition; lint problems are an error naming each one.
pub fn load_machine(path: &Path) -> anyhow::Result<StateMachine> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not JSON (hint: labflow lint --definition {})",
            path.display(),
            path.display()
        )
    })?;
    labflow_states::lint(&value).map_err(|errs| {
        let first = errs.0.first().map(ToString::to_string).unwrap_or_default();
        anyhow!(
            "{} is not a valid state machine ({} problem(s), first: {first}) (hint: labflow lint --definition {})",
            path.display(),
            errs.0.len(),
            path.display()
        )
    })
}

/// `text` with the block between the markers replaced by `diagram` in a ```mermaid fence;
/// `None` when the markers are missing or out of order.
pub fn replace_block(text: &str, diagram: &str) -> Option<String> {
    let start = text.find(START_MARKER)? + START_MARKER.len();
    let end = start + text[start..].find(END_MARKER)?;
    Some(format!(
        "{}\n```mermaid\n{diagram}```\n{}",
        &text[..start],
        &text[end..]
    ))
}

/// The Mermaid flowchart (ends with a newline).
pub fn mermaid(machine: &StateMachine) -> String {
    let mut r = Renderer::default();
    r.out.push_str("flowchart TD\n");
    r.out.push_str("    lf_start((start))\n");
    let top = r.scope(&machine.scope, "", 1);
    let first = r.id(&top, &machine.scope.start_at);
    r.edges.push(format!("    lf_start --> {first}"));
    let mut out = r.out;
    for edge in &r.edges {
        out.push_str(edge);
        out.push('\n');
    }
    if r.uses_end {
        out.push_str("    lf_end((end))\n");
    }
    out.push_str("    classDef choice fill:#fff8dc,stroke:#b8860b\n");
    out.push_str("    classDef succeed fill:#e6ffe6,stroke:#2e8b57\n");
    out.push_str("    classDef fail fill:#ffe6e6,stroke:#b22222\n");
    for (class, ids) in [
        ("choice", &r.choice),
        ("succeed", &r.succeed),
        ("fail", &r.fail),
    ] {
        if !ids.is_empty() {
            let _ = writeln!(out, "    class {} {class}", ids.join(","));
        }
    }
    out
}

/// The states of a scope in a stable, readable order: breadth-first from StartAt following
/// Next, Choice, Default and Catch edges; unreachable states (the linter rejects them) last, sorted.
pub fn state_order(scope: &Scope) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut queue = VecDeque::from([scope.start_at.clone()]);
    while let Some(name) = queue.pop_front() {
        if !scope.states.contains_key(&name) || !seen.insert(name.clone()) {
            continue;
        }
        if let Some(state) = scope.states.get(&name) {
            if let Kind::Choice { choices, default } = &state.kind {
                queue.extend(choices.iter().map(|(_, next)| next.clone()));
                queue.extend(default.iter().cloned());
            }
            queue.extend(state.next.iter().cloned());
            queue.extend(state.catch.iter().map(|c| c.next.clone()));
        }
        order.push(name);
    }
    let mut rest: Vec<String> = scope
        .states
        .keys()
        .filter(|k| !seen.contains(*k))
        .cloned()
        .collect();
    rest.sort();
    order.extend(rest);
    order
}

/// Every state name in a machine, nested scopes included.
pub fn all_state_names(machine: &StateMachine) -> Vec<String> {
    fn walk(scope: &Scope, out: &mut Vec<String>) {
        for name in state_order(scope) {
            if let Some(state) = scope.states.get(&name) {
                match &state.kind {
                    Kind::Map { processor, .. } => walk(processor, out),
                    Kind::Parallel { branches } => branches.iter().for_each(|b| walk(b, out)),
                    _ => {}
                }
            }
            out.push(name);
        }
    }
    let mut out = Vec::new();
    walk(&machine.scope, &mut out);
    out
}

#[derive(Default)]
struct Renderer {
    out: String,
    edges: Vec<String>,
    used_ids: HashSet<String>,
    uses_end: bool,
    choice: Vec<String>,
    succeed: Vec<String>,
    fail: Vec<String>,
}

impl Renderer {
    /// A Mermaid id for `name` in the scope `prefix`, unique in the whole chart.
    fn fresh_id(&mut self, prefix: &str, name: &str) -> String {
        let clean: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let base = format!("{prefix}s_{clean}");
        let mut id = base.clone();
        let mut n = 2;
        while !self.used_ids.insert(id.clone()) {
            id = format!("{base}{n}");
            n += 1;
        }
        id
    }

    fn id(&self, ids: &HashMap<String, String>, name: &str) -> String {
        ids.get(name).cloned().unwrap_or_else(|| "lf_end".into())
    }

    /// Declares the scope's nodes (indented by `depth`) and queues its edges; returns the ids.
    fn scope(&mut self, scope: &Scope, prefix: &str, depth: usize) -> HashMap<String, String> {
        let pad = "    ".repeat(depth);
        let order = state_order(scope);
        let ids: HashMap<String, String> = order
            .iter()
            .map(|name| (name.clone(), self.fresh_id(prefix, name)))
            .collect();
        for name in &order {
            let Some(state) = scope.states.get(name) else {
                continue;
            };
            let id = self.id(&ids, name);
            let label = escape(name);
            match &state.kind {
                Kind::Map { processor, .. } => {
                    let _ = writeln!(self.out, "{pad}subgraph {id}[\"{label} (Map)\"]");
                    let _ = writeln!(self.out, "{pad}    direction TB");
                    self.scope(processor, &format!("{id}_"), depth + 1);
                    let _ = writeln!(self.out, "{pad}end");
                }
                Kind::Parallel { branches } => {
                    let _ = writeln!(self.out, "{pad}subgraph {id}[\"{label} (Parallel)\"]");
                    let _ = writeln!(self.out, "{pad}    direction TB");
                    for (i, branch) in branches.iter().enumerate() {
                        let bid = format!("{id}_b{}", i + 1);
                        let _ = writeln!(self.out, "{pad}    subgraph {bid}[\"branch {}\"]", i + 1);
                        self.scope(branch, &format!("{bid}_"), depth + 2);
                        let _ = writeln!(self.out, "{pad}    end");
                    }
                    let _ = writeln!(self.out, "{pad}end");
                }
                Kind::Task { .. } => {
                    let _ = writeln!(self.out, "{pad}{id}[\"{label}\"]");
                }
                Kind::Choice { .. } => {
                    let _ = writeln!(self.out, "{pad}{id}{{\"{label}\"}}");
                    self.choice.push(id.clone());
                }
                Kind::Wait(_) => {
                    let _ = writeln!(self.out, "{pad}{id}[/\"{label}\"/]");
                }
                Kind::Pass { .. } => {
                    let _ = writeln!(self.out, "{pad}{id}(\"{label}\")");
                }
                Kind::Succeed => {
                    let _ = writeln!(self.out, "{pad}{id}([\"{label}\"])");
                    self.succeed.push(id.clone());
                }
                Kind::Fail { .. } => {
                    let _ = writeln!(self.out, "{pad}{id}([\"{label}\"])");
                    self.fail.push(id.clone());
                }
            }
            // Edges go after every node declaration (at the top level), so Mermaid never pulls a
            // target node into the subgraph an edge happens to be written in.
            if let Kind::Choice { choices, default } = &state.kind {
                for (rule, next) in choices {
                    let to = self.id(&ids, next);
                    let text = escape(&shorten(&rule_label(rule)));
                    self.edges.push(format!("    {id} -- \"{text}\" --> {to}"));
                }
                if let Some(next) = default {
                    let to = self.id(&ids, next);
                    self.edges.push(format!("    {id} -- \"default\" --> {to}"));
                }
            }
            match &state.next {
                Some(next) => {
                    let to = self.id(&ids, next);
                    self.edges.push(format!("    {id} --> {to}"));
                }
                None => {
                    let terminal = matches!(
                        state.kind,
                        Kind::Choice { .. } | Kind::Succeed | Kind::Fail { .. }
                    );
                    // An End state of a nested scope ends its branch or iteration, not the run.
                    if !terminal && prefix.is_empty() {
                        self.uses_end = true;
                        self.edges.push(format!("    {id} --> lf_end"));
                    }
                }
            }
            for catcher in &state.catch {
                let to = self.id(&ids, &catcher.next);
                let text = escape(&catcher.error_equals.join(", "));
                self.edges.push(format!("    {id} -. \"{text}\" .-> {to}"));
            }
        }
        ids
    }
}

/// Mermaid-safe text for a quoted label.
fn escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_LABEL {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX_LABEL - 1).collect();
    s.push('…');
    s
}

/// A brief rendering of a Choice rule: `action = teardown`, `cluster.done`, `pollSeconds present`.
pub fn rule_label(rule: &Rule) -> String {
    match rule {
        Rule::And(rules) => join(rules, " and "),
        Rule::Or(rules) => join(rules, " or "),
        Rule::Not(inner) => format!("not {}", grouped(inner)),
        Rule::Test { variable, test } => {
            let var = variable.as_str();
            let var = var.strip_prefix("$.").unwrap_or(var);
            test_label(var, test)
        }
    }
}

fn join(rules: &[Rule], sep: &str) -> String {
    rules.iter().map(grouped).collect::<Vec<_>>().join(sep)
}

fn grouped(rule: &Rule) -> String {
    match rule {
        Rule::And(_) | Rule::Or(_) => format!("({})", rule_label(rule)),
        _ => rule_label(rule),
    }
}

fn cmp(c: Cmp) -> &'static str {
    match c {
        Cmp::Eq => "=",
        Cmp::Lt => "<",
        Cmp::Gt => ">",
        Cmp::Le => "≤",
        Cmp::Ge => "≥",
    }
}

fn operand<T: std::fmt::Display>(o: &Operand<T>) -> String {
    match o {
        Operand::Literal(v) => v.to_string(),
        Operand::Path(p) => p.to_string(),
    }
}

fn test_label(var: &str, test: &Test) -> String {
    match test {
        Test::String(c, o) => format!("{var} {} {}", cmp(*c), operand(o)),
        Test::Numeric(c, o) => format!("{var} {} {}", cmp(*c), operand(o)),
        Test::Timestamp(c, o) => format!("{var} {} {}", cmp(*c), operand(o)),
        Test::Boolean(Operand::Literal(true)) => var.to_string(),
        Test::Boolean(Operand::Literal(false)) => format!("not {var}"),
        Test::Boolean(o) => format!("{var} = {}", operand(o)),
        Test::Matches(pattern) => format!("{var} matches {pattern}"),
        Test::Type(kind, expected) => {
            let what = match kind {
                TypeTest::IsNull => "null",
                TypeTest::IsPresent => "present",
                TypeTest::IsNumeric => "numeric",
                TypeTest::IsString => "a string",
                TypeTest::IsBoolean => "a boolean",
                TypeTest::IsTimestamp => "a timestamp",
            };
            match (kind, expected) {
                (TypeTest::IsPresent, true) => format!("{var} present"),
                (TypeTest::IsPresent, false) => format!("no {var}"),
                (_, true) => format!("{var} is {what}"),
                (_, false) => format!("{var} is not {what}"),
            }
        }
    }
}

/// Writes the diagram for `definition` to `out` (what `labflow diagram` prints).
pub fn print(definition: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let machine = load_machine(definition)?;
    out.write_all(mermaid(&machine).as_bytes())?;
    Ok(())
}
