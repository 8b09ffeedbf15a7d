//! What a run would cost on AWS: Step Functions Standard state transitions plus Lambda requests
//! and compute. Prices are us-east-1 list prices (constants below, with their source); other
//! regions differ by a few percent.

use serde::Serialize;

/// Step Functions Standard: $0.025 per 1,000 state transitions
/// (https://aws.amazon.com/step-functions/pricing/, "Standard Workflows").
pub const SFN_PRICE_PER_TRANSITION: f64 = 0.025 / 1000.0;
/// Lambda requests: $0.20 per 1M (https://aws.amazon.com/lambda/pricing/).
pub const LAMBDA_PRICE_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
/// Lambda compute on arm64 (Graviton): $0.0000133334 per GB-second, first tier
/// (https://aws.amazon.com/lambda/pricing/, "Arm Price").
pub const LAMBDA_ARM_PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// Memory each labflow Lambda is deployed with (infra/terraform's default).
pub const LAMBDA_MEMORY_MB: f64 = 256.0;
/// Where the prices come from, for the summary line.
pub const PRICE_SOURCE: &str =
    "us-east-1 list prices: aws.amazon.com/step-functions/pricing, aws.amazon.com/lambda/pricing";
/// Lambda bills duration in 1 ms increments.
const BILLING_GRANULARITY_MS: f64 = 1.0;

/// Counts from one execution and what they cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    pub state_transitions: u64,
    pub lambda_invocations: u64,
    pub lambda_gb_seconds: f64,
    pub step_functions_usd: f64,
    pub lambda_usd: f64,
    pub total_usd: f64,
}

/// Cost of `transitions` state transitions and Lambda invocations that ran for `durations_ms`.
pub fn estimate(transitions: u64, durations_ms: &[f64]) -> CostReport {
    let gb = LAMBDA_MEMORY_MB / 1024.0;
    let gb_seconds: f64 = durations_ms
        .iter()
        .map(|ms| (ms / BILLING_GRANULARITY_MS).ceil() * BILLING_GRANULARITY_MS / 1000.0 * gb)
        .sum();
    let step_functions_usd = transitions as f64 * SFN_PRICE_PER_TRANSITION;
    let lambda_usd = durations_ms.len() as f64 * LAMBDA_PRICE_PER_REQUEST
        + gb_seconds * LAMBDA_ARM_PRICE_PER_GB_SECOND;
    CostReport {
        state_transitions: transitions,
        lambda_invocations: durations_ms.len() as u64,
        lambda_gb_seconds: gb_seconds,
        step_functions_usd,
        lambda_usd,
        total_usd: step_functions_usd + lambda_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousand_transitions_cost_two_and_a_half_cents() {
        let report = estimate(1000, &[]);
        assert!((report.step_functions_usd - 0.025).abs() < 1e-12);
        assert_eq!(report.lambda_usd, 0.0);
    }

    #[test]
    fn lambda_compute_is_billed_per_ms_at_the_configured_memory() {
        // 4 invocations of 999.2 ms at 256 MB = 4 × 1.0 s × 0.25 GB = 1 GB-s.
        let report = estimate(0, &[999.2; 4]);
        assert!((report.lambda_gb_seconds - 1.0).abs() < 1e-9, "{report:?}");
        let expected = 4.0 * LAMBDA_PRICE_PER_REQUEST + LAMBDA_ARM_PRICE_PER_GB_SECOND;
        assert!((report.lambda_usd - expected).abs() < 1e-15);
        assert_eq!(report.lambda_invocations, 4);
    }
}
