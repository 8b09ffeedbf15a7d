//! infra/terraform against the rest of the repository: the function crates, their declared AWS
//! operations, the state machine's placeholders and the packaging script.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, ensure, Context, Result};
use hcl::{Block, Expression};
use labflow_infra_tests::hcl_expr::{
    literal_strings, may_contain_wildcard, object_entries, reference_string, string_or_template,
};
use labflow_infra_tests::terraform::{attribute, nested, Module};
use labflow_infra_tests::{asl, functions, repo};

fn module() -> Result<Module> {
    Ok(Module::load(&repo::terraform_dir())?)
}

fn keys(module: &Module, local: &str) -> Result<BTreeSet<String>> {
    let expr = module.local(local)?;
    Ok(object_entries(expr, &format!("local.{local}"))?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

fn attr<'a>(block: &'a Block, key: &str, what: &str) -> Result<&'a Expression> {
    attribute(block.body(), key).with_context(|| format!("{what} has no `{key}`"))
}

fn reference_of(block: &Block, key: &str, what: &str) -> Result<String> {
    let expr = attr(block, key, what)?;
    reference_string(expr).with_context(|| format!("{what}.{key} is not a reference: {expr:?}"))
}

fn difference(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

#[test]
fn every_function_crate_has_a_lambda_and_a_zip_path() -> Result<()> {
    let module = module()?;
    let crates = functions::discover(&repo::functions_dir())?;
    ensure!(!crates.is_empty(), "no function crates under functions/");
    let crate_names: BTreeSet<String> = crates.iter().map(|c| c.name.clone()).collect();
    let lambdas = keys(&module, "lambda_functions")?;
    let missing = difference(&crate_names, &lambdas);
    let extra = difference(&lambdas, &crate_names);
    ensure!(
        missing.is_empty() && extra.is_empty(),
        "local.lambda_functions (infra/terraform/lambdas.tf) and functions/ differ: \
         crates without a Lambda {missing:?}, Lambdas without a crate {extra:?}"
    );

    // cargo-lambda names the zip after the binary: it must be the directory name.
    for krate in &crates {
        let bins = krate.binaries()?;
        ensure!(
            bins.contains(&krate.name),
            "functions/{0}/Cargo.toml has no [[bin]] named {0:?} (has {bins:?})",
            krate.name
        );
    }

    let step = module.labelled("resource", "aws_lambda_function", "step")?;
    let what = "aws_lambda_function.step";
    ensure!(reference_of(step, "for_each", what)? == "local.lambda_functions");
    let zip = "${local.lambda_dist_dir}/${each.key}.zip";
    ensure!(
        string_or_template(attr(step, "filename", what)?).as_deref() == Some(zip),
        "{what}.filename must be \"{zip}\""
    );
    // fileexists(<zip>) ? filebase64sha256(<zip>) : null — the guard lets the precondition say
    // "run make package" instead of the plan failing inside filebase64sha256.
    let Expression::Conditional(hash) = attr(step, "source_code_hash", what)? else {
        bail!("{what}.source_code_hash must be fileexists(<zip>) ? filebase64sha256(<zip>) : null");
    };
    let call_on_zip = |expr: &Expression, name: &str| {
        matches!(expr, Expression::FuncCall(call)
            if call.name.name.as_str() == name
                && call.args.len() == 1
                && string_or_template(&call.args[0]).as_deref() == Some(zip))
    };
    ensure!(
        call_on_zip(&hash.cond_expr, "fileexists")
            && call_on_zip(&hash.true_expr, "filebase64sha256")
            && matches!(hash.false_expr, Expression::Null),
        "{what}.source_code_hash must be fileexists(<zip>) ? filebase64sha256(<zip>) : null"
    );
    ensure!(string_or_template(attr(step, "runtime", what)?).as_deref() == Some("provided.al2023"));
    ensure!(string_or_template(attr(step, "handler", what)?).as_deref() == Some("bootstrap"));

    // The default dist dir, resolved from the module directory, is where package.sh writes.
    let default_dir = string_or_template(module.variable_default("lambda_dist_dir")?)
        .context("var.lambda_dist_dir default must be a string")?;
    let terraform_zips = repo::normalize(&repo::terraform_dir().join(&default_dir));
    let script = std::fs::read_to_string(repo::package_script())?;
    let script_dir = script
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("dist_dir=\"${LABFLOW_DIST_DIR:-$root/")
        })
        .and_then(|rest| rest.strip_suffix("}\""))
        .context("scripts/package.sh must set dist_dir=\"${LABFLOW_DIST_DIR:-$root/<dir>}\"")?;
    let package_zips = repo::normalize(&repo::root().join(script_dir));
    ensure!(
        terraform_zips == package_zips,
        "Terraform reads zips from {} but package.sh writes them to {}",
        terraform_zips.display(),
        package_zips.display()
    );

    // Same default architecture on both sides.
    let tf_arch = string_or_template(module.variable_default("lambda_architecture")?);
    ensure!(
        tf_arch.as_deref() == Some("arm64") && script.contains("arch=\"${LABFLOW_ARCH:-arm64}\""),
        "default architecture must be arm64 in variables.tf and scripts/package.sh"
    );
    let arch_ref = attr(step, "architectures", what)?;
    ensure!(
        matches!(arch_ref, Expression::Array(items) if items.len() == 1
            && reference_string(&items[0]).as_deref() == Some("var.lambda_architecture")),
        "{what}.architectures must be [var.lambda_architecture]"
    );
    Ok(())
}

