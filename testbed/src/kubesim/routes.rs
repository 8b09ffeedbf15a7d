//! Request paths → what they address.

use super::store::Gvr;

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health,
    Api,
    Apis,
    Group(String),
    ResourceList {
        group: String,
        version: String,
    },
    Resource {
        gvr: Gvr,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
    Unknown,
}

pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["livez"] | ["readyz"] => Route::Health,
        ["api"] => Route::Api,
        ["api", "v1"] => Route::ResourceList {
            group: String::new(),
            version: "v1".into(),
        },
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["apis"] => Route::Apis,
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let gvr = |plural: &str| Gvr {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
    };
    let s = |v: Option<&&str>| v.map(|s| s.to_string());
    let namespaced =
        rest.len() >= 3 && rest[0] == "namespaces" && !matches!(rest[2], "status" | "finalize");
    if namespaced {
        if rest.len() > 5 {
            return Route::Unknown;
        }
        return Route::Resource {
            gvr: gvr(rest[2]),
            namespace: Some(rest[1].to_string()),
            name: s(rest.get(3)),
            subresource: s(rest.get(4)),
        };
    }
    if rest.is_empty() || rest.len() > 3 {
        return Route::Unknown;
    }
    Route::Resource {
        gvr: gvr(rest[0]),
        namespace: None,
        name: s(rest.get(1)),
        subresource: s(rest.get(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_cluster_and_namespace_subresources() {
        let r = parse("/apis/apps/v1/namespaces/ns/deployments/web/status");
        let Route::Resource {
            gvr,
            namespace,
            name,
            subresource,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (
                gvr.plural.as_str(),
                namespace.as_deref(),
                name.as_deref(),
                subresource.as_deref()
            ),
            ("deployments", Some("ns"), Some("web"), Some("status"))
        );
        let r = parse("/api/v1/namespaces/ns/status");
        let Route::Resource {
            gvr,
            namespace,
            name,
            subresource,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (
                gvr.plural.as_str(),
                namespace,
                name.as_deref(),
                subresource.as_deref()
            ),
            ("namespaces", None, Some("ns"), Some("status"))
        );
        assert_eq!(parse("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(parse("/nope"), Route::Unknown);
    }
}
