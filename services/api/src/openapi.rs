//! The OpenAPI description served at `/api/v1/openapi.json`.

use serde_json::json;

use crate::validate;

/// The OpenAPI 3.1 description of this API.
pub fn openapi_document() -> serde_json::Value {
    let err = json!({"$ref": "#/components/schemas/Error"});
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "bulwark-api", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Start and track Temporal workflows. Bearer tokens come from bulwark-control's /oauth/token (client credentials). Inputs carry credential references, never secret values."},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "CredentialRef": {"type": "object", "required": ["name", "credential_type"], "additionalProperties": false,
                    "properties": {"name": {"type": "string"}, "credential_type": {"type": "string", "examples": ["basic", "api_key", "bearer_token", "oauth_client", "certificate"]}, "store_name": {"type": "string", "default": "default"}}},
                "StartRequest": {"type": "object", "required": ["workflow_type"], "additionalProperties": false,
                    "properties": {"workflow_type": {"enum": validate::WORKFLOW_TYPES}, "workflow_id": {"type": "string"},
                                   "task_queue": {"type": "string", "default": validate::DEFAULT_TASK_QUEUE}, "input": {"type": "object"},
                                   "credentials": {"type": "array", "items": {"$ref": "#/components/schemas/CredentialRef"}, "maxItems": 1}}},
                "Started": {"type": "object", "properties": {"workflow_id": {"type": "string"}, "run_id": {"type": "string"}}},
            }
        },
        "paths": {
            "/api/v1/workflows": {
                "post": {"summary": "Start a workflow (scope workflows:start). An id that is already running gives 409 with its run_id.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StartRequest"}}}},
                    "responses": {"201": {"description": "started", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Started"}}}},
                                  "400": {"description": "malformed JSON", "content": {"application/json": {"schema": err}}},
                                  "401": {"description": "no or invalid token"}, "403": {"description": "missing scope"},
                                  "409": {"description": "already running"}, "413": {"description": "body too large"},
                                  "422": {"description": "invalid request (unknown type, secret in input, bad reference)"}}},
                "get": {"summary": "List workflows (scope workflows:read)",
                    "parameters": [{"name": "status", "in": "query", "schema": {"type": "string"}}, {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "workflows"}}}
            },
            "/api/v1/workflows/{id}": {"get": {"summary": "Describe (scope workflows:read)", "parameters": [id], "responses": {"200": {"description": "status"}, "404": {"description": "unknown id"}}}},
            "/api/v1/workflows/{id}/result": {"get": {"summary": "Wait for the result (scope workflows:read); 202 if still running after the timeout",
                "parameters": [id, {"name": "timeout", "in": "query", "schema": {"type": "string", "default": "30s"}}],
                "responses": {"200": {"description": "finished"}, "202": {"description": "still running"}}}},
            "/api/v1/workflows/{id}/cancel": {"post": {"summary": "Request cancellation (scope workflows:cancel)", "parameters": [id], "responses": {"202": {"description": "cancel requested"}}}},
            "/healthz": {"get": {"security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"security": [], "responses": {"200": {"description": "Temporal reachable with current credentials"}, "503": {"description": "not ready"}}}},
        }
    })
}
