//! Ownership tags and labels (DESIGN.md §4): what labflow creates, it marks; what it does not
//! mark, it never modifies or deletes.

use std::collections::{BTreeMap, HashMap};

use crate::config::{EnvironmentConfig, TAG_ENVIRONMENT, TAG_MANAGED_BY};

pub const MANAGED_BY: &str = "labflow";
/// Field manager for every server-side apply labflow makes.
pub const FIELD_MANAGER: &str = "labflow";
/// Label on every Kubernetes object labflow applies.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "labflow");

/// The tags for an environment's AWS resources: the config's extra tags plus ours.
pub fn tags(environment: &str, config: &EnvironmentConfig) -> HashMap<String, String> {
    let mut tags: HashMap<String, String> = config.tags.clone().into_iter().collect();
    tags.insert(TAG_ENVIRONMENT.into(), environment.into());
    tags.insert(TAG_MANAGED_BY.into(), MANAGED_BY.into());
    tags
}

/// Whether a resource's tags say it belongs to `environment` and was made by labflow.
pub fn is_owned<'a, I>(environment: &str, tags: I) -> bool
where
    I: IntoIterator<Item = (&'a String, &'a String)>,
{
    let tags: BTreeMap<&str, &str> = tags
        .into_iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tags.get(TAG_ENVIRONMENT) == Some(&environment) && tags.get(TAG_MANAGED_BY) == Some(&MANAGED_BY)
}
