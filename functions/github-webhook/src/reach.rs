//! Which environment a push may act on (issue 26 item 1). Anyone with push access creates and
//! deletes branches, so a route alone must not decide: the environment's own config does.

use labflow_core::config::{EnvironmentConfig, RepositoryId};
use labflow_core::contract::Action;

use crate::push::Repository;
use crate::routes::{Matched, Routes};

/// Why a push of `branch`, routed as `matched`, may not start `action` on the environment whose
/// config is `config`; `None` when it may.
pub fn refusal(
    routes: &Routes,
    matched: &Matched,
    repository: &Repository,
    branch: &str,
    action: Action,
    config: &EnvironmentConfig,
) -> Option<String> {
    let environment = &matched.environment;
    // The signature proves GitHub sent it, not which repository it is about: an organisation
    // webhook or a secret shared by several repositories signs every repository's pushes alike
    // (issue 26 item 5). Only the repository Flux syncs drives the environment.
    let configured = &config.flux.repository.url;
    match RepositoryId::from_url(configured) {
        Some(ours) if ours.matches(&repository.full_name, repository.html_url.as_deref()) => {}
        Some(ours) => {
            return Some(format!(
                "environment {environment:?} syncs repository {:?}, not {:?}: pushes to another \
                 repository do not act on it",
                ours.full_name, repository.full_name
            ))
        }
        None => {
            return Some(format!(
                "environment {environment:?} has no owner/name in its repository URL \
                 {configured:?}: no push can be bound to it"
            ))
        }
    }
    // A `*` route names whatever follows the prefix: `env/lab` must not reach `lab`, which its
    // exact route gives to another branch.
    if matched.wildcard {
        if let Some(exact) = routes.exact_branch_of(environment) {
            return Some(format!(
                "environment {environment:?} has an exact route (branch {exact:?}): the prefix \
                 route that matched {branch:?} may not reach it"
            ));
        }
    }
    // Flux syncs only the branch its source follows: a sync for another branch would wait for a
    // revision that never comes (holding the lock), and that branch's deletion says nothing
    // about the environment.
    let followed = &config.flux.repository.branch;
    if followed != branch {
        return Some(format!(
            "environment {environment:?} follows branch {followed:?}, not {branch:?}: a push or \
             deletion of {branch:?} does not act on it"
        ));
    }
    if action == Action::Teardown && config.protected {
        return Some(format!(
            "environment {environment:?} is protected: only a teardown forced from the console \
             or `labflow start --action teardown --force` removes it"
        ));
    }
    None
}
