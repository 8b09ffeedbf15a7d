//! execution-ended Lambda (an EventBridge rule's target): wiring only; the logic is in the library.

use labflow_core::aws::AwsClients;
use labflow_execution_ended::{handle, Ctx, StatusChange};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    labflow_core::logging::init_json();
    let clients = AwsClients::from_env().await?;
    let ctx = Ctx::from_env(&clients)?;
    let ctx = &ctx;
    labflow_core::lambda::serve(move |event: StatusChange| handle(ctx, event)).await
}
