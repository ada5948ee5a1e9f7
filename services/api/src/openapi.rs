//! The OpenAPI description served at `/api/v1/openapi.json`: every route, every status it
//! can answer and every constraint the server enforces. `tests/contract/` holds a
//! schema-driven client (schemathesis) to it, and `tests/openapi.rs` checks it against the
//! router; a change to either side that the other does not follow fails there.

use serde_json::{Value, json};

use crate::{
    MAX_BODY,
    backend::Status,
    validate::{self, DEFAULT_LIMIT, ID_PATTERN, MAX_LIMIT, TIMEOUT_PATTERN},
};

/// A response with the JSON error body.
fn error(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// 401 and 403 carry the RFC 6750 challenge.
fn challenge(description: &str) -> Value {
    let mut e = error(description);
    e["headers"] = json!({"WWW-Authenticate": {"required": true, "schema": {"type": "string"},
                          "description": "RFC 6750 Bearer challenge"}});
    e
}

/// 503: Temporal (or its database) is unreachable; the client should come back.
fn unavailable() -> Value {
    let mut e = error(
        "Temporal is unreachable or refused bulwark-api's own credentials; retry after Retry-After seconds",
    );
    e["headers"] = json!({"Retry-After": {"required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                          "description": "seconds to wait before retrying (RFC 9110 10.2.3)"}});
    e
}

/// 429: Temporal shed the call under the namespace's rate limits.
fn rate_limited() -> Value {
    let mut e = error(
        "Temporal is rate limiting the namespace (e.g. its visibility requests per second); retry after Retry-After seconds",
    );
    e["headers"] = json!({"Retry-After": {"required": true, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                          "description": "seconds to wait before retrying"}});
    e
}

/// The statuses every authorized `/api/v1/workflows...` route shares.
fn authorized(scope: &str, mut ok: serde_json::Map<String, Value>) -> Value {
    ok.insert(
        "401".into(),
        challenge("no bearer token, or one that is invalid, expired, not yet valid or not for bulwark-api"),
    );
    ok.insert(
        "403".into(),
        challenge(&format!("the token lacks the {scope} scope")),
    );
    ok.insert("429".into(), rate_limited());
    ok.insert("503".into(), unavailable());
    Value::Object(ok)
}

fn responses(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn text(description: &str) -> Value {
    json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}})
}

fn json_body(description: &str, schema: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// The OpenAPI 3.1 description of this API.
pub fn openapi_document() -> Value {
    let id = json!({"name": "id", "in": "path", "required": true,
                    "description": "the workflow id (as returned by the start)",
                    "schema": {"type": "string", "pattern": ID_PATTERN}});
    let id_string = json!({"type": "string", "pattern": ID_PATTERN});
    let bad_id = error("the id is not 1-200 characters of letters, digits, '-', '_', '.' or ':'");
    let unknown = error("no workflow with this id (or it has already closed, for a cancel)");
    let secret = bulwark_workflows::secret_key_pattern();
    let input_value = json!({"anyOf": [
        {"type": ["string", "number", "boolean", "null"]},
        {"type": "array", "items": {"$ref": "#/components/schemas/InputValue"}},
        {"$ref": "#/components/schemas/InputObject"},
    ]});
    let input_object = json!({"type": "object",
        "description": "an object whose keys, at every depth, do not name a secret (password, token, api_key, ...): secrets go into a secret store and travel as credential references",
        "propertyNames": {"not": {"pattern": secret}},
        "additionalProperties": {"$ref": "#/components/schemas/InputValue"}});
    let mut input = input_object.clone();
    input["description"] = json!(
        "the workflow's input; `credential`, if present, is a credential reference. Keys that name a secret are refused at every depth."
    );
    input["properties"] = json!({"credential": {"$ref": "#/components/schemas/CredentialRef"}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "bulwark-api", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Start and track Temporal workflows. Bearer tokens come from bulwark-control's /oauth/token (client credentials, audience bulwark-api). Inputs carry credential references, never secret values. Every refusal is a JSON {error, message} body whose message says what to change."},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                    "properties": {"error": {"type": "string", "description": "a stable code, e.g. invalid_request"},
                                   "message": {"type": "string", "description": "what went wrong and what to change"}}},
                "Conflict": {"type": "object", "required": ["error", "message", "run_id"],
                    "properties": {"error": {"const": "already_started"}, "message": {"type": "string"},
                                   "run_id": {"type": "string", "description": "the run already executing under this id"}}},
                "CredentialRef": {"type": "object", "required": ["name", "credential_type"], "additionalProperties": false,
                    "description": "a reference to a credential in a secret store; the worker resolves it when the activity runs",
                    "properties": {
                        "name": {"type": "string", "pattern": validate::CREDENTIAL_NAME_PATTERN,
                                 "description": "the secret's name in the store"},
                        "credential_type": {"type": "string", "pattern": "^[a-z][a-z0-9_.-]{0,63}$",
                                 "examples": ["basic", "api_key", "bearer_token", "oauth_client", "certificate"],
                                 "description": "a built-in type or a registered custom one"},
                        "store_name": {"type": "string", "default": "default", "pattern": validate::STORE_NAME_PATTERN,
                                 "description": "the secret store's component name (metadata.name)"}}},
                "InputValue": input_value,
                "InputObject": input_object,
                "StartRequest": {"type": "object", "required": ["workflow_type"], "additionalProperties": false,
                    "properties": {"workflow_type": {"enum": validate::WORKFLOW_TYPES},
                                   "workflow_id": {"type": ["string", "null"], "pattern": ID_PATTERN, "description": "generated when absent or null"},
                                   "task_queue": {"type": ["string", "null"], "pattern": validate::TASK_QUEUE_PATTERN, "default": validate::DEFAULT_TASK_QUEUE,
                                                  "description": "one of the bulwark-* task queues the gate lets bulwark-api use; the default when absent or null"},
                                   "input": {"anyOf": [input, {"type": "null", "description": "the same as {}"}]},
                                   "credentials": {"type": "array", "items": {"$ref": "#/components/schemas/CredentialRef"}, "maxItems": 1,
                                                   "description": "the one credential the reference workflows take; it becomes input.credential"}},
                    "description": "a credential goes either in `credentials` or as `input.credential`, not both",
                    "not": {"required": ["credentials", "input"],
                            "properties": {"credentials": {"minItems": 1}, "input": {"type": "object", "required": ["credential"]}}}},
                "Started": {"type": "object", "required": ["workflow_id", "run_id"],
                    "properties": {"workflow_id": id_string, "run_id": {"type": "string"}}},
                "Status": {"enum": Status::NAMES},
                "Workflow": {"type": "object", "required": ["workflow_id", "run_id", "workflow_type", "status"],
                    "properties": {"workflow_id": {"type": "string"}, "run_id": {"type": "string"}, "workflow_type": {"type": "string"},
                                   "status": {"$ref": "#/components/schemas/Status"},
                                   "start_time": {"type": "string", "format": "date-time"}, "close_time": {"type": "string", "format": "date-time"}}},
                "WorkflowList": {"type": "object", "required": ["workflows"],
                    "properties": {"workflows": {"type": "array", "items": {"$ref": "#/components/schemas/Workflow"}}}},
                "Result": {"oneOf": [
                    {"type": "object", "required": ["workflow_id", "status", "result"],
                     "properties": {"workflow_id": {"type": "string"}, "status": {"const": "completed"}, "result": {}}},
                    {"type": "object", "required": ["workflow_id", "status", "failure"],
                     "properties": {"workflow_id": {"type": "string"}, "status": {"const": "failed"},
                                    "failure": {"type": "object", "required": ["type", "message"],
                                                "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}},
                    {"type": "object", "required": ["workflow_id", "status"],
                     "properties": {"workflow_id": {"type": "string"}, "status": {"enum": ["canceled", "terminated", "continued_as_new", "timed_out"]}}},
                ]},
                "Running": {"type": "object", "required": ["workflow_id", "status"],
                    "properties": {"workflow_id": {"type": "string"}, "status": {"const": "running"}}},
                "CancelRequested": {"type": "object", "required": ["workflow_id", "status"],
                    "properties": {"workflow_id": {"type": "string"}, "status": {"const": "cancel_requested"}}},
            }
        },
        "paths": {
            "/api/v1/workflows": {
                "post": {"operationId": "startWorkflow",
                    "summary": "Start a workflow (scope workflows:start)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StartRequest"}}}},
                    "responses": authorized("workflows:start", responses(json!({
                        "201": {"description": "started",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Started"}}},
                                "links": {
                                    "describe": {"operationId": "describeWorkflow", "parameters": {"id": "$response.body#/workflow_id"}},
                                    "result": {"operationId": "workflowResult", "parameters": {"id": "$response.body#/workflow_id"}},
                                    "cancel": {"operationId": "cancelWorkflow", "parameters": {"id": "$response.body#/workflow_id"}}}},
                        "400": error("the body is not JSON, or not a start request (unknown field, wrong type, missing workflow_type)"),
                        "409": {"description": "a workflow with this id is already running",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Conflict"}}}},
                        "413": error(&format!("the body is larger than {MAX_BODY} bytes")),
                        "415": error("the body is not sent as Content-Type: application/json"),
                        "422": error("a well-formed request the API will not start: a key naming a secret in the input, a malformed credential reference, both credentials and input.credential, or one Temporal refused"),
                    })))},
                "get": {"operationId": "listWorkflows", "summary": "List workflows, newest first (scope workflows:read)",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/Status"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}],
                    "responses": authorized("workflows:read", responses(json!({
                        "200": json_body("workflows", "WorkflowList"),
                        "400": error("status is not one of the statuses, or limit is not an integer from 1 to 1000"),
                    })))}
            },
            "/api/v1/workflows/{id}": {"get": {"operationId": "describeWorkflow", "summary": "Describe (scope workflows:read)",
                "parameters": [id],
                "responses": authorized("workflows:read", responses(json!({
                    "200": json_body("the workflow", "Workflow"), "400": bad_id, "404": unknown,
                })))}},
            "/api/v1/workflows/{id}/result": {"get": {"operationId": "workflowResult",
                "summary": "Wait for the result (scope workflows:read); 202 if still running after the timeout",
                "parameters": [id, {"name": "timeout", "in": "query",
                    "description": "how long to wait, such as 500ms, 30s or 2m; capped at the server's BULWARK_API_MAX_WAIT (60 s by default)",
                    "schema": {"type": "string", "pattern": TIMEOUT_PATTERN, "default": "30s"}}],
                "responses": authorized("workflows:read", responses(json!({
                    "200": json_body("closed: completed with a result, failed with a reason, or canceled/terminated/timed out", "Result"),
                    "202": json_body("still running when the timeout passed", "Running"),
                    "400": error("the id or the timeout is malformed"),
                    "404": unknown,
                })))}},
            "/api/v1/workflows/{id}/cancel": {"post": {"operationId": "cancelWorkflow",
                "summary": "Request cancellation (scope workflows:cancel)", "parameters": [id],
                "responses": authorized("workflows:cancel", responses(json!({
                    "202": json_body("cancellation requested; the workflow decides when it stops", "CancelRequested"),
                    "400": bad_id, "404": unknown,
                })))}},
            "/api/v1/openapi.json": {"get": {"operationId": "openapi", "security": [], "summary": "This document",
                "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/healthz": {"get": {"operationId": "healthz", "security": [], "summary": "Liveness: the process serves HTTP",
                "responses": {"200": text("alive")}}},
            "/readyz": {"get": {"operationId": "readyz", "security": [],
                "summary": "Readiness: the JWKS is loaded and Temporal accepts bulwark-api's certificate and token",
                "responses": {"200": text("ready"), "503": text("not ready, with the reason")}}},
            "/metrics": {"get": {"operationId": "metrics", "security": [], "summary": "Prometheus metrics (no secret values, no workflow ids)",
                "responses": {"200": text("Prometheus text exposition format")}}},
        }
    })
}
