//! source-controller's Git authentication checks, made before any clone: the Secret named by
//! `spec.secretRef` must exist, and its keys must suit the URL's transport.
//!
//! Rules and messages as in fluxcd/source-controller `internal/controller/
//! gitrepository_controller.go` (`getAuthOpts`: "failed to get secret '<ns>/<name>': …",
//! "failed to configure authentication options: …", reason `AuthenticationFailed`) and
//! fluxcd/pkg `git/options.go` (`NewAuthOptions`, `AuthOptions.Validate`): an `ssh://` URL needs
//! `identity` and `known_hosts`; over HTTP(S) a `password` needs a `username`; a `bearerToken`
//! replaces both.

use super::super::objects::{self, Client, ObjRef};
use serde_json::Value;

/// Why source-controller would not even try to fetch: `(reason, message)`.
pub(super) fn check(client: &Client, repo: &Value) -> Result<(), (String, String)> {
    let url = objects::s(repo, "/spec/url");
    let namespace = objects::namespace(repo).unwrap_or("default");
    let secret_name = objects::s(repo, "/spec/secretRef/name");
    let data = if secret_name.is_empty() {
        serde_json::Map::new()
    } else {
        let secret = client.get(&ObjRef::new("v1", "Secret", Some(namespace), secret_name));
        let Some(secret) = secret else {
            return Err(failed(format!(
                "failed to get secret '{namespace}/{secret_name}': secrets \"{secret_name}\" not found"
            )));
        };
        secret
            .get("data")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let has = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    let transport = url.split("://").next().unwrap_or_default();
    let invalid = match transport {
        "ssh" if !has("identity") => Some("'identity' is required"),
        "ssh" if !has("known_hosts") => Some("'known_hosts' is required"),
        "https" | "http" if !has("bearerToken") && has("password") && !has("username") => {
            Some("'password' requires 'username' to be set")
        }
        _ => None,
    };
    match invalid {
        Some(problem) => Err(failed(format!(
            "failed to configure authentication options: invalid '{transport}' auth option: {problem}"
        ))),
        None => Ok(()),
    }
}

fn failed(message: String) -> (String, String) {
    ("AuthenticationFailed".to_string(), message)
}
