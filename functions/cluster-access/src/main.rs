//! Lambda entry point: clients once per cold start, then every invocation goes to `handle`.

use labflow_cluster_access::{handle, Ctx, Input};
use labflow_core::aws::AwsClients;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    labflow_core::logging::init_json();
    let ctx = Ctx::new(AwsClients::from_env().await?);
    let ctx = &ctx;
    labflow_core::lambda::serve(move |input: Input| handle(ctx, input)).await
}
