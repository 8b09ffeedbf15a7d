//! What the lint found: findings that each name a file and, where there is one, an object.

use std::fmt;

/// A Kubernetes object as messages name it: `Kind namespace/name` (cluster-scoped: `Kind name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The class of defect; each has a fixture tree under cli/tests/fixtures/gitops/.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    Parse,
    RemovedApi,
    Path,
    Reference,
    Cycle,
    ChartVersion,
    Variable,
    Schema,
    Layout,
    /// What a real EKS cluster enforces that no schema says (gitops::real_cluster's rules).
    RealCluster,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Parse => "parse",
            Check::RemovedApi => "removed-api",
            Check::Path => "path",
            Check::Reference => "reference",
            Check::Cycle => "cycle",
            Check::ChartVersion => "chart-version",
            Check::Variable => "variable",
            Check::Schema => "schema",
            Check::Layout => "layout",
            Check::RealCluster => "real-cluster",
        }
    }
}

/// One defect: where (file relative to the linted directory, object) and what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub file: String,
    /// 1-based line where the object's document starts; 0 when not about one document.
    pub line: usize,
    pub object: Option<ObjectId>,
    pub check: Check,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: ", self.file, self.line)?;
        } else {
            write!(f, "{}: ", self.file)?;
        }
        if let Some(obj) = &self.object {
            write!(f, "{obj}: ")?;
        }
        write!(f, "[{}] {}", self.check.as_str(), self.message)
    }
}

/// The lint's result: every finding, sorted by file, plus what was looked at.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    pub findings: Vec<Finding>,
    pub files: usize,
    pub objects: usize,
    pub schema_validated: usize,
}

impl LintReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Findings of one class.
    pub fn of(&self, check: Check) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.check == check)
    }
}
