//! Webhook throughput on one core: verified push deliveries per second through verify + route +
//! decide (see `pipeline.rs` for exactly what that covers), next to the plain HMAC-SHA256
//! baseline of the same body.

mod pipeline;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use labflow_github_webhook::Secret;

fn bench(c: &mut Criterion) {
    let body = pipeline::push_body();
    let event = pipeline::event_json(&body);
    let secret = Secret::new(pipeline::SECRET);
    // The event must take the whole path: routed to "lab", a sync with an encoded input.
    match pipeline::verify_route_decide(
        &secret,
        event.as_bytes(),
        pipeline::ROUTES,
        &pipeline::LAB_CONFIG,
    ) {
        Ok(d)
            if d.environment == "lab"
                && d.action == labflow_core::contract::Action::Sync
                && !d.execution_name.is_empty()
                && d.input_json.contains(pipeline::SHA) => {}
        other => panic!("the benchmark event does not take the whole path: {other:?}"),
    }
    let expected = match hex::decode(
        &labflow_github_webhook::signature::sign(&secret, body.as_bytes())[7..],
    ) {
        Ok(d) => d,
        Err(e) => panic!("signature is not hex: {e}"),
    };
    let mut group = c.benchmark_group("webhook");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_route_decide", |b| {
        b.iter(|| {
            pipeline::verify_route_decide(
                &secret,
                event.as_bytes(),
                pipeline::ROUTES,
                &pipeline::LAB_CONFIG,
            )
        })
    });
    group.bench_function("hmac_sha256_baseline", |b| {
        b.iter(|| pipeline::hmac_baseline(pipeline::SECRET.as_bytes(), body.as_bytes(), &expected))
    });
    group.finish();

    // Where an event's time goes (the explanation of the figure above, docs/performance.md).
    let mut parts = c.benchmark_group("webhook_parts");
    parts.throughput(Throughput::Elements(1));
    parts.bench_function("function_url_event_parse", |b| {
        b.iter(|| {
            serde_json::from_slice::<
                aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest,
            >(event.as_bytes())
        })
    });
    parts.bench_function("push_payload_parse", |b| {
        b.iter(|| {
            serde_json::from_slice::<labflow_github_webhook::push::PushEvent>(body.as_bytes())
        })
    });
    parts.bench_function("environment_config_parse_and_validate", |b| {
        b.iter(|| labflow_core::config::parse("lab", &pipeline::LAB_CONFIG))
    });
    parts.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
