//! EKS token generation: the SigV4 query-presign of STS GetCallerIdentity that cluster-access,
//! flux-bootstrap, health-check and teardown do before talking to the Kubernetes API.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use labflow_core::eks_token::generate;

fn bench(c: &mut Criterion) {
    let credentials = Credentials::new(
        "ASIABENCH00000000000",
        "bench-secret-access-key-not-real",
        Some("bench-session-token".to_string()),
        None,
        "bench",
    );
    let now = SystemTime::now();
    if let Err(e) = generate(&credentials, "labflow-lab", "eu-west-1", now) {
        panic!("token generation fails: {e}");
    }
    let mut group = c.benchmark_group("eks_token");
    group.throughput(Throughput::Elements(1));
    group.bench_function("generate", |b| {
        b.iter(|| generate(&credentials, "labflow-lab", "eu-west-1", now))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
