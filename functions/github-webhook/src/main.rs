//! github-webhook Lambda (Function URL): wiring only; the logic is in the library.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use labflow_core::aws::AwsClients;
use labflow_github_webhook::{handle, Ctx};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    labflow_core::logging::init_json();
    let clients = AwsClients::from_env().await?;
    let ctx = Ctx::from_env(&clients)?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            Ok::<_, std::convert::Infallible>(handle(ctx, event.payload).await)
        },
    ))
    .await
}
