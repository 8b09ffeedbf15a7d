//! What a config pins that a real deployment depends on: the Flux release (a real sha256, a URL a
//! cluster in AWS can reach) and the Kubernetes version (its EKS support window on the day).

use chrono::NaiveDate;
use labflow_core::config::{self, Checks, EnvironmentConfig, Findings, Purpose};
use labflow_core::versions::{self, EksSupport};
use labflow_testkit::config::{example_config, EXAMPLE_CONFIG_FILE};
use serde_json::{json, Value};

fn day(year: i32, month: u32, date: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, date).unwrap_or_default()
}

fn checks_on(today: NaiveDate) -> Checks {
    Checks {
        today,
        local_cloud: false,
        purpose: Purpose::Create,
    }
}

fn findings(value: &Value, checks: &Checks) -> Findings {
    let config: EnvironmentConfig =
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
    config::check(&config, checks)
}

fn messages(problems: &[config::Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn with_version(version: &str) -> Value {
    let mut value = example_config();
    value["cluster"]["version"] = json!(version);
    value
}

// ---- the Flux release pin ------------------------------------------------------------------

#[test]
fn the_committed_example_is_refused_until_its_flux_release_is_pinned() {
    let err = config::parse("lab", EXAMPLE_CONFIG_FILE).expect_err("the placeholder passed");
    let message = err.message();
    assert!(
        message.contains("flux.manifestSha256: all zeros is a placeholder"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "labflow flux pin {} --config",
            versions::FLUX_VERSION
        )),
        "the error does not say how to get the value: {message}"
    );
}

#[test]
fn a_loopback_manifest_url_serves_the_local_cloud_only() {
    for url in [
        "http://127.0.0.1:8080/v2.9.4/install.yaml",
        "http://localhost/install.yaml",
        "https://[::1]:9443/install.yaml",
    ] {
        let mut value = example_config();
        value["flux"]["manifestUrl"] = json!(url);
        let aws = findings(&value, &Checks::create(false));
        assert!(
            messages(&aws.errors)
                .contains("flux.manifestUrl: a loopback URL only serves the local cloud"),
            "{url} accepted for AWS: {:?}",
            aws.errors
        );
        let local = findings(&value, &Checks::create(true));
        assert!(
            local.errors.is_empty(),
            "{url} refused on the local cloud: {:?}",
            local.errors
        );
    }
}

#[test]
fn a_plain_http_manifest_url_is_refused_everywhere() {
    let mut value = example_config();
    value["flux"]["manifestUrl"] = json!("http://mirror.example.com/install.yaml");
    for checks in [Checks::create(false), Checks::create(true)] {
        let found = findings(&value, &checks);
        assert!(
            messages(&found.errors).contains("flux.manifestUrl: must be an https:// URL"),
            "{:?}",
            found.errors
        );
    }
}

#[test]
fn a_file_repository_url_and_a_loopback_look_alike_are_refused_outside_the_local_cloud() {
    let mut value = example_config();
    value["flux"]["repository"]["url"] = json!("file:///etc");
    let aws = findings(&value, &Checks::create(false));
    assert!(
        messages(&aws.errors).contains("flux.repository.url: must be an https:// or ssh:// URL"),
        "{:?}",
        aws.errors
    );
    assert!(findings(&value, &Checks::create(true)).errors.is_empty());

    // `http://127.` used to pass as loopback: this host is not.
    let mut value = example_config();
    value["flux"]["manifestUrl"] = json!("http://127.attacker.example/install.yaml");
    let local = findings(&value, &Checks::create(true));
    assert!(
        messages(&local.errors).contains("flux.manifestUrl: must be an https:// URL"),
        "{:?}",
        local.errors
    );
}

#[test]
fn teardown_does_not_depend_on_the_release_pin_or_the_support_window() {
    let value: Value = serde_json::from_str(EXAMPLE_CONFIG_FILE).unwrap_or_default();
    let mut value = value;
    value["cluster"]["version"] = json!("1.33");
    let long_after = checks_on(day(2030, 1, 1));
    let create = findings(&value, &long_after);
    assert!(
        !create.errors.is_empty(),
        "creating accepted a stale config"
    );
    let teardown = findings(&value, &long_after.for_purpose(Purpose::Teardown));
    assert!(
        teardown.errors.is_empty() && teardown.warnings.is_empty(),
        "a stale config would keep its lab up: {:?} {:?}",
        teardown.errors,
        teardown.warnings
    );
}

// ---- the EKS version -----------------------------------------------------------------------

#[test]
fn a_version_in_standard_support_passes_quietly() {
    let found = findings(&with_version("1.35"), &checks_on(day(2026, 12, 3)));
    assert_eq!(found, Findings::default());
}

#[test]
fn a_version_in_extended_support_is_a_warning_naming_the_price() {
    // 1.34's standard support ended on 2026-12-02 (extended billing starts that day, UTC).
    for today in [day(2026, 12, 2), day(2026, 12, 3)] {
        let found = findings(&with_version("1.34"), &checks_on(today));
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        let warnings = messages(&found.warnings);
        assert!(
            warnings.contains("cluster.version: 1.34 is in EKS extended support until 2027-12-02")
                && warnings.contains("$0.60 per hour instead of $0.10")
                && warnings.contains("move to 1.35"),
            "{warnings}"
        );
    }
    let day_before = findings(&with_version("1.34"), &checks_on(day(2026, 12, 1)));
    assert!(day_before.warnings.is_empty(), "{:?}", day_before.warnings);
}

#[test]
fn a_version_past_extended_support_is_refused() {
    // EKS creates no cluster of a version on or after its end of extended support.
    let found = findings(&with_version("1.33"), &checks_on(day(2027, 7, 29)));
    let errors = messages(&found.errors);
    assert!(
        errors.contains(
            "cluster.version: 1.33 reached the end of EKS extended support on 2027-07-29"
        ),
        "{errors}"
    );
    let parsed = config::parse_with(
        "lab",
        &with_version("1.33").to_string(),
        &checks_on(day(2027, 8, 1)),
    );
    assert!(
        parsed.is_err(),
        "parse accepted a version EKS no longer creates"
    );
}

#[test]
fn a_version_not_yet_on_eks_is_refused_and_one_newer_than_the_table_is_a_warning() {
    let early = findings(&with_version("1.35"), &checks_on(day(2026, 1, 1)));
    assert!(
        messages(&early.errors).contains("1.35 is not released on EKS before 2026-01-27"),
        "{:?}",
        early.errors
    );
    let newer = findings(&with_version("1.36"), &checks_on(day(2026, 12, 3)));
    assert!(newer.errors.is_empty(), "{:?}", newer.errors);
    assert!(
        messages(&newer.warnings).contains("aws eks describe-cluster-versions"),
        "{:?}",
        newer.warnings
    );
}

#[test]
fn the_calendar_is_ordered_and_each_window_is_fourteen_plus_twelve_months() {
    // The EKS version lifecycle page: 14 months of standard support after the EKS release, then
    // 12 months of extended support.
    let mut previous = 0;
    for row in versions::EKS_VERSIONS {
        assert!(row.minor > previous, "rows out of order at 1.{}", row.minor);
        previous = row.minor;
        let months = |(y, m, _): (i32, u32, u32)| y * 12 + m as i32;
        assert_eq!(
            months(row.end_of_standard_support) - months(row.eks_release),
            14,
            "1.{}",
            row.minor
        );
        assert_eq!(
            months(row.end_of_extended_support) - months(row.end_of_standard_support),
            12,
            "1.{}",
            row.minor
        );
    }
    assert_eq!(
        versions::eks_support(31, day(2026, 12, 3)),
        EksSupport::Ended {
            ended: day(2026, 11, 26)
        }
    );
    assert_eq!(
        versions::eks_support(20, day(2026, 12, 3)),
        EksSupport::EndedBefore {
            before: day(2026, 3, 23)
        }
    );
}

#[test]
fn the_example_asks_for_a_version_in_standard_support_today() {
    // Fails on the day the example's version leaves standard support: move the example on.
    let example = example_config();
    let version = example["cluster"]["version"].as_str().unwrap_or_default();
    let minor: u32 = version
        .strip_prefix("1.")
        .and_then(|m| m.parse().ok())
        .unwrap_or_default();
    let today = chrono::Utc::now().date_naive();
    assert!(
        matches!(
            versions::eks_support(minor, today),
            EksSupport::Standard { .. }
        ),
        "examples/environments/lab.json asks for {version}, which is not in EKS standard support \
         on {today}: {:?}",
        versions::eks_support(minor, today)
    );
}