#[test]
fn every_state_machine_placeholder_is_supplied_by_templatefile() -> Result<()> {
    let module = module()?;
    let path = repo::state_machine_file();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} does not exist (or is unreadable): Terraform deploys it with templatefile, \
             so the cross-check cannot pass without it",
            path.display()
        )
    })?;

    let machine = module.labelled("resource", "aws_sfn_state_machine", "lifecycle")?;
    let Expression::FuncCall(call) =
        attr(machine, "definition", "aws_sfn_state_machine.lifecycle")?
    else {
        bail!("aws_sfn_state_machine.lifecycle.definition must be a templatefile(...) call");
    };
    ensure!(call.name.name.as_str() == "templatefile" && call.args.len() == 2);
    let template_path = string_or_template(&call.args[0]).context("templatefile path")?;
    let relative = template_path
        .strip_prefix("${path.module}/")
        .context("templatefile path must start with ${path.module}/")?;
    ensure!(
        repo::normalize(&repo::terraform_dir().join(relative)) == repo::normalize(&path),
        "templatefile reads {template_path}, not state-machine/lifecycle.asl.json"
    );

    let vars_ref = reference_string(&call.args[1]).context("templatefile vars must be a local")?;
    let vars_name = vars_ref
        .strip_prefix("local.")
        .context("templatefile vars must be a local")?;
    let supplied = object_entries(module.local(vars_name)?, &vars_ref)?;
    let supplied_names: BTreeSet<String> = supplied.iter().map(|(k, _)| k.clone()).collect();

    let used = asl::placeholders(&text);
    ensure!(
        !used.is_empty(),
        "{} has no ${{...}} placeholders",
        path.display()
    );
    let unsupplied = difference(&used, &supplied_names);
    let unused = difference(&supplied_names, &used);
    ensure!(
        unsupplied.is_empty(),
        "placeholders in lifecycle.asl.json that {vars_ref} does not supply: {unsupplied:?}"
    );
    ensure!(
        unused.is_empty(),
        "{vars_ref} supplies values lifecycle.asl.json does not use: {unused:?}"
    );
    ensure!(
        asl::directives(&text) == 0,
        "lifecycle.asl.json contains %{{ template directives"
    );

    // Each value is the ARN of a Lambda Terraform deploys.
    let lambdas = keys(&module, "lambda_functions")?;
    for (name, value) in &supplied {
        let reference = reference_string(value).unwrap_or_default();
        let function = reference
            .strip_prefix("aws_lambda_function.step.")
            .and_then(|rest| rest.strip_suffix(".arn"));
        ensure!(
            function.is_some_and(|f| lambdas.contains(f)),
            "{vars_ref}.{name} must be aws_lambda_function.step[\"<function>\"].arn, got {reference:?}"
        );
    }

    // What templatefile renders must still be JSON (the definition Step Functions receives).
    let rendered = asl::render(&text, |name| {
        format!("arn:aws:lambda:eu-west-1:123456789012:function:labflow-{name}")
    });
    serde_json::from_str::<serde_json::Value>(&rendered)
        .context("lifecycle.asl.json with placeholders filled is not valid JSON")?;
    Ok(())
}

