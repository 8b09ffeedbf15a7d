//! How Task states reach code: the [`TaskInvoker`] trait and a registry of in-process handlers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use serde_json::Value;

/// An error raised by a task: its name (matched by Retry/Catch) and cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs Task states. `resource` is the Lambda function name/ARN for `lambda:invoke` (its
/// `Parameters.FunctionName`) and for direct Lambda ARNs; the Task's `Resource` otherwise.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;

    /// Whether `resource` can be invoked at all (for up-front checks; default: yes).
    fn knows(&self, _resource: &str) -> bool {
        true
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, TaskError>> + Send>>;
type Handler = Box<dyn Fn(Value) -> BoxFuture + Send + Sync>;

/// Error name for a resource nobody registered (what Lambda answers for an unknown function).
pub const UNKNOWN_RESOURCE: &str = "Lambda.ResourceNotFoundException";

/// Handlers by name. A resource is looked up as given, then as the placeholder name inside
/// `${Name}`, then as the function name of a Lambda ARN (`arn:aws:lambda:...:function:NAME[:qualifier]`).
#[derive(Default)]
pub struct RegistryInvoker {
    handlers: HashMap<String, Handler>,
}

impl RegistryInvoker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an async handler.
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.handlers
            .insert(name.into(), Box::new(move |v| Box::pin(f(v))));
        self
    }

    /// Registers a synchronous handler.
    pub fn register_sync<F>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value) -> Result<Value, TaskError> + Send + Sync + 'static,
    {
        let f = std::sync::Arc::new(f);
        self.register(name, move |v| {
            let f = f.clone();
            async move { f(v) }
        })
    }

    fn find(&self, resource: &str) -> Option<&Handler> {
        candidates(resource)
            .into_iter()
            .find_map(|c| self.handlers.get(c))
    }

    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }
}

/// Names a resource may be registered under, most specific first.
pub fn candidates(resource: &str) -> Vec<&str> {
    let mut out = vec![resource];
    if let Some(inner) = resource
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
    {
        out.push(inner);
    }
    if let Some(rest) = resource.strip_prefix("arn:aws:lambda:") {
        if let Some(idx) = rest.find(":function:") {
            let name = &rest[idx + ":function:".len()..];
            out.push(name.split(':').next().unwrap_or(name));
        }
    }
    out
}

#[async_trait]
impl TaskInvoker for RegistryInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        match self.find(resource) {
            Some(h) => h(input).await,
            None => Err(TaskError::new(
                UNKNOWN_RESOURCE,
                format!(
                    "no task handler is registered for {resource:?} (registered: {})",
                    if self.handlers.is_empty() {
                        "none".to_owned()
                    } else {
                        self.names().join(", ")
                    }
                ),
            )),
        }
    }

    fn knows(&self, resource: &str) -> bool {
        self.find(resource).is_some()
    }
}
