//! The reference workflows. Each validates its JSON input (an invalid input fails the
//! workflow with a non-retryable `InvalidInput` instead of failing workflow tasks forever) and
//! runs one activity.

use std::time::Duration;

use bulwark_workflows::{
    DatabaseQueryInput, DatabaseQueryOutput, GreetingInput, GreetingOutput, HttpCallInput,
    HttpCallOutput, InputError, failure_type, workflow,
};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, ApplicationFailure, WorkflowContext, WorkflowResult};

use crate::activities::Activities;

fn activity_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(30))
                .maximum_attempts(5)
                .non_retryable_error_types(failure_type::NON_RETRYABLE)
                .build(),
        )
        .build()
}

fn invalid(e: InputError) -> ApplicationFailure {
    ApplicationFailure::builder(e)
        .type_name(failure_type::INVALID_INPUT.to_owned())
        .non_retryable(true)
        .build()
}

#[workflow]
#[derive(Default)]
pub struct Greeting;

#[workflow_methods]
impl Greeting {
    #[run(name = workflow::GREETING)]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: serde_json::Value,
    ) -> WorkflowResult<GreetingOutput> {
        let input = GreetingInput::from_json(&input).map_err(invalid)?;
        Ok(ctx
            .execute_activity(Activities::greet, input, activity_options())
            .await?)
    }
}

#[workflow]
#[derive(Default)]
pub struct DatabaseQuery;

#[workflow_methods]
impl DatabaseQuery {
    #[run(name = workflow::DATABASE_QUERY)]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: serde_json::Value,
    ) -> WorkflowResult<DatabaseQueryOutput> {
        let input = DatabaseQueryInput::from_json(&input).map_err(invalid)?;
        Ok(ctx
            .execute_activity(Activities::run_database_query, input, activity_options())
            .await?)
    }
}

#[workflow]
#[derive(Default)]
pub struct HttpCall;

#[workflow_methods]
impl HttpCall {
    #[run(name = workflow::HTTP_CALL)]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: serde_json::Value,
    ) -> WorkflowResult<HttpCallOutput> {
        let input = HttpCallInput::from_json(&input).map_err(invalid)?;
        Ok(ctx
            .execute_activity(Activities::run_http_call, input, activity_options())
            .await?)
    }
}