/// function → action → resource expression, from local.lambda_permissions.
fn lambda_permissions(module: &Module) -> Result<BTreeMap<String, Vec<(String, &Expression)>>> {
    let mut out = BTreeMap::new();
    for (function, actions) in object_entries(
        module.local("lambda_permissions")?,
        "local.lambda_permissions",
    )? {
        let entries = object_entries(actions, &format!("local.lambda_permissions.{function}"))?;
        out.insert(function, entries);
    }
    Ok(out)
}

#[test]
fn each_lambda_role_has_exactly_its_crates_actions() -> Result<()> {
    let module = module()?;
    let permissions = lambda_permissions(&module)?;
    let mut problems = Vec::new();
    for krate in functions::discover(&repo::functions_dir())? {
        let declared = match krate.declared_actions() {
            Ok(declared) => declared,
            Err(err) => {
                problems.push(format!("{}: {err}", krate.name));
                continue;
            }
        };
        let duplicates = declared.duplicates();
        if !duplicates.is_empty() {
            problems.push(format!("{}: declared twice: {duplicates:?}", krate.name));
        }
        let Some(granted) = permissions.get(&krate.name) else {
            problems.push(format!(
                "{}: no entry in local.lambda_permissions (infra/terraform/iam_lambdas.tf)",
                krate.name
            ));
            continue;
        };
        let granted: BTreeSet<String> = granted.iter().map(|(a, _)| a.clone()).collect();
        let wanted = declared.all();
        let missing = difference(&wanted, &granted);
        let extra = difference(&granted, &wanted);
        if !missing.is_empty() || !extra.is_empty() {
            problems.push(format!(
                "{}: Terraform lacks {missing:?}, grants undeclared {extra:?}",
                krate.name
            ));
        }
    }
    ensure!(
        problems.is_empty(),
        "Lambda roles and AWS_OPERATIONS differ:\n  {}",
        problems.join("\n  ")
    );
    Ok(())
}

#[test]
fn lambda_policies_are_generated_from_the_map_and_nothing_else() -> Result<()> {
    let module = module()?;
    let doc = module.labelled("data", "aws_iam_policy_document", "lambda")?;
    let what = "data.aws_iam_policy_document.lambda";
    ensure!(reference_of(doc, "for_each", what)? == "local.lambda_permissions");

    // The generated statements: local.lambda_statements groups each function's entries of
    // local.lambda_permissions by resource set (tests/plan.rs checks, on the policies Terraform
    // renders, that the grouped statements grant exactly the crate's actions).
    let Expression::ForExpr(grouping) = module.local("lambda_statements")? else {
        bail!("local.lambda_statements must be a for expression over local.lambda_permissions");
    };
    ensure!(
        reference_string(&grouping.collection_expr).as_deref() == Some("local.lambda_permissions"),
        "local.lambda_statements must iterate local.lambda_permissions"
    );
    let dynamics: Vec<&Block> = nested(doc.body(), "dynamic").collect();
    ensure!(
        dynamics.len() == 1,
        "{what} must have exactly one dynamic statement"
    );
    let dynamic = dynamics[0];
    ensure!(
        reference_of(dynamic, "for_each", "dynamic statement")?
            == "local.lambda_statements.[each.key]"
    );
    let content = nested(dynamic.body(), "content")
        .next()
        .context("dynamic statement has no content")?;
    ensure!(
        reference_of(content, "actions", "content")? == "statement.value.actions",
        "dynamic statement actions must be statement.value.actions"
    );
    ensure!(reference_of(content, "resources", "content")? == "statement.value.resources");
    ensure!(
        attribute(content.body(), "not_actions").is_none()
            && attribute(content.body(), "effect").is_none(),
        "dynamic statement must be a plain Allow of its actions"
    );

    // The fixed statements: only the runtime's own needs.
    let mut runtime = BTreeSet::new();
    for statement in nested(doc.body(), "statement") {
        ensure!(
            attribute(statement.body(), "effect").is_none()
                && attribute(statement.body(), "not_actions").is_none()
        );
        let actions =
            attribute(statement.body(), "actions").context("statement without actions")?;
        runtime.extend(literal_strings(&module, actions)?);
    }
    let expected: BTreeSet<String> = functions::RUNTIME_ACTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    ensure!(
        runtime == expected,
        "runtime statements of {what} grant {runtime:?}, expected exactly {expected:?}"
    );

    // Wiring: each function's role gets its own document and no other policy.
    let policy = module.labelled("resource", "aws_iam_role_policy", "lambda")?;
    ensure!(
        reference_of(policy, "for_each", "aws_iam_role_policy.lambda")?
            == "local.lambda_permissions"
    );
    ensure!(
        reference_of(policy, "role", "aws_iam_role_policy.lambda")?
            == "aws_iam_role.lambda.[each.key].id"
    );
    ensure!(
        reference_of(policy, "policy", "aws_iam_role_policy.lambda")?
            == "data.aws_iam_policy_document.lambda.[each.key].json"
    );
    let step = module.labelled("resource", "aws_lambda_function", "step")?;
    ensure!(
        reference_of(step, "role", "aws_lambda_function.step")?
            == "aws_iam_role.lambda.[each.key].arn"
    );
    let role = module.labelled("resource", "aws_iam_role", "lambda")?;
    ensure!(
        attribute(role.body(), "managed_policy_arns").is_none()
            && nested(role.body(), "inline_policy").next().is_none(),
        "aws_iam_role.lambda must not carry policies of its own"
    );
    for ty in [
        "aws_iam_role_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_policy_attachment",
        "aws_iam_role_policies_exclusive",
        "aws_iam_role_policy_attachments_exclusive",
    ] {
        for (name, block) in module.resources_of(ty) {
            if ty == "aws_iam_role_policy" && name == "lambda" {
                continue;
            }
            let role = attribute(block.body(), "role")
                .or_else(|| attribute(block.body(), "role_name"))
                .and_then(reference_string)
                .unwrap_or_default();
            ensure!(
                !role.starts_with("aws_iam_role.lambda."),
                "{ty}.{name} adds permissions to a Lambda role outside local.lambda_permissions"
            );
        }
    }
    Ok(())
}

