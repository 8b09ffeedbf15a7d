//! Branch → environment routes, stored as JSON at `/labflow/webhook/routes`:
//!
//! ```json
//! {"routes": [
//!   {"branch": "main", "environment": "lab"},
//!   {"prefix": "env/", "environment": "*"}
//! ]}
//! ```
//! Each route has exactly one of `branch` (exact name) or `prefix`. `environment` is an
//! environment name, or `"*"` on a prefix route: the rest of the branch name after the prefix
//! (`env/demo` → `demo`). An exact route beats any prefix; among prefixes the longest wins.
//! Deleting a branch tears its environment down only through a prefix route (deleting `main`
//! must never destroy `lab`).

use serde::Deserialize;

/// SSM parameter holding the routes.
pub const PARAMETER: &str = "/labflow/webhook/routes";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Routes {
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    pub environment: String,
}

/// How a branch matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub environment: String,
    /// Matched by a prefix rule (so deleting the branch tears the environment down).
    pub by_prefix: bool,
    /// The environment is the rest of the branch name (a `*` route).
    pub wildcard: bool,
}

/// The wildcard environment of prefix routes.
pub const REST_OF_BRANCH: &str = "*";

impl Routes {
    /// Parse and check the document; every problem at once.
    pub fn parse(json: &str) -> Result<Self, String> {
        let routes: Routes =
            serde_json::from_str(json).map_err(|err| format!("routes are not valid: {err}"))?;
        let mut problems = Vec::new();
        for (i, route) in routes.routes.iter().enumerate() {
            match (&route.branch, &route.prefix) {
                (Some(_), Some(_)) | (None, None) => problems.push(format!(
                    "routes[{i}]: needs exactly one of branch or prefix"
                )),
                (Some(branch), None) if branch.is_empty() => {
                    problems.push(format!("routes[{i}].branch: must not be empty"))
                }
                (None, Some(prefix)) if prefix.is_empty() => {
                    problems.push(format!("routes[{i}].prefix: must not be empty"))
                }
                _ => {}
            }
            if route.environment == REST_OF_BRANCH {
                if route.prefix.is_none() {
                    problems.push(format!(
                        "routes[{i}].environment: \"*\" is only allowed on prefix routes"
                    ));
                }
            } else if let Err(err) =
                labflow_core::config::check_environment_name(&route.environment)
            {
                problems.push(format!("routes[{i}].environment: {}", err.message()));
            }
        }
        if problems.is_empty() {
            Ok(routes)
        } else {
            Err(format!("routes are not valid: {}", problems.join("; ")))
        }
    }

    /// The environment `branch` routes to, if any. The environment name of a `*` route is not
    /// checked here (the caller reports a bad name with the reason).
    pub fn route(&self, branch: &str) -> Option<Matched> {
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.branch.as_deref() == Some(branch))
        {
            return Some(Matched {
                environment: route.environment.clone(),
                by_prefix: false,
                wildcard: false,
            });
        }
        let (route, prefix) = self
            .routes
            .iter()
            .filter_map(|r| r.prefix.as_deref().map(|p| (r, p)))
            .filter(|(_, p)| branch.starts_with(p) && branch.len() > p.len())
            .max_by_key(|(_, p)| p.len())?;
        let wildcard = route.environment == REST_OF_BRANCH;
        let environment = if wildcard {
            branch[prefix.len()..].to_string()
        } else {
            route.environment.clone()
        };
        Some(Matched {
            environment,
            by_prefix: true,
            wildcard,
        })
    }

    /// The branch of an exact route to `environment`, if it has one.
    pub fn exact_branch_of(&self, environment: &str) -> Option<&str> {
        self.routes
            .iter()
            .filter(|r| r.environment == environment)
            .find_map(|r| r.branch.as_deref())
    }
}
