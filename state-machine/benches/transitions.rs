//! Transitions per second: a Choice loop with a counter (States.MathAdd) running 1,000 rounds,
//! i.e. 2,002 state transitions per execution (1,001 Choice + 1,000 Pass + the final Succeed).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use labflow_states::{lint, Executor, Options, RegistryInvoker};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let def = json!({ "StartAt": "Loop", "States": {
        "Loop": { "Type": "Choice", "Choices": [
            { "Variable": "$.i", "NumericGreaterThanEqualsPath": "$.n", "Next": "Done" }], "Default": "Inc" },
        "Inc": { "Type": "Pass", "Parameters": { "n.$": "$.n", "i.$": "States.MathAdd($.i, 1)" }, "Next": "Loop" },
        "Done": { "Type": "Succeed" }
    }});
    let machine = match lint(&def) {
        Ok(m) => m,
        Err(e) => panic!("benchmark definition does not lint: {e}"),
    };
    let exec = Executor::new(machine, Arc::new(RegistryInvoker::new())).with_options(Options {
        max_transitions: 1_000_000,
        ..Options::default()
    });
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let mut group = c.benchmark_group("transitions");
    group.throughput(Throughput::Elements(2_002));
    group.bench_function("choice_loop_1000", |b| {
        b.iter(|| {
            let e = rt
                .block_on(exec.run(json!({ "i": 0, "n": 1000 })))
                .unwrap_or_else(|e| panic!("the execution did not start: {e}"));
            assert_eq!(e.transitions, 2_002);
            e
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