#[test]
fn no_wildcards_except_listed_unscoped_actions() -> Result<()> {
    let module = module()?;
    let unscoped = object_entries(
        module.local("lambda_unscoped_actions")?,
        "local.lambda_unscoped_actions",
    )?;
    let mut exempt = BTreeSet::new();
    for (action, reason) in &unscoped {
        let reason = string_or_template(reason).unwrap_or_default();
        ensure!(
            reason.trim().len() >= 20,
            "local.lambda_unscoped_actions[{action:?}] needs a reason (why AWS offers no resource scoping)"
        );
        exempt.insert(action.clone());
    }

    let mut used_exemptions = BTreeSet::new();
    let mut problems = Vec::new();
    for (function, actions) in lambda_permissions(&module)? {
        for (action, resources) in actions {
            if action.contains('*') {
                problems.push(format!("{function}: wildcard action {action:?}"));
            }
            if may_contain_wildcard(&module, resources)? {
                if exempt.contains(&action) {
                    used_exemptions.insert(action.clone());
                } else {
                    problems.push(format!(
                        "{function}: {action} on \"*\" but it is not in local.lambda_unscoped_actions"
                    ));
                }
            }
        }
    }

    let doc = module.labelled("data", "aws_iam_policy_document", "lambda")?;
    for statement in nested(doc.body(), "statement") {
        let actions = literal_strings(
            &module,
            attribute(statement.body(), "actions").context("statement without actions")?,
        )?;
        let resources =
            attribute(statement.body(), "resources").context("statement without resources")?;
        let wildcard = may_contain_wildcard(&module, resources)?;
        for action in actions {
            if action.contains('*') {
                problems.push(format!("runtime statement: wildcard action {action:?}"));
            }
            if wildcard {
                if exempt.contains(&action) {
                    used_exemptions.insert(action);
                } else {
                    problems.push(format!(
                        "runtime statement: {action} on \"*\" but it is not in local.lambda_unscoped_actions"
                    ));
                }
            }
        }
    }

    let stale = difference(&exempt, &used_exemptions);
    if !stale.is_empty() {
        problems.push(format!(
            "local.lambda_unscoped_actions lists actions no statement uses on \"*\": {stale:?}"
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}
